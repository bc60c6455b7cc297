"""OME-Zarr images (NGFF 0.4 and 0.5): read lazily, a frame at a time, with the axes and pixel sizes their metadata
declares; written as NGFF 0.4 (Zarr format 2, what napari's ome-zarr reader, Fiji's N5 / MoBIE and most tools open),
a frame at a time and whole or not at all.

An OME-Zarr image is a Zarr group whose attributes hold ``multiscales`` (NGFF 0.4: in ``.zattrs``; 0.5: under ``ome``
in ``zarr.json``): the axes (``t``, ``c``, ``z``, ``y``, ``x`` with their types and units) and, per resolution level,
the array's path and its ``scale``. fijiport reads level 0 (full resolution) and takes the pixel size from its scale
(times the multiscale's own transformation, when there is one); plates, wells and bare arrays are refused naming the
image group to pass instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .calibration import UNITS_IN_UM, PixelSize
from .errors import DataError
from .files import atomic_dir

AXIS_LETTERS = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}
"""NGFF axis names as fijiport's (tifffile's) axis letters."""
TIME_UNITS_S = {"second": 1.0, "s": 1.0, "millisecond": 1e-3, "ms": 1e-3, "minute": 60.0, "hour": 3600.0, "microsecond": 1e-6}
WRITTEN_VERSION = "0.4"
FRAME_CHUNK_YX = 512
"""Chunk edge along Y and X of what fijiport writes (one frame and all channels per chunk along T and C)."""


def is_ome_zarr(path: Path) -> bool:
    """Whether ``path`` names a Zarr store (a folder ending in ``.zarr``, as ``.ome.zarr`` images do)."""
    path = Path(path)
    return path.name.lower().endswith(".zarr") and path.is_dir()


def store_stem(name: str) -> str:
    """A store's name without ``.ome.zarr`` / ``.zarr``."""
    return name[: -len(".ome.zarr")] if name.lower().endswith(".ome.zarr") else name[: -len(".zarr")]


def output_name(name: str) -> str:
    """The name of the OME-Zarr written for an input called ``name`` (``a.ome.zarr`` for ``a.ome.zarr`` or ``a.zarr``)."""
    return f"{store_stem(name)}.ome.zarr"


