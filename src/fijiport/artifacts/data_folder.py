"""The data folder ``fijiport prepare`` writes and ``train``, ``qc`` and ``export`` read.

Layout, for CARE (``prepare care``) and StarDist (``prepare stardist``)::

    DATA/fijiport_data.json              this manifest: each source's path and sha256, the split, the axes
    DATA/{train,test}/{low,GT}/NAME      CARE pairs (input, ground truth) under one name
    DATA/{train,test}/{images,masks}/NAME StarDist images and their label masks (relabelled 1..N)

The manifest is read and written here only, as one of the types below (``kind`` tells them apart).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict

from ..axes import channel_count
from ..config.data import PrepareCareConfig, PrepareStardistConfig
from ..config.n2v import PrepareN2vConfig
from ..errors import DataError
from ..files import write_json

MANIFEST_NAME = "fijiport_data.json"
SCHEMA_VERSION = 1
SPLITS = ("train", "test")
SOURCE_DIR, TARGET_DIR = "low", "GT"
"""CARE: the input acquisitions and their ground truth."""
IMAGES_DIR, MASKS_DIR = "images", "masks"
"""StarDist: the images and their label masks."""


class ChannelFile(BaseModel):
    """One channel's original file of an image ``prepare care --channels`` joined from one file per channel."""

    model_config = ConfigDict(extra="forbid")
    channel: str
    """The value of ``--pair-by``'s group ``channel`` in its name."""
    source: str
    sha256: str


class FileRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    """Absolute path of the original file (joined channels: the first channel's)."""
    sha256: str
    shape: list[int]
    dtype: str
    placed: Optional[Literal["copy", "hardlink", "joined"]] = None
    """How the file reached the data folder: a copy, a hard link to the original (``--link hardlink`` falls back
    to a copy across file systems), or written joined from ``channel_files``. None for files written anew (StarDist
    masks) and in manifests before fijiport recorded it."""
    channel_files: Optional[list[ChannelFile]] = None
    """With ``--channels``: the file of each channel, in the order the image holds them (its C axis)."""
    pixel_size_um: Optional[dict[str, float]] = None
    """Micrometres per pixel along Z, Y, X as the file's ImageJ or OME metadata declares them (``fijiport.calibration``);
    None for uncalibrated files and in manifests written before fijiport read them."""


class PairChecks(BaseModel):
    """The figures ``prepare care`` measured on a pair to tell it is one (``data.pair_checks`` says how and which
    values it refuses or warns about). None where a figure cannot be measured (a constant image)."""

    model_config = ConfigDict(extra="forbid")
    correlation: Optional[float] = None
    """Pearson correlation of low and GT, both smoothed (Gaussian, 2 px in Y/X, 1 in Z)."""
    shift: Optional[list[float]] = None
    """Where GT's content sits relative to low's, in pixels along the spatial axes (Z, Y, X order)."""
    aligned_correlation: Optional[float] = None
    """The correlation once GT is moved back by ``shift`` (rounded), on the overlap."""
    noise_ratio: Optional[float] = None
    """Noise of low over noise of GT, each relative to its own signal range: above 1 when low is the noisier."""
    saturated_low: Optional[float] = None
    """Fraction of low's pixels at its maximum value (clipped or over-exposed when large)."""
    saturated_gt: Optional[float] = None
    warnings: list[str] = []
    """The warnings logged for this pair."""


class PairRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    split: Literal["train", "test"]
    low: FileRecord
    gt: FileRecord
    checks: Optional[PairChecks] = None
    """What the pair checks measured; None with ``--skip-pair-checks`` and in manifests written before them."""
    key: Optional[dict[str, str]] = None
    """With ``--pair-by``: the named groups low and GT matched (``{"channel": "0", "stack": "0012"}``)."""


