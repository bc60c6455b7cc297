"""Progress bars, a live loss plot and tables for Jupyter and Colab notebooks (and plain terminals).

The library reports progress through callbacks and never prints; the command line draws them as rich bars, and
this module draws the same callbacks with ``tqdm.auto``: a widget bar in Jupyter and Colab (with ``ipywidgets``,
``pip install 'fijiport[notebook]'``), a text bar in a terminal or a script. Each class here *is* such a
callback::

    from fijiport.notebook import CountBar, StepBar, TrainingMonitor

    prepare_care(low, gt, data_dir, progress=CountBar("preparing"))
    train_care(data_dir, model_dir, config, progress=TrainingMonitor())   # bars and a loss plot redrawn every epoch
    qc_care(model_dir, data_dir / "test", qc_dir, progress=CountBar("predicting"))
    export_model(model_dir, package, progress=StepBar("export"))

The notebooks in ``notebooks/`` use them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .package.report import Report
    from .training.common import TrainProgress


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (Jupyter, JupyterLab, Colab, VS Code), where figures and tables
    are shown inline.

    Returns
    -------
    bool
        True inside an IPython kernel, False in a terminal, a script or a plain ``ipython`` shell.
    """
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    get_ipython = getattr(shell, "get_ipython", None)
    ip = get_ipython() if get_ipython else None
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def in_colab() -> bool:
    """Whether this code runs in Google Colab.

    Returns
    -------
    bool
        True when the ``google.colab`` module is loaded (as Colab does in every kernel it starts).
    """
    return "google.colab" in sys.modules


def _tqdm():
    import warnings

    with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to a text bar: that is fine
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm


