"""``qc.json``: what ``fijiport qc`` measured, read by ``export --qc`` for the model card; and
``comparison.json``: several models measured on the same images (``fijiport qc MODEL_A MODEL_B ... TEST``).

One type per QC task: :class:`RestorationQc` (CARE, and any model judged against ground-truth images),
:class:`SegmentationQc` (StarDist, against ground-truth label images) and :class:`DenoisingQc` (N2V: the
residual, and clean images where there are some). :func:`read_qc_report` reads each; files written before the
schema version existed read as version 1. :class:`QcComparison` holds the figures of every model of a
comparison, each of which also has its own ``qc.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..errors import DataError
from ..files import write_json
from ..kinds.base import RESTORATION_METRICS

QC_JSON = "qc.json"
QC_MD = "qc.md"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"
MODELS_DIR = "models"
"""Where a comparison keeps each model's own QC report (``models/<label>/qc.json``, usable with ``export --qc``)."""
SCHEMA_VERSION = 1
METRICS = tuple(RESTORATION_METRICS)
"""Restoration metrics, in the order reports show them. ``pearson`` came later: reports written before it lack it
(their ``Scores.pearson`` reads as None and their ``summary`` has no ``pearson`` entry)."""
METRIC_LABELS = RESTORATION_METRICS
"""How tables and plots name each restoration metric."""
SEGMENTATION_METRICS = ("precision", "recall", "f1", "accuracy", "panoptic_quality")
RESIDUAL_METRICS = {
    "autocorrelation_lag1": "residual autocorrelation (lag 1)",
    "correlation_with_prediction": "residual–prediction correlation",
    "std_ratio": "residual std / input std",
}
"""What a denoising (N2V) comparison reports without ground truth: the residual's figures (``DenoisingQc``)."""
CLOSEST_TO_ZERO = ("autocorrelation_lag1", "correlation_with_prediction")
"""Metrics whose best value is 0 (a residual of pure noise)."""
LOWER_IS_BETTER = ("nrmse",)
NO_BEST = ("std_ratio",)
"""Metrics no value of which is better in itself (how much a model removes depends on the noise)."""


class Scores(BaseModel):
    """One image's scores against its ground truth."""

    model_config = ConfigDict(extra="allow")
    psnr: float
    ssim: float
    nrmse: float
    pearson: Optional[float] = None
    """Pearson's correlation with the ground truth (None in reports written before fijiport measured it)."""


