"""The model folder: what ``train`` writes and ``qc``, ``export`` and ``predict`` read.

A model folder is csbdeep's (CARE), stardist's or n2v's own layout, so their libraries load it, plus
the files fijiport adds next to it::

    MODEL/config.json               the library's network config (decides the model kind)
    MODEL/weights_best.h5           best validation loss (also weights_last.h5, weights_now.h5 while training)
    MODEL/thresholds.json           StarDist: probability and NMS thresholds
    MODEL/fijiport_config.yaml      the resolved training options (reusable with --config; the percentiles)
    MODEL/fijiport_progress.json    epochs done, best validation loss, history so far (what --resume continues)
    MODEL/fijiport_training.json    the training record: data, split, normalisation, timings
    MODEL/history.csv, loss.png     the loss history and its plot

Folders trained elsewhere have only the library's files; everything fijiport adds is optional on
reading. Every file is read and written here only, and the model kind is decided once, by
:meth:`ModelFolder.open` through the registry of :mod:`fijiport.kinds`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError, DataError
from ..files import atomic_file, check_hdf5, sha256_file, write_json
from ..kinds import kind_of_config

if TYPE_CHECKING:
    from ..kinds.base import ModelKind

log = logging.getLogger(__name__)

CONFIG_JSON = "config.json"
THRESHOLDS_JSON = "thresholds.json"
TRAINING_CONFIG = "fijiport_config.yaml"
"""The resolved training config, next to the model it trained."""
PROGRESS_JSON = "fijiport_progress.json"
"""Epochs done, best validation loss and the loss history so far: what ``--resume`` continues from."""
TRAINING_RECORD = "fijiport_training.json"
HISTORY_CSV = "history.csv"
LOSS_PNG = "loss.png"
WEIGHTS_BEST, WEIGHTS_LAST, WEIGHTS_NOW = "weights_best.h5", "weights_last.h5", "weights_now.h5"
WEIGHTS_CANDIDATES = (WEIGHTS_BEST, WEIGHTS_LAST, WEIGHTS_NOW)
SCHEMA_VERSION = 1


class Normalization(BaseModel):
    """How training normalised the inputs: percentiles (CARE, StarDist) or the dataset's mean and std (N2V)."""

    model_config = ConfigDict(extra="allow")
    percentile_low: Optional[float] = None
    percentile_high: Optional[float] = None
    means: Optional[list[float]] = None
    stds: Optional[list[float]] = None


class PatchCounts(BaseModel):
    model_config = ConfigDict(extra="allow")
    train: int
    validation: int
    shape: list[int]


class ParentRecord(BaseModel):
    """The model a fine-tuning started from (``train --init-from``): where it came from and which weights, so the
    card, the rdf's ``parent`` and ``qc --with-parent`` can name it."""

    model_config = ConfigDict(extra="allow")
    path: str
    """The model folder or package given, resolved."""
    source: Literal["model folder", "package"]
    kind: str
    name: str
    """The folder's name, or the package's own name."""
    weights: str
    """The weights file loaded (in the folder, or in the package)."""
    weights_sha256: str
    zoo_id: Optional[str] = None
    """Packages: the rdf's ``id`` (the BioImage Model Zoo's id, e.g. ``affable-shark``) when it has one."""
    version: Optional[str] = None
    """Packages: the rdf's ``version``."""
    doi: Optional[str] = None
    """Packages: the Zoo's DOI (``config.bioimageio.doi``) when the rdf has one."""
    inherited: list[str] = []
    """The training options taken from the parent because they were not given (percentiles, network settings,
    thresholds)."""

    def describe(self) -> str:
        """One line: the parent's name and where it came from."""
        where = [f"Zoo id {self.zoo_id}" if self.zoo_id else "", f"DOI {self.doi}" if self.doi else ""]
        extra = ", ".join(w for w in where if w)
        return f"{self.source} {self.name!r}" + (f" ({extra})" if extra else "")


