"""What ``fijiport predict`` writes: restored images, label images, ImageJ ROI sets, measurement CSVs.

Every file goes to a temporary name first and is renamed when complete.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..calibration import read_pixel_size, write_frames, write_tiff
from ..data.rois import labels_to_rois, write_rois
from ..errors import DataError
from ..files import atomic_file, check_output, is_rgb_tiff

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    source: Path
    outputs: list[Path] = field(default_factory=list)
    n_objects: Optional[int] = None
    n_tiles: tuple[int, ...] = ()
    warnings: list[str] = field(default_factory=list)
    intensity: Optional[str] = None
    """Image outputs: ``input`` (the input's intensity scale) or ``normalised`` (as the network gives them)."""
    skipped: bool = False
    """Not predicted again: its outputs existed (``--skip-existing``)."""
    pixel_size_warning: Optional[str] = None
    """Set when the image's pixel size differs from the training images' by more than 20 % (what to do included)."""
    relative: Optional[str] = None
    """The input's path below the folder given (its file name for files given one by one): where its results are
    below the output folder."""


def plausibility(path: Path, labels: np.ndarray, reference: Optional[dict], quiet: bool = False) -> list[str]:
    """A warning (logged unless ``quiet``, and returned for the result) when the objects found are far from the
    training data's."""
    from ..data.labels import implausible_objects, object_stats

    why = implausible_objects(object_stats([labels]), reference) if reference else None
    if why is None:
        return []
    if not quiet:
        log.warning("%s: %s", path.name, why)
    return [f"{path.name}: {why}"]


def write_image(path: Path, data: np.ndarray, overwrite: bool, *, axes: Optional[str] = None, source: Optional[Path] = None) -> None:
    """A restored image as float32, with ``axes`` and the pixel size of the input ``source`` (ImageJ hyperstack, or
    OME-TIFF for an OME input; :func:`fijiport.calibration.write_tiff`)."""
    write_tiff(path, data.astype(np.float32, copy=False), axes, read_pixel_size(source) if source else None, overwrite)


def wrong_dimensions(path: Path, shape: tuple[int, ...], expect: str) -> DataError:
    """The error for an image the model cannot take, with what to do about it in Fiji."""

    n = len(expect) if expect.isalpha() else None  # "ZYX", not "YX plus 2 channels"
    if is_rgb_tiff(path):
        return DataError(
            f"{path} is an RGB colour image; the model expects {expect} (grayscale): in Fiji use "
            "Image > Type > 16-bit (or Image > Color > Split Channels), save it and predict again"
        )
    fix = (
        "it has more dimensions than that (a stack, time points or channels?): split it in Fiji with Image > Stacks > "
        "Stack to Images or Image > Color > Split Channels; a time-lapse is predicted frame by frame once its file says "
        "which axis holds the frames (Image > Properties...: frames, then File > Save As > Tiff...)"
        if n is not None and len(shape) > n
        else "pass images with those axes"
    )
    return DataError(f"{path} has shape {shape} but the model expects {expect}; {fix}")


def label_targets(out_dir: Path, name: str) -> tuple[Path, Path, Path]:
    """Label TIFF (the input's name), ROI set ``<stem>.zip`` and ``<stem>.csv`` for one input."""
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    return out_dir / name, out_dir / f"{stem}.zip", out_dir / f"{stem}.csv"


def write_labels(
    labels: np.ndarray,
    img: np.ndarray,
    axes: str,
    targets: tuple[Path, Path, Path],
    overwrite: bool,
    polygons: Optional[np.ndarray] = None,
    source: Optional[Path] = None,
) -> list[Path]:
    """Write the label image, (2D only) its ROI set and the per-object CSV; return what was written.

    ``polygons`` are stardist's own polygon vertices (``details["coord"]``); without them, each
    object's outline is traced from the label image. The label image keeps the pixel size of the input ``source``.
    """
    labels_path, rois_path, csv_path = targets
    dtype = np.uint16 if labels.max() < 2**16 else np.uint32
    spatial = "".join(a for a in axes if a in "ZYX")
    write_tiff(labels_path, labels.astype(dtype), spatial, read_pixel_size(source) if source else None, overwrite)
    written = [labels_path]
    if labels.ndim == 2:
        with atomic_file(rois_path, overwrite=overwrite) as tmp, tempfile.TemporaryDirectory(dir=rois_path.parent) as scratch:
            scratch_zip = Path(scratch) / "rois.zip"
            if polygons is not None and len(polygons):
                from stardist import export_imagej_rois

                export_imagej_rois(str(scratch_zip), polygons)  # stardist's own ROI writer
            else:
                write_rois(labels_to_rois(labels), scratch_zip)
            os.replace(scratch_zip, tmp)
        written.append(rois_path)
    with atomic_file(csv_path, overwrite=overwrite) as tmp:
        write_measurements(labels, img, axes, tmp)
    written.append(csv_path)
    return written


@dataclass
class LabelFrame:
    """One frame of a time-lapse segmented: its ``labels`` (ids 1..n within the frame), stardist's ``polygons``
    (or None: outlines traced from the labels), the ``image`` measured and its ``axes``."""

    labels: np.ndarray
    polygons: Optional[np.ndarray]
    image: np.ndarray
    axes: str


MAX_FRAME_LABELS = 2**16 - 1
"""Objects a frame of a label time-lapse can hold: the stack is written 16-bit as it is computed."""


def write_label_frames(
    frames: Iterator[LabelFrame],
    n_frames: int,
    targets: tuple[Path, Path, Path],
    overwrite: bool,
    source: Path,
    reference: Optional[dict] = None,
    stack_writer: Optional[Callable[[Iterator[np.ndarray], tuple[int, ...], str], None]] = None,
) -> tuple[list[Path], int, list[str]]:
    """A segmented time-lapse written as its frames come, memory one frame: one 16-bit label stack with T first (each
    frame's labels 1..n, as StarDist numbers an image; the input's calibration and frame interval), for 2D frames one
    ROI set whose ROIs carry their frame as ImageJ's stack position (as stardist's ``export_imagej_rois`` sets it),
    and one CSV with a ``frame`` column (1 for the first, as Fiji numbers frames). All three appear together when the
    last frame is written, or not at all. Returns what was written, the objects over all frames and the
    plausibility warnings (the first implausible frame's, with how many others were). ``stack_writer`` writes the
    label stack instead of the TIFF writer (``stack_writer(frames, shape, axes)``, atomic itself: an OME-Zarr)."""
    import zipfile

    labels_path, rois_path, csv_path = targets
    for p in targets:
        check_output(p, overwrite)
    first = next(frames)
    shape = first.labels.shape
    stack_axes = "T" + "ZYX"[-first.labels.ndim :]
    rois = first.labels.ndim == 2
    counts = {"objects": 0}
    implausible: list[tuple[int, list[str]]] = []
    with contextlib.ExitStack() as stack:
        labels_tmp = stack.enter_context(atomic_file(labels_path, overwrite=overwrite)) if stack_writer is None else None
        csv_tmp = stack.enter_context(atomic_file(csv_path, overwrite=overwrite))
        rois_tmp = stack.enter_context(atomic_file(rois_path, overwrite=overwrite)) if rois else None
        roizip = stack.enter_context(zipfile.ZipFile(rois_tmp, "w", compression=zipfile.ZIP_DEFLATED)) if rois_tmp else None
        fh = stack.enter_context(open(csv_tmp, "w", newline=""))
        writer = csv.writer(fh)

        def labelled() -> Iterator[np.ndarray]:
            for t, frame in enumerate(itertools.chain([first], frames)):
                n = int(frame.labels.max(initial=0))
                if n > MAX_FRAME_LABELS:
                    raise DataError(
                        f"{source}: frame {t + 1} has {n} objects, more than a 16-bit label stack holds ({MAX_FRAME_LABELS}); "
                        "split the time-lapse into single frames in Fiji (Image > Stacks > Tools > Reduce...) and predict those"
                    )
                columns = measurement_columns(frame.labels, frame.image, frame.axes)
                if t == 0:
                    writer.writerow(["frame", *columns])
                for row in zip(*columns.values()):
                    writer.writerow([t + 1, *_csv_values(columns, row)])
                counts["objects"] += len(columns["label"])
                if roizip is not None:
                    _add_frame_rois(roizip, frame, t + 1)
                if warning := plausibility(source, frame.labels, reference, quiet=True):
                    implausible.append((t + 1, warning))
                yield frame.labels
            log.debug("%s: %d frames segmented", source.name, n_frames)

        if labels_tmp is None:
            assert stack_writer is not None
            stack_writer(labelled(), (n_frames, *shape), stack_axes)
        else:
            write_frames(labels_tmp, labelled(), (n_frames, *shape), stack_axes, read_pixel_size(source), True, dtype="uint16")
    warnings = []
    if implausible:
        t, [warning] = implausible[0]
        others = f" (and {len(implausible) - 1} other frame(s))" if len(implausible) > 1 else ""
        warnings = [f"{warning.replace(f'{source.name}: ', f'{source.name} frame {t}{others}: ', 1)}"]
        log.warning("%s", warnings[0])
    written = [labels_path, *([rois_path] if rois else []), csv_path]
    return written, counts["objects"], warnings


def _add_frame_rois(roizip, frame: LabelFrame, position: int) -> None:
    """One frame's ROIs into an open ROI-set zip, each at stack position ``position`` (its frame)."""
    if frame.polygons is not None:
        from stardist.utils import polyroi_bytearray

        for i, poly in enumerate(frame.polygons, start=1):  # as stardist's export_imagej_rois writes them
            roizip.writestr(f"{position:03d}_{i:03d}.roi", polyroi_bytearray(poly[1], poly[0], pos=position, subpixel=True))
        return
    for roi in labels_to_rois(frame.labels):
        roi.position = position
        roi.name = f"{position:03d}_{roi.name}"  # the ROI Manager shows a ROI's own name: unique across frames, as above
        roizip.writestr(f"{roi.name}.roi", roi.tobytes())


def write_measurements(labels: np.ndarray, img: np.ndarray, axes: str, path: Path) -> None:
    """Per object: label, area (pixels/voxels), centroid, mean intensity (first channel)."""
    columns = measurement_columns(labels, img, axes)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in zip(*columns.values()):
            writer.writerow(_csv_values(columns, row))


def _csv_values(columns: dict, row) -> list:
    return [int(v) if k in ("label", "area") else round(float(v), 4) for k, v in zip(columns, row)]


def measurement_columns(labels: np.ndarray, img: np.ndarray, axes: str) -> dict[str, np.ndarray]:
    """The per-object columns of :func:`write_measurements`."""
    from skimage.measure import regionprops_table

    intensity = np.take(img, 0, axis=axes.index("C")) if "C" in axes else img
    props = regionprops_table(
        labels.astype(np.int32), intensity_image=intensity.astype(np.float64), properties=("label", "area", "centroid", "intensity_mean")
    )
    spatial = [a.lower() for a in axes if a in "ZYX"]
    columns = {"label": props["label"], "area": props["area"]}
    for i, a in enumerate(spatial):
        columns[f"centroid_{a}"] = props[f"centroid-{i}"]
    columns["mean_intensity"] = props["intensity_mean"]
    return columns