@dataclass
class ZarrImage:
    """An OME-Zarr image's full-resolution array (read lazily) with its axes and calibration."""

    path: Path
    array: Any
    """The level-0 ``zarr.Array`` (nothing read until indexed)."""
    axes: str
    """Axis letters in the array's order, e.g. ``TCZYX``."""
    pixel_size: Optional[PixelSize]
    version: str
    """The NGFF version the metadata declares."""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def dtype(self) -> str:
        return str(self.array.dtype)

    @classmethod
    def open(cls, path: Path) -> ZarrImage:
        """Open an OME-Zarr image, refusing (with the fix) stores that are not one or declare axes fijiport has no
        letter for."""
        import zarr

        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode="r")
        except Exception as e:  # zarr raises many types for what is not a group
            raise DataError(
                f"{path} is not a readable Zarr group ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); pass an "
                "OME-Zarr image (the folder whose .zattrs or zarr.json holds 'multiscales')"
            ) from None
        attrs: dict[str, Any] = dict(group.attrs)
        ome: dict[str, Any] = attrs["ome"] if isinstance(attrs.get("ome"), dict) else attrs
        multiscales: Any = ome.get("multiscales")
        if not multiscales:
            inner = sorted(k for k in ("plate", "well", "labels", "bioformats2raw.layout") if k in ome)
            hint = (
                f" (it is a {', '.join(inner)} group: pass one of its images, e.g. {path}/0)"
                if inner
                else " (a bare Zarr array or group: write it as OME-Zarr, e.g. with ome-zarr-py or Fiji's N5 plugin)"
            )
            raise DataError(f"{path} has no OME-Zarr 'multiscales' metadata{hint}")
        ms: dict[str, Any] = multiscales[0]
        version = str(ome.get("version") or ms.get("version") or WRITTEN_VERSION)
        names = [a["name"] if isinstance(a, dict) else str(a) for a in ms.get("axes") or []]
        units: list[Optional[str]] = [a.get("unit") if isinstance(a, dict) else None for a in ms.get("axes") or []]
        datasets = ms.get("datasets") or []
        if not datasets or "path" not in datasets[0]:
            raise DataError(f"{path}: its multiscales metadata lists no datasets (resolution levels); the store is incomplete")
        try:
            array: Any = group[datasets[0]["path"]]
        except KeyError:
            raise DataError(f"{path}: the full-resolution array {datasets[0]['path']!r} its metadata names is missing") from None
        if np.dtype(array.dtype).kind not in "biuf":  # object arrays decode through codecs such as pickle: never read them
            raise DataError(f"{path}: its array holds {array.dtype} values; fijiport reads OME-Zarr images of integer or float pixels only")
        if not names:  # NGFF 0.3 and older: TCZYX, as many as the array has from the end
            names = ["t", "c", "z", "y", "x"][5 - len(array.shape) :]
            units = [None for _ in names]
        unknown = [n for n in names if n.lower() not in AXIS_LETTERS]
        if unknown or len(names) != len(array.shape):
            raise DataError(
                f"{path} declares axes {names} for an array of shape {list(array.shape)}; fijiport reads OME-Zarr images "
                "with axes among t, c, z, y, x (one per dimension)"
            )
        axes = "".join(AXIS_LETTERS[n.lower()] for n in names)
        scale = _scale(datasets[0], ms, len(names))
        return cls(path, array, axes, _pixel_size(axes, scale, units), version)

    def frame_axis(self) -> Optional[int]:
        """The index of the T axis, or None for a single frame."""
        return self.axes.index("T") if "T" in self.axes else None

    def frames(self) -> ZarrFrames:
        """The image's frames along T (one frame, the whole image, without a T axis)."""
        return ZarrFrames(self)

    def read(self) -> np.ndarray:
        return np.asarray(self.array[...])


class ZarrFrames:
    """An OME-Zarr image's frames along T, read one at a time (memory follows a frame), as
    :class:`~fijiport.files.TiffFrames` reads a TIFF time-lapse: ``len``, ``[t]``, iteration, ``shape`` (a frame's)."""

    def __init__(self, image: ZarrImage):
        self.image, self.axis = image, image.frame_axis()
        shape = image.shape
        self.shape = shape if self.axis is None else shape[: self.axis] + shape[self.axis + 1 :]
        self.frame_axes = image.axes.replace("T", "")

    def __len__(self) -> int:
        return 1 if self.axis is None else self.image.shape[self.axis]

    def __getitem__(self, t: int) -> np.ndarray:
        if not 0 <= t < len(self):
            raise IndexError(t)
        if self.axis is None:
            return self.image.read()
        index = tuple(t if i == self.axis else slice(None) for i in range(len(self.image.shape)))
        return np.asarray(self.image.array[index])

    def __iter__(self) -> Iterator[np.ndarray]:
        for t in range(len(self)):
            yield self[t]


def _scale(dataset: dict, multiscale: dict, n: int) -> list[float]:
    """The level's scale per axis (its own ``scale`` times the multiscale's, when the metadata has one)."""
    out = [1.0] * n
    for transforms in (dataset.get("coordinateTransformations") or [], multiscale.get("coordinateTransformations") or []):
        for t in transforms:
            if t.get("type") == "scale" and isinstance(t.get("scale"), list) and len(t["scale"]) == n:
                out = [a * float(b) for a, b in zip(out, t["scale"])]
    return out