class TrainingRecord(BaseModel):
    """``fijiport_training.json``: what a fijiport training used and how long it took."""

    model_config = ConfigDict(extra="allow")  # records of newer fijiport versions still read
    schema_version: int = SCHEMA_VERSION
    kind: str
    fijiport_version: str
    tensorflow_version: str = ""
    data_dir: str = ""
    train_images: list[str] = []
    validation_images: Optional[list[str]] = None
    test_images: list[str] = []
    axes: str = ""
    patches: Optional[PatchCounts] = None
    normalization: Optional[Normalization] = None
    thresholds: Optional[dict[str, float]] = None
    anisotropy: Optional[list[float]] = None
    grid: Optional[list[int]] = None
    n_rays: Optional[int] = None
    object_stats: Optional[dict[str, float]] = None
    """Label kinds: the training masks' objects (count, median area, objects per megapixel), to flag predictions far
    from them."""
    best_val_loss: Optional[float] = None
    seconds: Optional[float] = None
    epoch_seconds: list[float] = []
    steps_per_second: Optional[float] = None
    parent: Optional[ParentRecord] = None
    """The model this one was fine-tuned from (``train --init-from``); None when trained from scratch."""
    pixel_size_um: Optional[dict[str, float]] = None
    """The training images' pixel size (micrometres along Z, Y, X; the median where they differ) as their ImageJ/OME
    metadata declares it; None when they declare none. ``predict`` warns on images whose pixel size differs."""

    def images_of(self, split: str) -> list[str]:
        """The record's images of ``split``: ``test``, ``validation`` or ``train``."""
        return list({"test": self.test_images, "validation": self.validation_images or [], "train": self.train_images}[split])


class TrainingProgress(BaseModel):
    """``fijiport_progress.json``: written after every epoch, so an interrupted run can go on (``--resume``)."""

    model_config = ConfigDict(extra="allow")
    schema_version: int = SCHEMA_VERSION
    epochs_done: int = 0
    best_val_loss: Optional[float] = None
    history: dict[str, list[float]] = {}
    epoch_seconds: list[float] = []
    parent: Optional[ParentRecord] = None
    """The model a fine-tuning started from, kept here so a resumed run still records it."""

    def record_epoch(self, epochs_done: int, logs: dict[str, float], seconds: float) -> None:
        self.epoch_seconds.append(round(seconds, 3))
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        self.epochs_done = epochs_done
        if "val_loss" in logs and (self.best_val_loss is None or logs["val_loss"] < self.best_val_loss):
            self.best_val_loss = logs["val_loss"]