class DataManifest(BaseModel):
    """What ``prepare care`` wrote: where each file came from (with its sha256) and the split."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    kind: Literal["care"] = "care"
    fijiport_version: str
    axes: str
    gt_axes: Optional[str] = None
    """The GT's axes where its channels are not the input's (``YX`` for one channel of a ``CYX`` input, or ``CYX``
    again with another number of channels); None when GT and input have the same axes and channels."""
    config: PrepareCareConfig
    pairs: list[PairRecord]
    skipped_unpaired: list[str] = []

    @property
    def target_axes(self) -> str:
        return self.gt_axes or self.axes

    def channel_counts(self) -> tuple[int, int]:
        """The channels of the inputs and of the ground truth (the network's in and out); (1, 1) without pairs."""
        if not self.pairs:
            return 1, 1
        return channel_count(self.pairs[0].low.shape, self.axes), channel_count(self.pairs[0].gt.shape, self.target_axes)

    def baseline_channels(self) -> Optional[list[int]]:
        """For each GT channel, the input channel that is its low-quality acquisition (what QC scores as the input's
        baseline): each channel itself when GT has the input's channels, the input channel of the same value with
        ``--gt-channels`` ([0] for images without channels); None when some GT channel has no counterpart in the input
        (no baseline)."""
        channels, gt_channels = self.config.channels, self.config.gt_channels
        if channels is not None and gt_channels is not None:
            return None if any(c not in channels for c in gt_channels) else [channels.index(c) for c in gt_channels]
        if self.gt_axes is None:
            return list(range(self.channel_counts()[0]))
        return None

    def names(self, split: str) -> list[str]:
        return [p.name for p in self.pairs if p.split == split]

    def pixel_sizes(self, split: str) -> list[Optional[dict[str, float]]]:
        """Each pair's pixel size in ``split`` (the low file's, else the GT's; None where neither declares one)."""
        return [p.low.pixel_size_um or p.gt.pixel_size_um for p in self.pairs if p.split == split]

    def split_of(self, name: str) -> str:
        return next(p.split for p in self.pairs if p.name == name)

    @staticmethod
    def input_path(data_dir: Path, split: str, name: str) -> Path:
        return Path(data_dir) / split / SOURCE_DIR / name

    @staticmethod
    def target_path(data_dir: Path, split: str, name: str) -> Path:
        return Path(data_dir) / split / TARGET_DIR / name


class StardistRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    split: Literal["train", "test"]
    image: FileRecord
    mask: FileRecord
    """The user's mask or ROI-set zip (the written mask is relabelled 1..N)."""
    mask_source: Literal["mask", "rois"]
    report: dict


class StardistManifest(BaseModel):
    """What ``prepare stardist`` wrote: each image and mask's origin, the per-image label report, the split."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    kind: Literal["stardist"] = "stardist"
    fijiport_version: str
    axes: str
    config: PrepareStardistConfig
    items: list[StardistRecord]
    skipped_unpaired: list[str] = []

    def names(self, split: str) -> list[str]:
        return [r.name for r in self.items if r.split == split]

    @staticmethod
    def input_path(data_dir: Path, split: str, name: str) -> Path:
        return Path(data_dir) / split / IMAGES_DIR / name

    @staticmethod
    def target_path(data_dir: Path, split: str, name: str) -> Path:
        return Path(data_dir) / split / MASKS_DIR / name


N2V_SPLITS = ("train", "validation", "test")
GT_DIR = "GT"
"""N2V: the optional clean images (ground truth) of ``--gt``, used only for QC."""


class N2vRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    split: Literal["train", "validation", "test"]
    image: FileRecord
    gt: Optional[FileRecord] = None
    frames: Optional[list[int]] = None
    """For a single time-lapse split by frames: the frames (of the source file) this split's file holds."""


class N2vManifest(BaseModel):
    """What ``prepare n2v`` wrote: noisy images (no ground truth needed), split by file (or by frame for one
    time-lapse) into training, validation and test; the optional ground truth for QC."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    kind: Literal["n2v"] = "n2v"
    fijiport_version: str
    axes: str
    config: PrepareN2vConfig
    items: list[N2vRecord]
    skipped_unpaired: list[str] = []

    def names(self, split: str) -> list[str]:
        return [r.name for r in self.items if r.split == split]

    @staticmethod
    def input_path(data_dir: Path, split: str, name: str) -> Path:
        return Path(data_dir) / split / IMAGES_DIR / name

    @staticmethod
    def target_path(data_dir: Path, split: str, name: str) -> Path:
        return Path(data_dir) / split / GT_DIR / name


AnyManifest = Union[DataManifest, StardistManifest, N2vManifest]
M = TypeVar("M", DataManifest, StardistManifest, N2vManifest)
INPUT_DIRS = {"care": SOURCE_DIR, "stardist": IMAGES_DIR, "n2v": IMAGES_DIR}
"""Where each kind's data folder keeps the network inputs (export takes its test input from there)."""


def split_of_folder(folder: Path) -> Optional[str]:
    """Which split of a data folder ``folder`` is: ``test`` for the data folder itself (QC uses its test split) or its
    ``test`` sub-folder, ``train`` for its ``train`` sub-folder; None for a folder outside any data folder."""
    folder = Path(folder)
    if (folder / MANIFEST_NAME).is_file():
        return "test"
    if folder.name in N2V_SPLITS and (folder.parent / MANIFEST_NAME).is_file():
        return folder.name
    return None


def recorded_axes(folder: Path, load: Callable[[Path], M]) -> Optional[str]:
    """The axes the data folder ``folder`` is (or is a split of) records, read with ``load`` (the manifest loader of
    the kind wanted); None for a folder outside a data folder, or a data folder of another kind."""
    manifest = recorded_manifest(folder, load)
    return None if manifest is None else manifest.axes


def recorded_manifest(folder: Path, load: Callable[[Path], M]) -> Optional[M]:
    """The manifest of the data folder ``folder`` is (or is a split of), read with ``load``; None for a folder outside
    a data folder, or a data folder of another kind."""
    for base in (Path(folder), Path(folder).parent):
        if (base / MANIFEST_NAME).is_file():
            try:
                return load(base)
            except DataError:
                return None
    return None


def write_manifest(data_dir: Path, manifest: AnyManifest) -> None:
    write_json(Path(data_dir) / MANIFEST_NAME, manifest.model_dump(mode="json"))


def _raw(data_dir: Path, create_hint: str) -> dict:
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{data_dir} has no {MANIFEST_NAME}; create the data folder with `{create_hint}`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not valid JSON ({e}); run `fijiport prepare` again") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a fijiport data manifest; run `fijiport prepare` again")
    return data


