"""Quality control on held-out data: restoration metrics against ground-truth images (CARE), instance
matching against ground-truth labels (StarDist), the residual and optional clean images (N2V); reports,
plots and panels. The model's kind decides which."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ..artifacts.model_folder import ModelFolder
from ..artifacts.qc_report import QcReport, read_qc_report
from .compare import compare_models
from .denoising import qc_n2v, residual_stats
from .metrics import RestorationScores, nrmse, pearson, psnr, restoration_scores, rse_map, ssim, ssim_map
from .restoration import QcResult, qc_care
from .segmentation import qc_stardist


def qc_model(
    model_dir: Path,
    test_dir: Path,
    report_dir: Path,
    *,
    percentiles: Optional[tuple[float, float]] = None,
    n_tiles: Optional[tuple[int, ...]] = None,
    save_predictions: bool = False,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> QcReport:
    """Measure any model folder on held-out data with its kind's QC (restoration for CARE, segmentation for StarDist,
    denoising for N2V); writes ``report_dir`` and returns what ``qc.json`` holds.

    Parameters
    ----------
    model_dir
        A model folder of any kind (fijiport's, csbdeep's, stardist's, n2v's).
    test_dir
        The held-out images: a data folder's ``test/`` (or the data folder itself).
    report_dir
        The report folder to write (``qc.json``, ``qc.md``, panels), whole or not at all.
    percentiles
        Input normalisation for CARE folders that do not record theirs.
    n_tiles
        Tiles per image axis (default: tiles of about a million pixels).
    save_predictions
        Also write the predictions (``predictions/``).
    overwrite
        Replace an existing ``report_dir``.
    progress
        Called as ``progress(done, total, name)`` before each image (e.g. :class:`fijiport.notebook.CountBar`).

    Returns
    -------
    RestorationQc or SegmentationQc or DenoisingQc
        The report, as written to ``qc.json``.
    """

    folder = ModelFolder.open(model_dir, percentiles=percentiles)
    if folder.kind.qc_task == "segmentation":
        return qc_stardist(folder, test_dir, report_dir, save_predictions=save_predictions, overwrite=overwrite, progress=progress)
    if folder.kind.qc_task == "denoising":
        return qc_n2v(folder, test_dir, report_dir, n_tiles=n_tiles, save_predictions=save_predictions, overwrite=overwrite,
                      progress=progress)  # fmt: skip
    qc_care(
        folder,
        test_dir,
        report_dir,
        percentiles=percentiles,
        n_tiles=n_tiles,
        save_predictions=save_predictions,
        overwrite=overwrite,
        progress=progress,
    )
    report = read_qc_report(Path(report_dir) / "qc.json")
    assert report is not None
    return report


__all__ = [
    "QcResult",
    "RestorationScores",
    "compare_models",
    "nrmse",
    "pearson",
    "psnr",
    "qc_care",
    "qc_model",
    "qc_n2v",
    "qc_stardist",
    "residual_stats",
    "restoration_scores",
    "rse_map",
    "ssim",
    "ssim_map",
]