def _pixel_size(axes: str, scale: list[float], units: list[Optional[str]]) -> Optional[PixelSize]:
    """Micrometres per pixel along Z, Y and X where the unit is a length; None when no spatial axis has one."""
    um: dict[str, float] = {}
    interval = None
    for a, s, unit in zip(axes, scale, units):
        if a in "ZYX" and unit is not None:
            factor = UNITS_IN_UM.get(str(unit).strip().lower())
            if factor is not None and s > 0 and math.isfinite(s):
                um[a] = s * factor
        elif a == "T" and unit is not None and str(unit).lower() in TIME_UNITS_S and s > 0:
            interval = s * TIME_UNITS_S[str(unit).lower()]
    if not um:
        return None
    return PixelSize({a: um[a] for a in "ZYX" if a in um}, "OME-Zarr", interval)


def ngff_axes(axes: str, pixel_size: Optional[PixelSize]) -> tuple[list[dict[str, str]], list[float]]:
    """NGFF 0.4 ``axes`` and level-0 ``scale`` for fijiport's axis letters and a pixel size (micrometres; seconds)."""
    um = pixel_size.um if pixel_size is not None else {}
    interval = pixel_size.frame_interval if pixel_size is not None else None
    out, scale = [], []
    for a in axes:
        entry = {"name": a.lower(), "type": {"T": "time", "C": "channel"}.get(a, "space")}
        if a in um:
            entry["unit"] = "micrometer"
        elif a == "T" and interval:
            entry["unit"] = "second"
        out.append(entry)
        scale.append(float(um.get(a, interval if a == "T" and interval else 1.0)))
    return out, scale


def write_ome_zarr(
    target: Path,
    frames: Iterable[np.ndarray],
    shape: tuple[int, ...],
    axes: str,
    pixel_size: Optional[PixelSize],
    *,
    dtype: str = "float32",
    attributes: Optional[dict[str, Any]] = None,
    labels: bool = False,
    overwrite: bool = False,
) -> None:
    """Write an image as an OME-Zarr (NGFF 0.4, one resolution level) as it is computed: ``frames`` are the image's
    frames along T when ``axes`` starts with T (memory: one frame), else one item, the whole image. ``attributes``
    go to the group's ``fijiport`` attribute (provenance); ``labels`` marks the image a label image (NGFF
    ``image-label``: napari opens it as a labels layer). A failure or Ctrl-C leaves no store (written to a temporary
    folder, renamed when complete)."""
    import zarr

    if len(axes) != len(shape):
        raise ValueError(f"axes {axes!r} for shape {shape}")
    chunks = tuple(1 if a == "T" else s if a == "C" else min(s, 64) if a == "Z" else min(s, FRAME_CHUNK_YX) for a, s in zip(axes, shape))
    with atomic_dir(Path(target), overwrite=overwrite) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        arr = root.create_array(
            "0", shape=shape, dtype=dtype, chunks=chunks, chunk_key_encoding={"name": "v2", "separator": "/"}, fill_value=0
        )
        n = 0
        for frame in frames:
            frame = np.asarray(frame, dtype=dtype)
            expect = shape[1:] if axes.startswith("T") else shape
            if tuple(frame.shape) != tuple(expect):
                raise ValueError(f"a frame of shape {frame.shape} for an image of frames {expect}")
            if axes.startswith("T"):
                arr[n] = frame
            else:
                arr[...] = frame
            n += 1
        if n != (shape[0] if axes.startswith("T") else 1):
            raise ValueError(f"{n} frame(s) written of {shape[0] if axes.startswith('T') else 1}")
        ngff, scale = ngff_axes(axes, pixel_size)
        root.attrs["multiscales"] = [
            {
                "version": WRITTEN_VERSION,
                "name": Path(target).name,
                "axes": ngff,
                "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            }
        ]
        if labels:
            root.attrs["image-label"] = {"version": WRITTEN_VERSION}
        if attributes:
            root.attrs["fijiport"] = attributes


__all__ = ["ZarrFrames", "ZarrImage", "is_ome_zarr", "output_name", "store_stem", "write_ome_zarr"]