class CountBar:
    """A progress bar for callbacks that count: ``(done, total)`` (prepare) or ``(done, total, name)`` (QC,
    predict). The bar appears at the first call and closes when ``done`` reaches ``total``.

    Parameters
    ----------
    description
        The text in front of the bar; the item's name, when the callback passes one, is shown after it.
    """

    def __init__(self, description: str = "") -> None:
        self.description = description
        self._bar: Any = None

    def __call__(self, done: int, total: int, name: str = "") -> None:
        if self._bar is None:
            self._bar = _tqdm()(total=total, desc=self.description, unit="item", leave=True)
        bar = self._bar
        if bar.total != total:
            bar.total = total
        bar.n = done
        if name:
            bar.set_postfix_str(name, refresh=False)
        bar.refresh()
        if total and done >= total:
            self.close()

    def close(self) -> None:
        """Close the bar (done automatically when the count reaches its total)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class StepBar:
    """A progress display for callbacks that name each step of a long task: export, validation, the runtime
    matrix, installing runtimes (``progress(message)``). It counts the steps and shows the current one.

    Parameters
    ----------
    description
        The text in front of the count.
    """

    def __init__(self, description: str = "") -> None:
        self.description = description
        self.steps: list[str] = []
        """Every message received, in order (a record of what the task did)."""
        self._bar: Any = None

    def __call__(self, message: str) -> None:
        if self._bar is None:
            self._bar = _tqdm()(total=None, desc=self.description, unit="step", bar_format="{desc}: {n_fmt} steps [{elapsed}] {postfix}")
        self.steps.append(message)
        self._bar.set_postfix_str(message[:80], refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Close the display (call it when the task has returned)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> StepBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingMonitor:
    """The ``progress`` callback of ``train_care``, ``train_stardist`` and ``train_n2v``: a bar for patch sampling,
    one per epoch for its steps, and (in a notebook) a plot of the training and validation loss redrawn after every
    epoch.

    Parameters
    ----------
    plot
        Draw the loss plot (only in a notebook; in a terminal the epoch bars show the losses).
    metrics
        The logged values to plot: ``loss`` and ``val_loss`` by default.
    """

    def __init__(self, plot: bool = True, metrics: Sequence[str] = ("loss", "val_loss")) -> None:
        self.plot = plot and in_notebook()
        self.metrics = tuple(metrics)
        self.history: dict[str, list[float]] = {}
        """Each logged value per epoch (also what the plot shows)."""
        self.epochs: list[int] = []
        self._patches: Optional[CountBar] = None
        self._epoch_bar: Any = None
        self._figure: Any = None
        self._handle: Any = None

    def __call__(self, event: TrainProgress) -> None:
        if event.stage == "patches":
            if event.steps:
                self._patches = self._patches or CountBar("sampling patches")
                self._patches(event.step, event.steps)
            return
        if self._patches is not None:
            self._patches.close()
            self._patches = None
        if event.stage == "step":
            if self._epoch_bar is None:
                self._epoch_bar = _tqdm()(total=event.steps, desc=f"epoch {event.epoch}/{event.epochs}", unit="step", leave=False)
            self._epoch_bar.n = event.step
            if "loss" in event.logs:
                self._epoch_bar.set_postfix(loss=f"{event.logs['loss']:.4g}", refresh=False)
            self._epoch_bar.refresh()
        elif event.stage == "epoch":
            if self._epoch_bar is not None:
                self._epoch_bar.close()
                self._epoch_bar = None
            self.epochs.append(event.epoch)
            for key, value in event.logs.items():
                self.history.setdefault(key, []).append(value)
            if self.plot:
                self._draw(event.epochs)

    def _draw(self, total_epochs: int) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display
        from matplotlib.ticker import MaxNLocator

        if self._figure is None:
            self._figure, _ = plt.subplots(figsize=(6, 3.2))
            plt.close(self._figure)  # shown through the display handle only, not again at the cell's end
        fig = self._figure
        ax = fig.axes[0]
        ax.clear()
        for key in self.metrics:
            values = self.history.get(key)
            if values:
                ax.plot(self.epochs[-len(values) :], values, marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_xlim(0.5, max(total_epochs, 1) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        done = self.epochs[-1] if self.epochs else 0
        ax.set_title(f"epoch {done} of {total_epochs}")
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def table(rows: Iterable[dict[str, Any]], columns: Optional[Sequence[str]] = None) -> Any:
    """Rows of plain data as a table: rendered Markdown in a notebook, plain text elsewhere.

    Parameters
    ----------
    rows
        One dict per row (e.g. ``Check.to_dict()`` of a report).
    columns
        The keys to show, in order (default: every key of the first row).

    Returns
    -------
    IPython.display.Markdown or str
        The table; a notebook cell that ends with it shows it rendered.
    """
    rows = list(rows)
    columns = list(columns or (rows[0].keys() if rows else []))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    text = "\n".join(lines)
    if in_notebook():
        from IPython.display import Markdown

        return Markdown(text)
    return text


def report_table(report: Report) -> Any:
    """A validation or runtime report's own checks as a table (:func:`table`); see :func:`runtime_table` for the
    runtime matrix it may hold.

    Parameters
    ----------
    report
        What ``validate_package``, ``check_runtimes`` or ``check_zoo`` returned.

    Returns
    -------
    IPython.display.Markdown or str
        One row per check: check, weight format (where it is about one), status, details.
    """
    rows = ({"check": c.name, "weights": c.weight_format or "", "status": c.status.value, "details": c.details} for c in report.checks)
    return table(rows, ["check", "weights", "status", "details"])


def runtime_table(report: Report) -> Any:
    """The runtime matrix (``validate_package(..., runtimes=True)`` or ``check_runtimes``) as a table: one row per
    consumer (CSBDeep-Fiji, StarDist-Fiji, deepImageJ's engines, KNIME) with the runtime it embeds.

    Parameters
    ----------
    report
        A validation report with a ``runtime_matrix`` part, or the matrix itself.

    Returns
    -------
    IPython.display.Markdown or str
        Consumer, runtime, status, max |diff| to the package's test output, details; an empty table when the report
        holds no matrix (validation without ``runtimes=True``).
    """
    matrix = report.parts.get("runtime_matrix", report if report.title.lower().startswith("runtime") else None)
    checks = matrix.checks if matrix is not None else []
    rows = [
        {
            "consumer": c.name,
            "runtime": c.runtime or "",
            "status": c.status.value,
            "max |diff|": "" if c.max_abs_diff is None else f"{c.max_abs_diff:.1g}",
            "details": c.details,
        }
        for c in checks
    ]
    return table(rows, ["consumer", "runtime", "status", "max |diff|", "details"])


def show_images(
    images: Sequence[Any], titles: Sequence[str] = (), *, cmap: str = "magma", size: float = 4.0, labels: Sequence[bool] = ()
) -> Any:
    """Images side by side (the middle slice of 3D stacks; the first channel of multichannel images), each scaled
    to its 1-99.8 percentiles; label images in random colours.

    Parameters
    ----------
    images
        Arrays, or paths of TIFF files.
    titles
        One title per image (default: the file names, or none).
    cmap
        The colour map of intensity images.
    size
        The width of each image in inches.
    labels
        Per image: whether it is a label image (drawn with distinct colours per object).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (shown inline when a notebook cell ends with it).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .files import read_tiff

    arrays, names = [], []
    for img in images:
        if isinstance(img, (str, Path)):
            names.append(Path(img).name)
            img = read_tiff(Path(img))
        else:
            names.append("")
        a = np.asarray(img)
        while a.ndim > 2:
            a = a[..., 0] if a.shape[-1] <= 4 and a.ndim == 3 else a[a.shape[0] // 2]
        arrays.append(a)
    titles = list(titles) or names
    fig, axs = plt.subplots(1, len(arrays), figsize=(size * len(arrays), size), squeeze=False)
    for k, (ax, a) in enumerate(zip(axs[0], arrays)):
        if k < len(labels) and labels[k]:
            rng = np.random.default_rng(0)
            colours = rng.random((int(a.max()) + 1, 3))
            colours[0] = 0
            ax.imshow(colours[a.astype(int)], interpolation="nearest")
        else:
            lo, hi = np.percentile(a, (1, 99.8))
            ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi)
        if k < len(titles) and titles[k]:
            ax.set_title(titles[k])
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def show_png(path: Path, width: Optional[int] = None) -> Any:
    """A PNG written by fijiport (QC panels, plots, covers), shown inline.

    Parameters
    ----------
    path
        The PNG file.
    width
        Its width on screen in pixels (default: as stored).

    Returns
    -------
    IPython.display.Image or str
        The image in a notebook; its path elsewhere.
    """
    if not in_notebook():
        return str(path)
    from IPython.display import Image

    return Image(filename=str(path), width=width)
