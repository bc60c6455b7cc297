"""``fijiport qc``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..artifacts.model_folder import ModelFolder
from ..config.export import checked_percentiles
from ..qc import qc_care, qc_n2v, qc_stardist
from ._common import out, parse_numbers, parse_tiles, progress_bar


def qc(
    model_dir: Path = typer.Argument(..., help="CARE, StarDist or N2V model folder (config.json + weights_best.h5).", show_default=False),
    test_dir: Path = typer.Argument(
        ...,
        help="Held-out data: DATA_DIR/test of `fijiport prepare` (CARE: low/ and GT/; StarDist: images/ and masks/; N2V: images/, GT/ optional, or a folder of TIFFs).",
        show_default=False,
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Report folder to create: qc.json, qc.md and panels/*.png.", show_default=False
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

    Example: [bold]fijiport qc models/care_nuclei data/test -o qc_report[/]
    """

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
    for m in ("psnr", "ssim", "nrmse"):
        table.add_row(m.upper(), f"{s[m]['input']:.4f}", f"{s[m]['prediction']:.4f}", f"{s[m]['prediction'] - s[m]['input']:+.4f}")
    out.print(table)
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