class RestorationImage(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    shape: list[int]
    n_tiles: list[int]
    input: Optional[Scores]
    """The input's scores (the baseline); None when GT's channels have no counterpart in the input."""
    prediction: Scores


class QcProvenance(BaseModel):
    """What every QC report records about what it measured: the model (folder and the weights' sha256, so
    export can refuse another model's figures) and the images (folder, and which split of a data folder)."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    kind: str
    fijiport_version: str
    model: str
    weights: str = ""
    weights_sha256: Optional[str] = None
    """sha256 of the weights file measured (None in reports written before fijiport recorded it)."""
    test_dir: str
    split: Optional[str] = None
    """``test`` (held out), ``train`` (the model's own training images: flatters it) or None (not a data folder)."""
    warnings: list[str] = []
    """What QC found suspicious (a model that makes images worse, absurd object counts)."""

    @property
    def images_word(self) -> str:
        return "training" if self.split == "train" else "test"


class RestorationQc(QcProvenance):
    """QC of a restoration model: each test image's input and prediction scored against its ground truth."""

    kind: str = "care"
    normalization: dict[str, Any]
    baseline: Optional[dict[str, Any]] = None
    """``input_channels``: for each GT channel, the input channel scored against it as the baseline (None without one,
    and in reports written before fijiport recorded it)."""
    no_baseline: Optional[str] = None
    """Why the input has no scores (GT's channels are not the input's); None when it has."""
    n_images: int
    summary: dict[str, dict[str, float]]
    """Mean per metric (:data:`METRICS`) of ``prediction``, and of ``input`` when there is a baseline."""
    images: list[RestorationImage]

    @property
    def psnr_gain(self) -> Optional[float]:
        """Mean PSNR of the prediction minus that of the input (dB): below 0 the model makes images worse; None
        without an input baseline."""
        if "input" not in self.summary["psnr"]:
            return None
        return float(self.summary["psnr"]["prediction"] - self.summary["psnr"]["input"])


class SegmentationQc(QcProvenance):
    """QC of an instance-segmentation model: matching against ground-truth labels at IoU 0.1–0.9."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    kind: str = "stardist"
    n_images: int
    thresholds: dict[str, float]
    normalization: dict[str, Any]
    at_iou_05: dict[str, Any] = Field(alias="at_iou_0.5")
    per_threshold: list[dict[str, Any]]
    images: list[dict[str, Any]]


class DenoisingQc(QcProvenance):
    """QC of a denoising model trained without ground truth (N2V): what its residual (input − prediction) holds, and
    scores against clean images where the test data has them."""

    kind: str = "n2v"
    normalization: dict[str, Any]
    n_images: int
    n_with_gt: int = 0
    residual: dict[str, Any]
    """Mean over the images of ``autocorrelation`` (at ``lags``), ``correlation_with_prediction``, ``std_ratio``."""
    thresholds: dict[str, float] = {}
    summary: Optional[dict[str, dict[str, float]]] = None
    """Mean per metric (:data:`METRICS`) of ``input`` and ``prediction`` over the images with clean versions."""
    images: list[dict[str, Any]]


QcReport = Union[RestorationQc, SegmentationQc, DenoisingQc]


def write_qc_report(folder: Path, report: QcReport) -> None:
    write_json(Path(folder) / QC_JSON, report.model_dump(mode="json", by_alias=True))


def read_qc_report(path: Optional[Path]) -> Optional[QcReport]:
    """A ``qc.json`` written by ``fijiport qc`` (None for None).

    Parameters
    ----------
    path
        The ``qc.json`` file, or None.

    Returns
    -------
    RestorationQc or SegmentationQc or DenoisingQc or None
        The report, typed by its task (files from older fijiport versions read too).
    """
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"--qc {path} is not a readable qc.json ({e}); run `fijiport qc` to create it") from None
    if not isinstance(data, dict):
        raise DataError(f"--qc {path} is not a qc.json written by `fijiport qc`")
    cls = SegmentationQc if "per_threshold" in data else DenoisingQc if "residual" in data else RestorationQc
    try:
        return cls.model_validate(data)
    except ValueError as e:
        raise DataError(
            f"--qc {path} is not a qc.json written by `fijiport qc` ({str(e).splitlines()[0]}); run `fijiport qc` to create it"
        ) from None


class ComparedModel(BaseModel):
    """One model of a comparison: which (path, weights and their sha256), its own report, and its figures."""

    model_config = ConfigDict(extra="allow")
    label: str
    """Its name in the comparison's tables, plot and panels (the folder's name, made unique)."""
    kind: str
    model: str
    weights: str
    weights_sha256: Optional[str] = None
    report: str
    """Its own QC report folder, relative to the comparison's (``models/<label>``)."""
    parent_of: Optional[str] = None
    """With ``--with-parent``: the label of the model fine-tuned from this one."""
    fine_tuned_from: Optional[str] = None
    """The parent its training record names (name, and Zoo id / DOI for packages), if it was fine-tuned."""
    mean: dict[str, float]
    """Restoration: mean PSNR/SSIM/NRMSE of its predictions; segmentation: the dataset's figures at IoU 0.5."""
    per_image: dict[str, dict[str, float]]
    """Image name → metric → value (segmentation: at IoU 0.5, with ``objects_predicted``)."""
    per_threshold: Optional[list[dict[str, Any]]] = None
    """Segmentation: the dataset's figures at every IoU threshold."""


class QcComparison(BaseModel):
    """``comparison.json``: every model's figures on the same test images, in the order they were given."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    task: Literal["restoration", "segmentation", "denoising"]
    fijiport_version: str
    test_dir: str
    split: Optional[str] = None
    images: list[str]
    metrics: list[str]
    input: Optional[dict[str, Any]] = None
    """Restoration: the input's own scores against the ground truth (``mean`` and ``per_image``), the baseline."""
    models: list[ComparedModel]
    warnings: list[str] = []

    def best(self, metric: str) -> Optional[str]:
        """The label of the model with the best mean ``metric`` (lowest NRMSE, residual figures closest to 0, highest of
        the others); None for a metric with no better value (:data:`NO_BEST`)."""
        if metric in NO_BEST:
            return None
        if metric in CLOSEST_TO_ZERO:
            return min(self.models, key=lambda m: abs(m.mean[metric])).label
        pick = min if metric in LOWER_IS_BETTER else max
        return pick(self.models, key=lambda m: m.mean[metric]).label


def write_comparison(folder: Path, comparison: QcComparison) -> None:
    write_json(Path(folder) / COMPARISON_JSON, comparison.model_dump(mode="json"))


def read_comparison(path: Path) -> QcComparison:
    """A ``comparison.json`` written by ``fijiport qc MODEL_A MODEL_B ... TEST``."""
    try:
        return QcComparison.model_validate(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as e:
        raise DataError(
            f"{path} is not a comparison.json written by `fijiport qc MODEL_A MODEL_B ...` ({str(e).splitlines()[0]})"
        ) from None
