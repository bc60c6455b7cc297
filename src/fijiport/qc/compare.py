"""``fijiport qc MODEL_A MODEL_B ... TEST -o compare/``: several models measured on the same test images.

Each model gets its own full QC report (``compare/models/<label>/``, the same as ``fijiport qc MODEL``
writes, usable with ``export --qc``); the comparison puts their figures side by side::

    compare/comparison.json    every model's mean and per-image figures (:class:`~fijiport.artifacts.qc_report.QcComparison`)
    compare/comparison.md      the tables, the plot and the panels
    compare/comparison.png     the figures per image and mean (restoration) or against the IoU threshold (segmentation)
    compare/panels/<image>.png the image as every model predicts it, side by side (with input and ground truth)
    compare/models/<label>/    each model's own qc.json, qc.md and panels

All models must be of one QC task (restoration, segmentation, or denoising: N2V models compared by their residual and,
where the test images have clean versions, by PSNR/SSIM/NRMSE against them). With ``with_parent`` the model each one was
fine-tuned from (``train --init-from``, named in its training record) is measured first, just before it.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__
from ..artifacts.model_folder import ModelFolder, read_network_config
from ..artifacts.packaged_model import is_package, unpacked_model_folder
from ..artifacts.qc_report import (
    CLOSEST_TO_ZERO,
    COMPARISON_MD,
    COMPARISON_PNG,
    METRIC_LABELS,
    METRICS,
    MODELS_DIR,
    RESIDUAL_METRICS,
    SEGMENTATION_METRICS,
    ComparedModel,
    DenoisingQc,
    QcComparison,
    QcReport,
    RestorationQc,
    SegmentationQc,
    write_comparison,
)
from ..errors import DataError
from ..files import atomic_dir, check_output, read_tiff
from ..kinds import kind_of_config
from ..kinds.base import ModelKind
from .denoising import find_denoising_images, first_frame, qc_n2v
from .metrics import normalize_gt, scale_to
from .restoration import baseline_image, display_slice, find_test_pairs, qc_care, read_test_pair
from .segmentation import find_segmentation_pairs, outlines_rgb, qc_stardist

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"


@dataclass
class _Entry:
    folder: ModelFolder
    label: str = ""
    source: str = ""
    """Where the model is (a parent unpacked from a package: the package, not the temporary folder)."""
    parent_of: Optional[str] = None


def compare_models(
    models: list[Path | ModelFolder],
    test_dir: Path,
    report_dir: Path,
    *,
    percentiles: Optional[tuple[float, float]] = None,
    n_tiles: Optional[tuple[int, ...]] = None,
    with_parent: bool = False,
    save_predictions: bool = False,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> QcComparison:
    """Measure every model on the same test images and write one comparison report (see the module's docstring).

    Parameters
    ----------
    models
        Model folders (or opened :class:`ModelFolder`), all of one QC task; two or more, or one with ``with_parent``.
    test_dir
        The held-out images: ``low/`` and ``GT/`` (restoration), ``images/`` and ``masks/`` (segmentation), or noisy
        ``images/`` with optional clean ``GT/`` (denoising).
    report_dir
        The comparison's folder, written whole or not at all.
    percentiles
        Input normalisation for models that do not record theirs (applied to every model, as ``qc`` does).
    n_tiles
        Tiles per image axis (default: tiles of about a million pixels).
    with_parent
        Measure, just before each model fine-tuned with ``--init-from``, the model it started from.
    save_predictions
        Also write each model's predictions.
    overwrite
        Replace an existing ``report_dir``.
    progress
        Called as ``progress(done, total, name)`` before each image of each model.

    Returns
    -------
    QcComparison
        What ``comparison.json`` holds.
    """
    report_dir = Path(report_dir)
    check_output(report_dir, overwrite)
    _check_one_task([(m.path, m.kind) if isinstance(m, ModelFolder) else (Path(m), _kind(Path(m))) for m in models])
    with ExitStack() as stack:
        entries: list[_Entry] = []
        families: list[tuple[_Entry, _Entry]] = []
        warnings: list[str] = []
        for m in models:
            folder = m if isinstance(m, ModelFolder) else ModelFolder.open(m, percentiles=percentiles)
            child = _Entry(folder, source=str(folder.path.resolve()))
            if with_parent:
                parent = stack.enter_context(_recorded_parent(folder, warnings))
                known = next((e for e in entries if e.folder.weights_sha256() == parent.folder.weights_sha256()), None)
                if known is None:
                    entries.append(parent)
                families.append((known or parent, child))
            entries.append(child)
        if len(entries) < 2:
            raise DataError(
                "a comparison needs two models or more: `fijiport qc MODEL_A MODEL_B TEST -o OUT` (or one model fine-tuned "
                "with --init-from and --with-parent)"
            )
        _label(entries)
        for parent, child in families:
            parent.parent_of = child.label if parent.parent_of is None else f"{parent.parent_of}, {child.label}"
        task = entries[0].folder.kind.qc_task
        pairs, data_axes = _test_images(task, test_dir)
        if not pairs:
            raise DataError(f"{test_dir} holds no test images to compare the models on")
        with atomic_dir(report_dir, overwrite=overwrite) as tmp:
            (tmp / MODELS_DIR).mkdir()
            reports: list[QcReport] = []
            for i, e in enumerate(entries):
                sub = tmp / MODELS_DIR / e.label

                def step(j: int, n: int, name: str, i=i) -> None:
                    if progress:
                        progress(i * n + j, len(entries) * n, f"{entries[i].label}: {name}")

                if task == "restoration":
                    result = qc_care(e.folder, test_dir, sub, n_tiles=n_tiles, save_predictions=True, progress=step)
                    assert result.report is not None
                    reports.append(result.report)
                elif task == "denoising":
                    reports.append(qc_n2v(e.folder, test_dir, sub, n_tiles=n_tiles, save_predictions=True, progress=step))
                else:
                    reports.append(qc_stardist(e.folder, test_dir, sub, save_predictions=True, progress=step))
            comparison = _comparison(entries, reports, Path(test_dir), [name for name, _, _ in pairs], warnings)
            (tmp / "panels").mkdir()
            for name, src, target in pairs:
                panel = tmp / "panels" / f"{Path(name).stem}.png"
                if task == "denoising":
                    _denoising_panel(entries, comparison, tmp, name, src, target, data_axes, panel)
                elif target is None:
                    raise AssertionError(f"{name} has no ground truth")  # restoration and segmentation pairs always do
                elif task == "restoration":
                    baseline = reports[0].baseline if isinstance(reports[0], RestorationQc) else None
                    channels = baseline.get("input_channels") if baseline else None
                    _restoration_panel(entries, comparison, tmp, name, (src, target), channels, panel)
                else:
                    _segmentation_panel(entries, comparison, tmp, name, src, target, panel)
            _plot(comparison, tmp / COMPARISON_PNG)
            write_comparison(tmp, comparison)
            (tmp / COMPARISON_MD).write_text(_markdown(comparison))
            if not save_predictions:
                for e in entries:
                    shutil.rmtree(tmp / MODELS_DIR / e.label / PREDICTIONS, ignore_errors=True)
    for w in comparison.warnings:
        log.warning("%s", w)
    return comparison


@contextmanager
def _recorded_parent(child: ModelFolder, warnings: list[str]) -> Iterator[_Entry]:
    """The model ``child`` was fine-tuned from, as its training record names it (a package unpacked while the block
    runs); refused with the fix when there is none or it is no longer where it was."""
    record = child.training_record
    parent = record.parent if record is not None else None
    if parent is None:
        raise DataError(
            f"{child.path} was not fine-tuned from another model (its training record names no --init-from model); "
            "drop --with-parent, or list the models to compare: `fijiport qc MODEL_A MODEL_B TEST -o OUT`"
        )
    path = Path(parent.path)
    if not path.exists():
        raise DataError(
            f"{child.path} was fine-tuned from {path}, which is no longer there; pass the parent where it is now: "
            f"`fijiport qc PARENT {child.path} TEST -o OUT`"
        )
    if is_package(path):
        with unpacked_model_folder(path, purpose="qc --with-parent", hint="pass its model folder instead") as (folder_dir, origin):
            folder = ModelFolder.open(folder_dir, percentiles=origin.percentiles, percentiles_source="package")
            folder.extra["source"] = str(path.resolve())
            _check_same_weights(folder, parent.weights_sha256, child, path, warnings)
            yield _Entry(folder, source=str(path.resolve()))
        return
    folder = ModelFolder.open(path)
    _check_same_weights(folder, parent.weights_sha256, child, path, warnings)
    yield _Entry(folder, source=str(path.resolve()))


def _check_same_weights(folder: ModelFolder, recorded: str, child: ModelFolder, path: Path, warnings: list[str]) -> None:
    if folder.weights_sha256() != recorded:
        warnings.append(
            f"{path} has other weights now ({folder.weights_path.name} sha256 {folder.weights_sha256()[:12]}…) than when "
            f"{child.name} was fine-tuned from it (sha256 {recorded[:12]}…): its figures are not those of the starting point"
        )


def _kind(model_dir: Path) -> ModelKind:
    """A model folder's kind from its config.json alone (before the folder is opened and its notes logged)."""
    if not model_dir.is_dir():
        return ModelFolder.open(model_dir).kind  # refused with the reason
    return kind_of_config(read_network_config(model_dir), model_dir / "config.json")


def _check_one_task(models: list[tuple[Path, ModelKind]]) -> None:
    """Refuse, before any model is loaded, models of different QC tasks (a parent's task is its child's: training
    refuses a parent of another kind)."""
    tasks = {kind.qc_task for _, kind in models}
    if len(tasks) > 1:
        each = ", ".join(f"{path} ({kind.title}: {kind.qc_task})" for path, kind in models)
        raise DataError(
            f"the models are of different QC tasks ({each}): restoration models are compared on low/GT pairs, "
            "segmentation models on images with masks; compare models of one task at a time"
        )


def _test_images(task: str, test_dir: Path) -> tuple[list[tuple[str, Path, Optional[Path]]], Optional[str]]:
    """(name, input, ground truth) of every test image, as the task's own QC finds them, and (denoising) the axes
    the data folder records (None: read from each file)."""
    found: list[tuple[str, Path, Optional[Path]]] = []
    axes = None
    if task == "restoration":
        found += find_test_pairs(test_dir)
    elif task == "denoising":
        images, axes = find_denoising_images(test_dir)
        found += images
    else:
        found += find_segmentation_pairs(test_dir)
    return found, axes


def _denoising_figures(report: DenoisingQc) -> tuple[dict[str, dict[str, float]], dict[str, float], Optional[dict[str, Any]]]:
    """An N2V report's figures per image and mean (the residual's; PSNR/SSIM/NRMSE too when every test image has a
    clean version), and the input's own scores against the clean images (None without them)."""

    def residual(r: dict[str, Any]) -> dict[str, float]:
        return {
            "autocorrelation_lag1": float(r["autocorrelation"][0]),
            "correlation_with_prediction": float(r["correlation_with_prediction"]),
            "std_ratio": float(r["std_ratio"]),
        }

    scored = report.summary is not None and report.n_with_gt == report.n_images
    per_image = {im["name"]: {**residual(im["residual"]), **(im["prediction"] if scored else {})} for im in report.images}
    mean = residual(report.residual)
    if scored:
        assert report.summary is not None
        mean.update({m: report.summary[m]["prediction"] for m in METRICS})
        scores = {"mean": {m: report.summary[m]["input"] for m in METRICS}, "per_image": {im["name"]: im["input"] for im in report.images}}
        return per_image, mean, scores
    return per_image, mean, None


def _label(entries: list[_Entry]) -> None:
    """Unique, file-safe labels: the folder's name, ``-2``, ``-3`` for repeats."""
    seen: dict[str, int] = {}
    for e in entries:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", e.folder.name).strip("._") or "model"
        seen[base] = seen.get(base, 0) + 1
        e.label = base if seen[base] == 1 else f"{base}-{seen[base]}"


def _comparison(entries: list[_Entry], reports: list[QcReport], test_dir: Path, names: list[str], warnings: list[str]) -> QcComparison:
    models, input_scores = [], None
    for e, report in zip(entries, reports):
        record = e.folder.training_record
        common: dict[str, Any] = dict(
            label=e.label,
            kind=e.folder.kind.name,
            model=e.source,
            weights=e.folder.weights_path.name,
            weights_sha256=e.folder.weights_sha256(),
            report=f"{MODELS_DIR}/{e.label}",
            parent_of=e.parent_of,
            fine_tuned_from=record.parent.describe() if record is not None and record.parent is not None else None,
        )
        warnings += [f"{e.label}: {w}" for w in report.warnings]
        if report.split == "train":
            warnings.append(f"{e.label}: the test images are images it was trained on; its figures flatter it")
        if isinstance(report, DenoisingQc):
            per_image, mean, scores = _denoising_figures(report)
            models.append(ComparedModel(**common, mean=mean, per_image=per_image))
            if input_scores is None and scores is not None:
                input_scores = scores
        elif isinstance(report, RestorationQc):
            per_image = {im.name: im.prediction.model_dump() for im in report.images}
            models.append(ComparedModel(**common, mean={m: report.summary[m]["prediction"] for m in METRICS}, per_image=per_image))
            if input_scores is None and "input" in report.summary["psnr"]:  # else GT's channels are not the input's
                input_scores = {
                    "mean": {m: report.summary[m]["input"] for m in METRICS},
                    "per_image": {im.name: im.input.model_dump() for im in report.images if im.input is not None},
                }
        else:
            assert isinstance(report, SegmentationQc)
            per_image = {
                im["name"]: {
                    **{m: float(im[m]) for m in SEGMENTATION_METRICS},
                    "objects_true": im["objects_true"],
                    "objects_predicted": im["objects_predicted"],
                }
                for im in report.images
            }
            mean = {m: float(report.at_iou_05[m]) for m in SEGMENTATION_METRICS}
            models.append(ComparedModel(**common, mean=mean, per_image=per_image, per_threshold=report.per_threshold))
    task = entries[0].folder.kind.qc_task
    metrics: list[str]
    if task == "restoration":
        metrics = list(METRICS)
    elif task == "denoising":
        metrics = list(RESIDUAL_METRICS) + (list(METRICS) if input_scores is not None else [])
    else:
        metrics = list(SEGMENTATION_METRICS)
    return QcComparison(
        task=task,
        fijiport_version=__version__,
        test_dir=str(test_dir.resolve()),
        split=reports[0].split,
        images=names,
        metrics=metrics,
        input=input_scores,
        models=models,
        warnings=warnings,
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _restoration_panel(entries, comparison: QcComparison, tmp: Path, name: str, pair, channels, path: Path) -> None:
    """Input (its channels of the GT's values, ``channels``, where there is a baseline), every model's prediction and
    the ground truth of one image, on the ground truth's scale."""
    plt = _pyplot()
    first = entries[0].folder
    low, gt = read_test_pair(first, *pair)
    axes = first.image_axes
    base = baseline_image(low, channels, axes) if channels is not None else None
    low = low if base is None else base
    gt2 = normalize_gt(display_slice(gt, axes))
    in_title = "input" if comparison.input is None else f"input  PSNR {comparison.input['per_image'][name]['psnr']:.1f}"
    shown = [(scale_to(display_slice(low, axes), gt2), in_title)]
    for e, m in zip(entries, comparison.models):
        pred = read_tiff(tmp / MODELS_DIR / e.label / PREDICTIONS / name)
        shown.append((scale_to(display_slice(pred, e.folder.image_axes), gt2), f"{e.label}  PSNR {m.per_image[name]['psnr']:.1f}"))
    shown.append((gt2, "ground truth"))
    vmin, vmax = np.percentile(gt2, 1), np.percentile(gt2, 99.8)
    fig, axs = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 4.0), squeeze=False)
    for ax, (img, title) in zip(axs[0], shown):
        ax.imshow(img, cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{name}{' (middle Z slice)' if 'Z' in axes else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _denoising_panel(entries, comparison: QcComparison, tmp: Path, name: str, noisy_path: Path, clean_path: Optional[Path],
                     data_axes: Optional[str], path: Path) -> None:  # fmt: skip
    """The noisy input, every model's prediction and the clean image (if any) in the top row, each model's residual
    (input − prediction) under its prediction: a residual that shows the image is structure the model removed."""
    plt = _pyplot()
    first = entries[0].folder
    axes = first.image_axes
    x = display_slice(first_frame(noisy_path, data_axes, first), axes)
    preds = []
    for e in entries:
        pred = read_tiff(tmp / MODELS_DIR / e.label / PREDICTIONS / name)
        preds.append(display_slice(pred[0] if pred.ndim > len(e.folder.image_axes) else pred, axes))
    top = [(x, "noisy input")] + [(p, e.label) for p, e in zip(preds, entries)]
    if clean_path is not None:
        top.append((display_slice(first_frame(clean_path, data_axes, first), axes), "clean image (GT)"))
    vmin, vmax = np.percentile(preds[0], 0.5), np.percentile(preds[0], 99.8)
    fig, axs = plt.subplots(2, len(top), figsize=(3.6 * len(top), 7.4), squeeze=False)
    for ax, (img, title) in zip(axs[0], top):
        ax.imshow(img, cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
    residuals = [x - p for p in preds]
    lim = max(max(float(np.percentile(np.abs(r), 99.5)) for r in residuals), 1e-6)
    for ax, r, m in zip(axs[1][1:], residuals, comparison.models):
        ax.imshow(r, cmap="RdBu_r", vmin=-lim, vmax=lim)
        s = m.per_image[name]
        ax.set_title(f"residual: autocorr. {s['autocorrelation_lag1']:.2f}, corr. {s['correlation_with_prediction']:.2f}", fontsize=8)
    for ax in axs.ravel():
        ax.axis("off")
    frame_note = ", first frame" if "T" in (data_axes or "") else ""
    fig.suptitle(f"{name}{' (middle Z slice)' if 'Z' in axes else ''}{frame_note}: predictions (top) and residuals (bottom)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _segmentation_panel(entries, comparison: QcComparison, tmp: Path, name: str, img_path: Path, mask_path: Path, path: Path) -> None:
    """One image's ground-truth (green) and each model's (magenta) outlines, side by side."""
    plt = _pyplot()
    img, truth = read_tiff(img_path), read_tiff(mask_path).astype(np.int32)
    fig, axs = plt.subplots(1, len(entries), figsize=(4.5 * len(entries), 4.8), squeeze=False)
    for ax, e, m in zip(axs[0], entries, comparison.models):
        pred = read_tiff(tmp / MODELS_DIR / e.label / PREDICTIONS / name).astype(np.int32)
        ax.imshow(outlines_rgb(img, truth, pred, e.folder.image_axes))
        s = m.per_image[name]
        ax.set_title(f"{e.label}: F1 {s['f1']:.3f}, {int(s['objects_predicted'])} objects", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{name}: ground truth (green), model (magenta), IoU 0.5")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot(c: QcComparison, path: Path) -> None:
    """Restoration: each metric per image and mean, input and every model as bars. Segmentation: F1 and panoptic
    quality against the IoU threshold, and F1 per image at IoU 0.5."""
    plt = _pyplot()
    groups = [*c.images, "mean"]
    x = np.arange(len(groups))
    if c.task in ("restoration", "denoising"):
        series = [("input", c.input["per_image"], c.input["mean"])] if c.input is not None else []
        series += [(m.label, m.per_image, m.mean) for m in c.models]
        cols = min(4, len(c.metrics))
        rows = -(-len(c.metrics) // cols)
        fig, axs = plt.subplots(rows, cols, figsize=(max(12, 1.2 * len(groups) * cols), 4 * rows), squeeze=False)
        width = 0.8 / len(series)
        for ax, metric in zip(axs.ravel(), c.metrics):
            for k, (label, per_image, mean) in enumerate(series):
                if metric not in mean:
                    continue  # the input has no residual
                values = [per_image[n][metric] for n in c.images] + [mean[metric]]
                ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label, alpha=0.6 if label == "input" else 1.0)
            ax.set_xticks(x, [Path(g).stem for g in groups], rotation=45, ha="right", fontsize=8)
            ax.set_title(_metric_label(metric) + _better(metric), fontsize=10)
            ax.grid(alpha=0.3, axis="y")
        for ax in axs.ravel()[len(c.metrics) :]:
            ax.axis("off")
        handles, labels = max((ax.get_legend_handles_labels() for ax in axs.ravel()), key=lambda h: len(h[0]))
        fig.legend(handles, labels, loc="upper center", ncol=len(series), fontsize=9, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.1 / rows))
    else:
        fig, axs = plt.subplots(1, 3, figsize=(15, 4), squeeze=False)
        for metric, ax in zip(("f1", "panoptic_quality"), axs[0][:2]):
            for m in c.models:
                rows = m.per_threshold or []
                ax.plot([r["iou"] for r in rows], [r[metric] for r in rows], "o-", label=m.label)
            ax.set_xlabel("IoU threshold")
            ax.set_title(metric.replace("_", " "))
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        ax = axs[0][2]
        width = 0.8 / len(c.models)
        for k, m in enumerate(c.models):
            values = [m.per_image[n]["f1"] for n in c.images] + [m.mean["f1"]]
            ax.bar(x + (k - (len(c.models) - 1) / 2) * width, values, width, label=m.label)
        ax.set_xticks(x, [Path(g).stem for g in c.images] + ["all images"], rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_title("F1 at IoU 0.5 per image")
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric) or RESIDUAL_METRICS.get(metric) or metric.replace("_", " ")


def _better(metric: str) -> str:
    if metric == "nrmse":
        return " (lower is better)"
    if metric in CLOSEST_TO_ZERO:
        return " (closest to 0 is best)"
    return ""


def _markdown(c: QcComparison) -> str:
    what = {"restoration": "restoration (CARE)", "denoising": "denoising (N2V)"}.get(c.task, "segmentation, IoU 0.5")
    words = "training" if c.split == "train" else "test"
    lines = [
        f"# QC comparison: {len(c.models)} models, {what}",
        "",
        f"Every model measured on the same {len(c.images)} {words} image(s) from `{c.test_dir}`; each model's own report "
        f"is in `{MODELS_DIR}/<label>/` (usable with `fijiport export --qc`).",
        "",
        "| model | kind | folder | weights | fine-tuned from (or parent of) |",
        "|---|---|---|---|---|",
    ]
    for m in c.models:
        sha = f"{m.weights} ({(m.weights_sha256 or '')[:12]}…)"
        origin = m.fine_tuned_from or ""
        if m.parent_of:
            origin = f"(parent of {m.parent_of}) " + origin
        lines.append(f"| {m.label} | {m.kind} | `{m.model}` | {sha} | {origin.strip()} |")
    for w in c.warnings:
        lines += ["", f"**Warning**: {w}."]
    if c.task == "restoration":
        lines += ["", "## Mean", "", "| | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |", "|---|" + "---|" * len(METRICS)]
        if c.input is not None:
            lines.append("| input | " + " | ".join(f"{c.input['mean'][m]:.4f}" for m in METRICS) + " |")
        for model in c.models:
            cells = [f"**{model.mean[m]:.4f}**" if c.best(m) == model.label else f"{model.mean[m]:.4f}" for m in METRICS]
            lines.append(f"| {model.label} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Higher PSNR/SSIM/Pearson r and lower NRMSE are better; the best model's figure is bold.",
            "",
            f"![metrics]({COMPARISON_PNG})",
        ]
        for metric in METRICS:
            lines += ["", f"## {METRIC_LABELS[metric]} per image", "", "| image | input | " + " | ".join(m.label for m in c.models) + " |"]
            lines.append("|---|---|" + "---|" * len(c.models))
            for name in c.images:
                cells = [f"{m.per_image[name][metric]:.4f}" for m in c.models]
                base = f"{c.input['per_image'][name][metric]:.4f}" if c.input is not None else "—"
                lines.append(f"| {name} | {base} | " + " | ".join(cells) + " |")
    elif c.task == "denoising":
        lines += ["", "## Mean", "", "| | " + " | ".join(_metric_label(m) for m in c.metrics) + " |", "|---|" + "---|" * len(c.metrics)]
        if c.input is not None:
            lines.append("| input | " + " | ".join(f"{c.input['mean'][m]:.4f}" if m in c.input["mean"] else "" for m in c.metrics) + " |")
        for model in c.models:
            cells = [f"**{model.mean[m]:.4f}**" if c.best(m) == model.label else f"{model.mean[m]:.4f}" for m in c.metrics]
            lines.append(f"| {model.label} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "The residual (input − prediction) of a model that removes only pixel-independent noise has autocorrelation and "
            "correlation with the prediction near 0 (the best is bold); its std over the input's is the share of the "
            "variation removed."
            + (" Against the clean images, higher PSNR/SSIM/Pearson r and lower NRMSE are better." if c.input is not None else
               " The test images have no clean versions (`GT/`), so there are no PSNR/SSIM figures."),
            "",
            f"![metrics]({COMPARISON_PNG})",
        ]  # fmt: skip
        for metric in c.metrics:
            with_input = c.input is not None and metric in c.input["mean"]
            head = "| image | " + ("input | " if with_input else "") + " | ".join(m.label for m in c.models) + " |"
            lines += ["", f"## {_metric_label(metric)} per image", "", head, "|---|" + "---|" * (len(c.models) + with_input)]
            for name in c.images:
                cells = [f"{c.input['per_image'][name][metric]:.4f}"] if with_input and c.input else []
                cells += [f"{m.per_image[name][metric]:.4f}" for m in c.models]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    else:
        names = [m.replace("_", " ") for m in SEGMENTATION_METRICS]
        lines += ["", "## At IoU 0.5 (all images)", "", "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for model in c.models:
            cells = [f"**{model.mean[m]:.3f}**" if c.best(m) == model.label else f"{model.mean[m]:.3f}" for m in SEGMENTATION_METRICS]
            lines.append(f"| {model.label} | " + " | ".join(cells) + " |")
        lines += ["", "The best model's figure is bold.", "", f"![metrics]({COMPARISON_PNG})", "", "## Per image (IoU 0.5)", ""]
        lines.append("| image | objects | " + " | ".join(f"{m.label} F1 (objects)" for m in c.models) + " |")
        lines.append("|---|---|" + "---|" * len(c.models))
        for name in c.images:
            true = int(c.models[0].per_image[name]["objects_true"])
            cells = [f"{m.per_image[name]['f1']:.3f} ({int(m.per_image[name]['objects_predicted'])})" for m in c.models]
            lines.append(f"| {name} | {true} | " + " | ".join(cells) + " |")
    lines += ["", "## Panels", ""]
    lines += [f"![{name}](panels/{Path(name).stem}.png)" for name in c.images]
    return "\n".join(lines) + "\n"