def read_json_file(path: Path, what: str) -> Optional[dict]:
    """A JSON object from ``path`` (None when absent); a damaged file is named with the fix."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON ({e}); copy the model folder again from where it was trained") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not {what}")
    return data


def read_training_config(model_dir: Path) -> Optional[dict[str, Any]]:
    """The resolved training options fijiport wrote (``fijiport_config.yaml``), or None."""
    import yaml

    path = Path(model_dir) / TRAINING_CONFIG
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        log.warning("%s is not valid YAML; ignoring it", path)
        return None
    return data if isinstance(data, dict) else None


def write_training_config(model_dir: Path, config: BaseModel, kind: str) -> None:
    """The resolved config, written before training starts so an interrupted run can be resumed.

    Resolved means the values the training uses: an option left to its default (``None``: kernel size,
    loss, tensorboard, patch size, …) is written as the value it stood for, so the file says what
    trained the model and ``--resume`` or ``--config`` repeat it even where a default would change.
    """
    import yaml

    unresolved = [k for k, v in config.model_dump().items() if v is None]
    assert not unresolved, f"training config written with defaults left unresolved: {unresolved}"
    with atomic_file(Path(model_dir) / TRAINING_CONFIG, overwrite=True) as tmp:
        tmp.write_text(
            f"# resolved fijiport training config; reuse with `fijiport train {kind} DATA -o MODEL --config THIS_FILE`\n"
            + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        )


def read_progress(model_dir: Path) -> Optional[TrainingProgress]:
    data = read_json_file(Path(model_dir) / PROGRESS_JSON, "a fijiport training progress record")
    return None if data is None else TrainingProgress.model_validate(data)


def write_progress(model_dir: Path, progress: TrainingProgress) -> None:
    write_json(Path(model_dir) / PROGRESS_JSON, progress.model_dump(mode="json"))


def read_training_record(model_dir: Path) -> Optional[TrainingRecord]:
    path = Path(model_dir) / TRAINING_RECORD
    try:
        data = read_json_file(path, "a fijiport training record")
        return None if data is None else TrainingRecord.model_validate(data)
    except (DataError, ValueError) as e:
        log.warning("%s cannot be read (%s); ignoring it", path, str(e).splitlines()[0][:100])
        return None


def write_training_record(model_dir: Path, record: TrainingRecord) -> None:
    write_json(Path(model_dir) / TRAINING_RECORD, record.model_dump(mode="json", exclude_none=True))


def write_thresholds(model_dir: Path, thresholds: dict[str, float]) -> None:
    with atomic_file(Path(model_dir) / THRESHOLDS_JSON, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"prob": float(thresholds["prob"]), "nms": float(thresholds["nms"])}))


def read_thresholds(model_dir: Path) -> Optional[dict[str, float]]:
    """``thresholds.json`` as ``{"prob", "nms"}``, or None when the folder has none."""
    path = Path(model_dir) / THRESHOLDS_JSON
    data = read_json_file(path, "a StarDist thresholds file")
    if data is None:
        return None
    if not {"prob", "nms"} <= set(data):
        raise DataError(f"{path} must hold 'prob' and 'nms'")
    return {"prob": float(data["prob"]), "nms": float(data["nms"])}


@dataclass
class ModelFolder:
    """A model folder, checked and described: its kind, network config, weights, normalisation and records."""

    path: Path
    kind: ModelKind
    config: dict[str, Any]
    weights_path: Path
    percentiles: tuple[float, float]
    percentiles_source: str
    """``training`` (recorded by fijiport), ``given`` (an option), ``package`` (a package's preprocessing) or
    ``default`` (the kind's usual values: the folder records none)."""
    thresholds: Optional[dict[str, float]] = None
    training_record: Optional[TrainingRecord] = None
    training_config: Optional[dict[str, Any]] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        model_dir: Path,
        *,
        weights: Optional[str] = None,
        percentiles: Optional[tuple[float, float]] = None,
        percentiles_source: str = "given",
        kind: Optional[str] = None,
    ) -> ModelFolder:
        """Check and describe a model folder (trained by fijiport or not); raise with the fix when something is
        missing. ``kind`` names the kind a command expects (``train care`` on a StarDist folder, say)."""

        model_dir = Path(model_dir)
        if model_dir.is_file():
            raise DataError(f"{model_dir} is a file; pass the model folder that holds config.json and weights_best.h5")
        if not model_dir.is_dir():
            raise DataError(f"model folder {model_dir} does not exist")
        config = read_network_config(model_dir)
        model_kind = kind_of_config(config, model_dir / CONFIG_JSON)
        if kind is not None and model_kind.name != kind:
            raise ConfigError(
                f"{model_dir} is a {model_kind.title} model, not a {kind} one; use it with the commands for "
                f"{model_kind.title} models (`fijiport export`, `qc` and `predict` tell the kind by themselves)"
            )
        model_kind.check_config(config, model_dir / CONFIG_JSON)
        weights_path = _weights(model_dir, weights, model_kind.weight_candidates)
        record = read_training_record(model_dir)
        training_config = read_training_config(model_dir)
        if percentiles is not None:
            pct, source = (float(percentiles[0]), float(percentiles[1])), percentiles_source
        else:
            pct, source = _recorded_percentiles(model_dir, training_config, model_kind)
        folder = cls(model_dir, model_kind, config, weights_path, pct, source, None, record, training_config)
        folder.thresholds = read_thresholds(model_dir)
        return folder

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def axes(self) -> str:
        """Network axes with channel last, e.g. ``YXC`` or ``ZYXC``."""
        axes = str(self.config.get("axes", "YXC")).upper()
        return axes if "C" in axes else axes + "C"

    @property
    def spatial_axes(self) -> str:
        return "".join(a for a in self.axes if a in "ZYX")

    @property
    def n_dim(self) -> int:
        return len(self.spatial_axes)

    @property
    def n_channel_in(self) -> int:
        return int(self.config.get("n_channel_in", 1))

    @property
    def n_channel_out(self) -> int:
        return int(self.config.get("n_channel_out", 1))

    @property
    def image_axes(self) -> str:
        """Axes of an input image: the spatial axes, plus C when the network takes several channels."""
        return self.spatial_axes + ("C" if self.n_channel_in > 1 else "")

    def load_keras(self):
        """The network with this folder's weights, in the kind's own library (csbdeep, stardist, n2v)."""
        return self.kind.load_keras(self)

    def weights_sha256(self) -> str:
        """sha256 of the weights file: what QC reports record, so that export can tell another model's figures."""
        if "weights_sha256" not in self.extra:
            self.extra["weights_sha256"] = sha256_file(self.weights_path)
        return self.extra["weights_sha256"]

    def trained_on(self, names: list[str], data_dir: Path) -> bool:
        """Whether ``names`` of the data folder ``data_dir`` are all images this model was trained (or validated) on."""
        record = self.training_record
        if record is None or not record.data_dir or not names:
            return False
        try:
            same = Path(record.data_dir).resolve() == Path(data_dir).resolve()
        except OSError:
            return False
        return same and set(names) <= set(record.train_images) | set(record.validation_images or [])


def read_network_config(model_dir: Path) -> dict[str, Any]:
    cfg_path = Path(model_dir) / CONFIG_JSON
    if not cfg_path.is_file():
        raise DataError(
            f"{model_dir} has no config.json; pass the folder csbdeep created when training (it holds config.json and weights_best.h5)"
        )
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{cfg_path} is not valid JSON ({e}); copy the model folder again from where it was trained") from None
    if not isinstance(config, dict) or "axes" not in config:
        raise ConfigError(f"{cfg_path} is not a csbdeep model config (no 'axes' key)")
    return config


def has_network_config(model_dir: Path) -> bool:
    return (Path(model_dir) / CONFIG_JSON).is_file()


def _weights(model_dir: Path, weights: Optional[str], candidates: tuple[str, ...]) -> Path:
    if weights is None:
        found = [c for c in candidates if (model_dir / c).is_file()]
        if not found:
            raise DataError(
                f"{model_dir} has no {' or '.join(candidates)}, so no weights to load; copy weights_best.h5 from "
                "where the model was trained into this folder (fijiport export also takes another .h5 with "
                "--weights FILE.h5)"
            )
        path = model_dir / found[0]
    else:
        path = model_dir / weights if not Path(weights).is_absolute() else Path(weights)
        if not path.is_file():
            raise DataError(f"weights file {path} does not exist")
    check_hdf5(path)
    return path


def _recorded_percentiles(model_dir: Path, training_config: Optional[dict], kind: ModelKind) -> tuple[tuple[float, float], str]:
    if not kind.uses_percentiles:  # normalised otherwise (N2V: the dataset's mean and std, in config.json)
        return kind.default_percentiles, "n/a"
    if training_config is not None:
        try:
            return (float(training_config["percentile_low"]), float(training_config["percentile_high"])), "training"
        except (KeyError, TypeError, ValueError):
            log.warning("%s does not record the normalisation percentiles", model_dir / TRAINING_CONFIG)
    low, high = kind.default_percentiles
    log.warning(
        "%s does not record its normalisation percentiles; using %s %s/%s (if training used others, pass them: "
        "--percentiles LOW,HIGH to export, qc and predict, --percentile-low/--percentile-high to train --init-from)",
        model_dir,
        kind.default_percentiles_origin,
        low,
        high,
    )
    return kind.default_percentiles, "default"