def load_manifest(data_dir: Path) -> DataManifest:
    """The manifest of a CARE data folder written by ``fijiport prepare care``.

    Parameters
    ----------
    data_dir
        The data folder (it holds ``fijiport_data.json``).

    Returns
    -------
    DataManifest
        Each source's path and sha256, how it was placed, the split, the axes and each pair's checked figures.
    """
    data = _raw(data_dir, f"fijiport prepare care --low DIR --gt DIR -o {data_dir}")
    if data.get("kind") in ("stardist", "n2v"):
        what = {"stardist": "StarDist data folder (images/masks)", "n2v": "Noise2Void data folder (noisy images, no pairs)"}
        raise DataError(
            f"{data_dir} is a {what[data['kind']]}: train it with `fijiport train {data['kind']} {data_dir} -o MODEL`; CARE "
            "needs a folder from `fijiport prepare care`"
        )
    try:
        return DataManifest.model_validate(data)
    except Exception as e:
        raise DataError(f"{Path(data_dir) / MANIFEST_NAME} is not a fijiport data manifest ({e}); run `fijiport prepare` again") from None


def load_stardist_manifest(data_dir: Path) -> StardistManifest:
    """The manifest of a StarDist data folder written by ``fijiport prepare stardist``."""
    data = _raw(data_dir, f"fijiport prepare stardist --images DIR --masks DIR -o {data_dir}")
    if data.get("kind") != "stardist":
        raise DataError(f"{data_dir} is a {data.get('kind', 'unknown')} data folder; StarDist needs one from `fijiport prepare stardist`")
    try:
        return StardistManifest.model_validate(data)
    except Exception as e:
        raise DataError(
            f"{Path(data_dir) / MANIFEST_NAME} is not a fijiport StarDist manifest ({e}); run `fijiport prepare stardist` again"
        ) from None


def load_n2v_manifest(data_dir: Path) -> N2vManifest:
    """The manifest of an N2V data folder written by ``fijiport prepare n2v``."""
    data = _raw(data_dir, f"fijiport prepare n2v --images DIR -o {data_dir}")
    if data.get("kind") != "n2v":
        kind = data.get("kind", "care")
        raise DataError(
            f"{data_dir} is a {kind} data folder; `fijiport train n2v` needs one from `fijiport prepare n2v --images DIR -o DATA` "
            f"(train this one with `fijiport train {kind}`)"
        )
    try:
        return N2vManifest.model_validate(data)
    except Exception as e:
        raise DataError(
            f"{Path(data_dir) / MANIFEST_NAME} is not a fijiport N2V manifest ({e}); run `fijiport prepare n2v` again"
        ) from None
