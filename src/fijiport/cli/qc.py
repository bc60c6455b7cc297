"""``fijiport qc``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..artifacts.model_folder import ModelFolder
from ..artifacts.qc_report import METRIC_LABELS, METRICS
from ..config.export import checked_percentiles
from ..qc import compare_models, qc_care, qc_n2v, qc_stardist
from ._common import out, parse_numbers, parse_tiles, progress_bar


def qc(
    model_dirs: list[Path] = typer.Argument(
        ...,
        metavar="model_dir",
        help="CARE, StarDist or N2V model folder (config.json + weights_best.h5); several to compare them on the same images.",
        show_default=False,
    ),
    test_dir: Path = typer.Argument(
        ...,
        help="Held-out data: DATA_DIR/test of `fijiport prepare` (CARE: low/ and GT/; StarDist: images/ and masks/; N2V: images/, GT/ optional, or a folder of TIFFs).",
        show_default=False,
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Report folder to create: qc.json, qc.md and panels/*.png; with several models comparison.json, comparison.md, "
        "comparison.png, panels/ side by side and each model's own report under models/.",
        show_default=False,
    ),
    percentiles: Optional[str] = typer.Option(
        None,
        "--percentiles",
        help="Input normalisation percentiles LOW,HIGH when the model folder does not record them (csbdeep default 2,99.8).",
    ),
    tiles: Optional[str] = typer.Option(
        None,
        "--tiles",
        help="Tiles per image axis, e.g. 1,4,4 for a ZYX stack; by default chosen so no tile exceeds about a million pixels (1024×1024, 64×128×128).",
    ),
    with_parent: bool = typer.Option(
        False,
        "--with-parent",
        help="Also measure, just before each model fine-tuned with `train --init-from`, the model it started from (named in "
        "its training record), and compare them.",
    ),
    save_predictions: bool = typer.Option(
        False, "--save-predictions", help="Also write each prediction as a float32 TIFF under predictions/."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the report folder if it exists."),
) -> None:
    """Measure a model on held-out data: restoration (CARE), segmentation (StarDist) or denoising (N2V) QC.

    CARE: PSNR, SSIM and NRMSE of prediction vs GT and of input vs GT, the CARE paper's way (GT
    normalised by its 0.1/99.9 percentiles, input and prediction scaled affinely to it).
    StarDist: precision, recall, F1, accuracy TP/(TP+FP+FN) and panoptic quality at IoU 0.1–0.9,
    a plot against the threshold, and outline overlays.
    N2V (no ground truth needed): the residual's autocorrelation and correlation with the prediction
    (near 0 when only noise was removed), and PSNR/SSIM/NRMSE where clean images sit in GT/.
    Pass qc.json to `fijiport export --qc`.

    Several models (all CARE, all StarDist, or all N2V) are compared on the same images in one report: every
    model's figures per image and mean, a plot, and the panels side by side.

    Example: [bold]fijiport qc models/care_nuclei data/test -o qc_report[/]

    Compare: [bold]fijiport qc models/scratch models/fine_tuned data/test -o compare[/]
    """

    if len(model_dirs) > 1 or with_parent:
        pct = checked_percentiles(parse_numbers(percentiles, float, "--percentiles", count=2))
        return _compare(model_dirs, test_dir, output, pct, parse_tiles(tiles), with_parent, save_predictions, overwrite)
    model_dir = model_dirs[0]
    pct = checked_percentiles(parse_numbers(percentiles, float, "--percentiles", count=2))
    folder = ModelFolder.open(model_dir, percentiles=pct)
    if folder.kind.qc_task == "segmentation":
        return _qc_segmentation(folder, test_dir, output, save_predictions, overwrite)
    if folder.kind.qc_task == "denoising":
        return _qc_denoising(folder, test_dir, output, parse_tiles(tiles), save_predictions, overwrite)
    with progress_bar(transient=True) as bar:
        task = bar.add_task("predicting", total=None)
        result = qc_care(
            folder,
            test_dir,
            output,
            n_tiles=parse_tiles(tiles),
            save_predictions=save_predictions,
            overwrite=overwrite,
            progress=lambda i, n, name: bar.update(task, completed=i, total=n, description=f"predicting {name}"),
        )
    s = result.summary()
    word = result.report.images_word if result.report else "test"
    table = Table(title=f"QC on {len(result.images)} {word} image(s)")
    for col in ("metric", "input vs GT", "prediction vs GT", "gain"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for m in METRICS:
        if "input" in s[m]:
            table.add_row(
                METRIC_LABELS[m], f"{s[m]['input']:.4f}", f"{s[m]['prediction']:.4f}", f"{s[m]['prediction'] - s[m]['input']:+.4f}"
            )
        else:
            table.add_row(METRIC_LABELS[m], "—", f"{s[m]['prediction']:.4f}", "—")
    out.print(table)
    if result.report and result.report.no_baseline:
        out.print(f"[yellow]{result.report.no_baseline}[/]")
    out.print(f"report: {output / 'qc.md'}")


def _qc_denoising(folder, test_dir: Path, output: Path, tiles, save_predictions: bool, overwrite: bool) -> None:
    with progress_bar(transient=True) as bar:
        task = bar.add_task("denoising", total=None)
        report = qc_n2v(
            folder,
            test_dir,
            output,
            n_tiles=tiles,
            save_predictions=save_predictions,
            overwrite=overwrite,
            progress=lambda i, n, name: bar.update(task, completed=i, total=n, description=f"denoising {name}"),
        )
    r = report.residual
    table = Table(title=f"N2V QC on {report.n_images} {report.images_word} image(s): the residual (input − prediction)")
    for col in ("autocorrelation lag 1", "lag 2", "lag 3", "correlation with prediction", "residual std / input std"):
        table.add_column(col, justify="right")
    table.add_row(*(f"{a:.3f}" for a in r["autocorrelation"]), f"{r['correlation_with_prediction']:.3f}", f"{r['std_ratio']:.3f}")
    out.print(table)
    out.print("[dim]near 0 when only pixel-independent noise was removed; higher: the network removed structure[/]")
    if report.summary:
        gt = Table(title=f"against clean images ({report.n_with_gt})")
        for col in ("metric", "input vs GT", "prediction vs GT", "gain"):
            gt.add_column(col, justify="right" if col != "metric" else "left")
        for m, s in report.summary.items():
            gt.add_row(m.upper(), f"{s['input']:.4f}", f"{s['prediction']:.4f}", f"{s['prediction'] - s['input']:+.4f}")
        out.print(gt)
    out.print(f"report: {output / 'qc.md'}")


def _qc_segmentation(folder, test_dir: Path, output: Path, save_predictions: bool, overwrite: bool) -> None:

    with progress_bar(transient=True) as bar:
        task = bar.add_task("segmenting", total=None)
        report = qc_stardist(
            folder,
            test_dir,
            output,
            save_predictions=save_predictions,
            overwrite=overwrite,
            progress=lambda i, n, name: bar.update(task, completed=i, total=n, description=f"segmenting {name}"),
        )
    table = Table(title=f"{folder.kind.title} QC on {report.n_images} {report.images_word} image(s)")
    for col in ("IoU", "precision", "recall", "F1", "accuracy", "panoptic quality"):
        table.add_column(col, justify="right")
    for r in report.per_threshold:
        style = "bold" if r["iou"] == 0.5 else None
        table.add_row(
            f"{r['iou']:.1f}",
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['f1']:.3f}",
            f"{r['accuracy']:.3f}",
            f"{r['panoptic_quality']:.3f}",
            style=style,
        )
    out.print(table)
    out.print(f"report: {output / 'qc.md'}")


def _compare(model_dirs, test_dir: Path, output: Path, pct, n_tiles, with_parent: bool, save_predictions: bool, overwrite: bool) -> None:
    with progress_bar(transient=True) as bar:
        task = bar.add_task("predicting", total=None)
        c = compare_models(
            model_dirs,
            test_dir,
            output,
            percentiles=pct,
            n_tiles=n_tiles,
            with_parent=with_parent,
            save_predictions=save_predictions,
            overwrite=overwrite,
            progress=lambda i, n, name: bar.update(task, completed=i, total=n, description=f"predicting {name}"),
        )
    words = "training" if c.split == "train" else "test"
    where = "IoU 0.5" if c.task == "segmentation" else "mean"
    table = Table(title=f"{len(c.models)} models on {len(c.images)} {words} image(s) ({where})")
    table.add_column("model")
    for m in c.metrics:
        table.add_column(m.replace("_", " ").upper() if m in METRIC_LABELS else m.replace("_", " "), justify="right")
    if c.input is not None:
        table.add_row("input", *(f"{c.input['mean'][m]:.4f}" if m in c.input["mean"] else "" for m in c.metrics), style="dim")
    digits = 3 if c.task == "segmentation" else 4
    for model in c.models:
        cells = [f"[bold]{model.mean[m]:.{digits}f}[/]" if c.best(m) == model.label else f"{model.mean[m]:.{digits}f}" for m in c.metrics]
        table.add_row(model.label + (f" (parent of {model.parent_of})" if model.parent_of else ""), *cells)
    out.print(table)
    out.print(f"report: {output / 'comparison.md'}")
