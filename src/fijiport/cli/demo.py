"""``fijiport demo``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..demo import DemoSettings, run_demo
from ._common import EXIT_FAILURE, err, out, progress_bar


def demo(
    output: Path = typer.Option(Path("fijiport_demo"), "--output", "-o", help="Folder for everything the demo makes."),
    epochs: int = typer.Option(10, "--epochs", help="CARE training epochs (the default trains in about two minutes on 2 CPU cores)."),
    steps_per_epoch: int = typer.Option(25, "--steps-per-epoch", help="CARE parameter updates per epoch."),
    stardist: bool = typer.Option(True, "--stardist/--no-stardist", help="Also train, check and export a quick StarDist 2D model."),
    n2v: bool = typer.Option(
        True, "--n2v/--no-n2v", help="Also train a quick Noise2Void 2D model without ground truth, check and export it."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the outputs of an earlier demo in the same folder."),
) -> None:
    """Run the whole pipeline on bundled data: prepare → train → qc → export → validate, for CARE, StarDist and N2V.

    The data ship inside the installed packages (no downloads); the summary says what was made and
    where, the QC gain, and the runtime matrix when the runtimes are installed.
    """

    with progress_bar() as bar:
        status = bar.add_task("demo", total=None)
        state: dict = {}

        def step(message: str) -> None:
            bar.update(status, description=f"demo: {message}")

        def train_progress(event) -> None:
            if event.stage == "patches" and not event.step:
                state.pop("task", None)  # a new training run gets its own bar
            if event.stage == "step":
                if "task" not in state:
                    state["task"] = bar.add_task("training", total=event.epochs * event.steps)
                bar.update(
                    state["task"],
                    completed=(event.epoch - 1) * event.steps + event.step,
                    description=f"training epoch {event.epoch}/{event.epochs} loss {event.logs.get('loss', 0):.4f}",
                )

        result = run_demo(
            output,
            DemoSettings(epochs=epochs, steps_per_epoch=steps_per_epoch, stardist=stardist, n2v=n2v),
            overwrite=overwrite,
            step=step,
            train_progress=train_progress,
        )
        bar.update(status, description="demo: done", total=1, completed=1)

    s = result.qc_summary
    table = Table(title="fijiport demo: CARE 2D denoising of simulated low-light nuclei")
    table.add_column("what")
    table.add_column("where / figures", overflow="fold")
    for what, path in result.paths.items():
        table.add_row(what, str(path))
    table.add_row(
        "QC (mean over test images)",
        f"PSNR {s['psnr']['input']:.2f} → {s['psnr']['prediction']:.2f} dB, "
        f"SSIM {s['ssim']['input']:.3f} → {s['ssim']['prediction']:.3f}, "
        f"NRMSE {s['nrmse']['input']:.4f} → {s['nrmse']['prediction']:.4f}",
    )
    table.add_row("weights (max |diff| to Keras)", ", ".join(f"{k} {v:.1g}" for k, v in result.max_diffs.items()))
    table.add_row("validation", result.validation_status.upper())
    if result.runtime_rows:
        table.add_row(
            "runtimes of Fiji / deepImageJ / KNIME",
            "; ".join(
                f"{r['name']} {r['status']} on {_runtime(r)}" + (f" ({r['max_abs_diff']:.0e})" if r.get("max_abs_diff") is not None else "")
                for r in result.runtime_rows
                if r["status"] != "n/a"
            )
            + " (the runtime each embeds, not the plugin; rows on one runtime are one run)",
        )
    elif result.runtimes_note:
        table.add_row("Fiji / deepImageJ / KNIME", result.runtimes_note)
    if result.stardist_f1 is not None:
        table.add_row(
            "StarDist (held-out crop)", f"F1 at IoU 0.5: {result.stardist_f1:.3f}; validation {result.stardist_validation.upper()}"
        )
    if result.stardist_runtime_rows:
        table.add_row(
            "StarDist on their runtimes",
            "; ".join(f"{r['name']} {r['status']} on {_runtime(r)}" for r in result.stardist_runtime_rows if r["status"] != "n/a")
            + " (labels from bioimageio.core's postprocessing)",
        )
    if result.n2v_qc:
        r, s = result.n2v_qc["residual"], result.n2v_qc["summary"]
        figures = (
            f"residual autocorrelation {r['autocorrelation'][0]:.3f}, correlation with prediction {r['correlation_with_prediction']:.3f}"
        )
        if s:
            figures += f"; against the clean crops PSNR {s['psnr']['input']:.2f} → {s['psnr']['prediction']:.2f} dB"
        table.add_row("N2V (held-out images)", f"{figures}; validation {result.n2v_validation.upper()}")
    if result.n2v_runtime_rows:
        table.add_row(
            "N2V in Fiji / deepImageJ / KNIME",
            "; ".join(f"{r['name']} {r['status']}" for r in result.n2v_runtime_rows if r["status"] != "n/a"),
        )
    table.add_row("time (s)", ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()))
    out.print(table)
    out.print(f"Next: open {result.paths['QC report']} and try `bioimageio test {result.paths['bioimage.io package']}`.")
    if (
        result.validation_status != "passed"
        or result.stardist_validation not in ("", "passed")
        or result.n2v_validation not in ("", "passed")
    ):
        err.print(f"[red]validation failed[/]: see {result.paths['validation report']}")
        raise typer.Exit(EXIT_FAILURE)


def _runtime(row: dict) -> str:
    return str(row.get("runtime") or "").replace("tensorflow-", "TF ").replace("onnxruntime-", "onnxruntime ")
