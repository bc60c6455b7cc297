"""The axes of the images given to ``prepare``: ``--axes``, else what the files' ImageJ or OME metadata declare,
else a guess from the number of dimensions.

A two-channel image saved from Fiji is a ``CYX`` hyperstack; read as ``ZYX`` (the guess for three dimensions) it
trains a 3D network on two "slices". So the metadata is read first, and it must agree: with ``--axes`` (naming
both when not) and between the files of one run (naming two that differ).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ..axes import axes_from_tifffile, guess_axes_for_ndim
from ..errors import ConfigError, DataError
from ..files import tiff_declared_axes, tiff_shape

log = logging.getLogger(__name__)

FIJI_FIX = "in Fiji, Image > Properties... sets channels, slices and frames (then File > Save As > Tiff...)"


def resolve_axes(paths: Sequence[Path], given: Optional[str]) -> str:
    """The axes of every image in ``paths`` (the caller checks each image's dimensions against them).

    Parameters
    ----------
    paths
        The images, in the order they are prepared (the first one's dimensions give the guess).
    given
        ``--axes`` (normalised), or None.

    Returns
    -------
    str
        ``given`` when set, else the axes the files' metadata declare, else the guess for the first file.
    """
    readings: list[tuple[Path, tuple[int, ...], str, Optional[str]]] = []  # path, shape, axes, metadata (None: guessed)
    for path in paths:
        shape, _ = tiff_shape(path)
        declared = tiff_declared_axes(path)
        axes: Optional[str] = None
        source: Optional[str] = None
        if declared is not None:
            letters, source = declared
            try:
                axes = axes_from_tifffile(letters)
            except ConfigError as e:
                if given is None:
                    raise DataError(
                        f"{path}: its {source} metadata declares {e}; pass --axes to say how to read it "
                        f"(e.g. --axes {guess_axes_for_ndim(len(shape))}), or {FIJI_FIX}"
                    ) from None
        if axes is None:
            source = None
        if given is not None:
            if axes is not None and axes != given:
                raise DataError(
                    f"--axes {given} but {path} declares {axes} in its {source} metadata (shape {shape}); drop --axes to "
                    f"read each file's own axes, or correct them: {FIJI_FIX}"
                )
            continue
        readings.append((path, shape, axes or guess_axes_for_ndim(len(shape)), source))
    if given is not None:
        return given
    first = readings[0]
    for other in readings[1:]:
        if len(other[1]) == len(first[1]) and other[2] != first[2]:  # other dimensions: ImageChecks names them
            a, b = sorted((first, other), key=lambda r: r[3] is None)
            fix = (
                f"pass --axes {a[2]} to read them all as {a[0].name}'s metadata says, or {FIJI_FIX}"
                if b[3] is None
                else f"prepare them in separate runs, or save them alike: {FIJI_FIX}"
            )
            raise DataError(f"{_said(a)} but {_said(b)}; the images of one data folder need one set of axes: {fix}")
    if first[3] is None:
        log.info("axes not given nor in the files' metadata; guessed %s from %s (%d dimensions)", first[2], first[0].name, len(first[1]))
    else:
        log.info("axes %s from the %s metadata of %s", first[2], first[3], first[0].name)
    return first[2]


def _said(reading: tuple[Path, tuple[int, ...], str, Optional[str]]) -> str:
    path, shape, axes, source = reading
    if source is None:
        return f"{path} has no axes in its metadata (its {len(shape)} dimensions read as {axes})"
    return f"{path} declares {axes} in its {source} metadata (shape {shape})"
