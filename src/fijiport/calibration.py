"""Pixel sizes: read from a TIFF's ImageJ or OME metadata, written on the outputs, compared with the training data's.

CARE and StarDist learn structures at the pixel size of their training images; an image at twice that size shows
every nucleus half as large, and the model restores or segments it poorly without saying so. So fijiport keeps the
calibration from the microscope to the results: ``prepare`` records each file's pixel size, ``train`` the training
data's, ``export`` puts it in the model card and ``config.fijiport``, ``predict`` warns when an image's differs by more
than :data:`TOLERANCE` and writes its outputs with the input's pixel sizes.

Where the numbers are in a TIFF:

- **ImageJ** (Fiji's *File › Save As › Tiff*): ``XResolution`` / ``YResolution`` tags in pixels per unit, the unit,
  the Z step (``spacing``) and the frame interval (``finterval``, seconds) in the ImageJ description. A file ImageJ
  never calibrated has no unit (or ``pixel``): no pixel size.
- **OME-TIFF**: ``PhysicalSizeX/Y/Z`` (and their units, micrometres by default) and ``TimeIncrement`` of the first
  image's ``Pixels``.

- **other TIFFs**: ``XResolution`` / ``YResolution`` only with the resolution unit *centimetre* (what fijiport writes
  for outputs ImageJ cannot store, channels last say); resolutions per inch are not read: cameras and image editors
  write 72 dots per inch there, which is no pixel size.

Pixel sizes are kept in micrometres, per axis letter (``{"Z": 1.0, "Y": 0.1625, "X": 0.1625}``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .errors import DataError
from .files import atomic_file, tiff_declared_axes

log = logging.getLogger(__name__)

TOLERANCE = 0.2
"""``predict`` warns when an image's pixel size differs from the training data's by more than this fraction."""
PAIR_TOLERANCE = 0.01
"""Low and GT of one pair must agree to within this fraction (they are two acquisitions of one field)."""

UNITS_IN_UM = {
    "micron": 1.0, "microns": 1.0, "micrometer": 1.0, "micrometre": 1.0, "um": 1.0, "µm": 1.0, "μm": 1.0,
    "\\u00b5m": 1.0, "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3, "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6, "metre": 1e6, "angstrom": 1e-4, "å": 1e-4, "pm": 1e-6,
}  # fmt: skip
"""Length units as ImageJ (``micron``, ``\\u00B5m``) and OME (``µm``, ``nm``, ...) write them, in micrometres."""
TIME_IN_S = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "msec": 1e-3, "min": 60.0, "h": 3600.0, "µs": 1e-6, "us": 1e-6}


@dataclass(frozen=True)
class PixelSize:
    """The pixel size a file declares: micrometres per pixel along its spatial axes, and where it was read."""

    um: dict[str, float]
    """Micrometres per pixel by axis letter, Z Y X order, only the axes the image has."""
    source: str
    """``ImageJ``, ``OME`` or ``TIFF`` (resolution tags in pixels per centimetre)."""
    frame_interval: Optional[float] = None
    """Seconds between frames, when the file declares them."""

    def text(self) -> str:
        """``0.1625 × 0.1625 µm (Y × X)``."""
        return describe(self.um)


def pixel_size_um(path: Path) -> Optional[dict[str, float]]:
    """Micrometres per pixel by axis that ``path`` declares (:func:`read_pixel_size`), as manifests record them."""
    found = read_pixel_size(path)
    return found.um if found else None


def describe(um: Mapping[str, float]) -> str:
    """Pixel sizes as the messages write them: ``1 × 0.1625 × 0.1625 µm (Z × Y × X)``."""
    axes = [a for a in "ZYX" if a in um]
    return " × ".join(f"{um[a]:.4g}" for a in axes) + f" µm ({' × '.join(axes)})"


def _in_um(value: float, unit: Optional[str]) -> Optional[float]:
    factor = UNITS_IN_UM.get(str(unit or "").strip().lower())
    if factor is None or not (value > 0 and math.isfinite(value)):
        return None
    return value * factor


def read_pixel_size(path: Path) -> Optional[PixelSize]:
    """The pixel size ``path``'s ImageJ or OME metadata declares (see the module's docstring), or None.

    Parameters
    ----------
    path
        A TIFF file.

    Returns
    -------
    PixelSize or None
        None for files without a calibration (no ImageJ/OME metadata, or ImageJ's ``pixel`` unit).
    """
    import tifffile

    declared = tiff_declared_axes(path)  # refuses unreadable files with their name
    axes = declared[0].upper() if declared else ""
    try:
        with tifffile.TiffFile(path) as tif:
            if tif.is_ome and tif.ome_metadata:
                return _from_ome(tif.ome_metadata, axes)
            if tif.is_imagej and tif.imagej_metadata is not None:
                page = tif.pages[0]
                tags = page.tags if isinstance(page, tifffile.TiffPage) else None
                return _from_imagej(tif.imagej_metadata, tags, axes)
            page = tif.pages[0]
            unit = page.tags.get("ResolutionUnit") if isinstance(page, tifffile.TiffPage) else None
            if unit is not None and unit.value == tifffile.RESUNIT.CENTIMETER:
                found = _from_imagej({"unit": "cm"}, page.tags, "")  # type: ignore[union-attr]
                return PixelSize(found.um, "TIFF") if found else None
    except DataError:
        raise
    except Exception as e:  # a malformed description or XML: no calibration, not a refusal
        log.warning("%s: its pixel size metadata cannot be read (%s); treating it as uncalibrated", path, str(e)[:80])
    return None


def _from_imagej(meta: dict[str, Any], tags, axes: str) -> Optional[PixelSize]:
    unit = meta.get("unit")
    um: dict[str, float] = {}
    if "Z" in axes and meta.get("spacing") is not None:
        z = _in_um(float(meta["spacing"]), meta.get("zunit", unit))
        if z is not None:
            um["Z"] = z
    for axis, tag, unit_key in (("Y", "YResolution", "yunit"), ("X", "XResolution", "unit")):
        value = tags.get(tag).value if tags is not None and tags.get(tag) is not None else None
        if value is None:
            continue
        num, den = value if isinstance(value, tuple) else (value, 1)
        if num:
            size = _in_um(den / num, meta.get(unit_key, unit))
            if size is not None:
                um[axis] = size
    if "X" not in um or "Y" not in um:
        return None
    interval = meta.get("finterval")
    return PixelSize(um, "ImageJ", float(interval) if interval else None)


def _from_ome(xml: str, axes: str) -> Optional[PixelSize]:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    um: dict[str, float] = {}
    for axis in "ZYX":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is None or (axis == "Z" and "Z" not in axes):
            continue
        size = _in_um(float(value), pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        if size is not None:
            um[axis] = size
    if "X" not in um or "Y" not in um:
        return None
    interval = pixels.get("TimeIncrement")
    factor = TIME_IN_S.get(pixels.get("TimeIncrementUnit", "s").lower(), 1.0)
    return PixelSize(um, "OME", float(interval) * factor if interval else None)


def differences(image: Mapping[str, float], reference: Mapping[str, float], tolerance: float = TOLERANCE) -> dict[str, float]:
    """The axes (of those both have) along which ``image`` differs from ``reference`` by more than ``tolerance``,
    with the ratio image / reference."""
    out = {}
    for a in "ZYX":
        if a in image and a in reference and reference[a] > 0:
            ratio = image[a] / reference[a]
            if abs(ratio - 1) > tolerance:
                out[a] = ratio
    return out


def median_pixel_size(sizes: Sequence[Optional[Mapping[str, float]]]) -> Optional[dict[str, float]]:
    """The per-axis median of the pixel sizes known (None when none is)."""
    known = [s for s in sizes if s]
    if not known:
        return None
    axes = [a for a in "ZYX" if all(a in s for s in known)]
    return {a: float(np.median([s[a] for s in known])) for a in axes} or None


def scale_hint(um: Mapping[str, float], reference: Mapping[str, float]) -> str:
    """What to do about a pixel size that differs: Fiji's *Image › Scale...* factors that bring it to the training
    data's, or training on data of this pixel size."""
    factors = {a: um[a] / reference[a] for a in "ZYX" if a in um and a in reference}
    scale = ", ".join(f"{a.lower()} {f:.3g}" for a, f in factors.items())
    return (
        f"rescale it to the training pixel size in Fiji (Image > Scale... with {scale}, then predict the scaled image), "
        "or train (or fine-tune with --init-from) on images of this pixel size"
    )


IMAGEJ_ORDER = "TZCYXS"
IMAGEJ_DTYPES = ("uint8", "uint16", "float32")


def write_tiff(path: Path, data: np.ndarray, axes: Optional[str], pixel_size: Optional[PixelSize], overwrite: bool) -> None:
    """Write ``data`` (atomically) with its axes and the pixel size: as an OME-TIFF when the input's calibration came
    from OME metadata, else as an ImageJ hyperstack (Fiji opens it with channels, slices, frames and calibration);
    axes ImageJ cannot store (channels last, say) or dtypes it cannot (uint32 labels) as a plain TIFF with the axes in
    tifffile's metadata and the pixel size in its resolution tags (per centimetre). Without ``axes`` (or with another
    number of letters than dimensions) a plain TIFF."""
    import tifffile

    kwargs = _tiff_kwargs(axes if axes is not None and len(axes) == data.ndim else None, str(data.dtype), pixel_size)
    with atomic_file(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, data, **kwargs)


def write_frames(
    path: Path,
    frames: Iterable[np.ndarray],
    shape: Sequence[int],
    axes: str,
    pixel_size: Optional[PixelSize],
    overwrite: bool = False,
    dtype: str = "float32",
) -> None:
    """A time-lapse written as it is computed, one frame at a time (memory: one frame), as :func:`write_tiff` writes
    a whole image; ``shape`` and ``axes`` (T first) are the whole stack's. A failure leaves no partial file."""
    import tifffile

    def checked() -> Iterator[np.ndarray]:
        for frame in frames:
            if tuple(frame.shape) != tuple(shape[1:]):
                raise ValueError(f"a frame of shape {frame.shape} for a stack of frames {tuple(shape[1:])}")
            yield np.ascontiguousarray(frame, dtype=dtype)

    kwargs = _tiff_kwargs(axes if len(axes) == len(shape) else None, dtype, pixel_size)
    with atomic_file(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, checked(), shape=tuple(shape), dtype=dtype, **kwargs)


def _tiff_kwargs(axes: Optional[str], dtype: str, pixel_size: Optional[PixelSize]) -> dict[str, Any]:
    """tifffile's arguments for an output with ``axes`` and ``pixel_size`` (see :func:`write_tiff`)."""
    um = pixel_size.um if pixel_size is not None else {}
    interval = pixel_size.frame_interval if pixel_size is not None else None
    if axes is not None and pixel_size is not None and pixel_size.source == "OME" and _ome_order(axes):
        meta: dict[str, Any] = {"axes": axes}
        for a, size in um.items():
            if a in axes:
                meta[f"PhysicalSize{a}"], meta[f"PhysicalSize{a}Unit"] = size, "µm"
        if interval and "T" in axes:
            meta["TimeIncrement"], meta["TimeIncrementUnit"] = interval, "s"
        return {"ome": True, "metadata": meta}
    if axes is not None and _imagej_order(axes) and dtype in IMAGEJ_DTYPES:
        meta = {"axes": axes}
        kwargs: dict[str, Any] = {}
        if um:
            meta["unit"] = "micron"
            if "Z" in um and "Z" in axes:
                meta["spacing"] = um["Z"]
            kwargs["resolution"] = (1 / um["X"], 1 / um["Y"])
        if interval and "T" in axes:
            meta["finterval"] = interval
        return {**kwargs, "imagej": True, "metadata": meta}
    kwargs = {"imagej": False, "metadata": {"axes": axes} if axes is not None else {}}
    if "X" in um and "Y" in um:
        kwargs.update(resolution=(1e4 / um["X"], 1e4 / um["Y"]), resolutionunit="CENTIMETER")
    return kwargs


def _imagej_order(axes: str) -> bool:
    return bool(re.fullmatch("T?Z?C?YXS?", axes))


def _ome_order(axes: str) -> bool:
    return bool(re.fullmatch("T?C?Z?YXS?|T?Z?C?YXS?|C?T?Z?YXS?", axes))
