"""The one axes vocabulary of fijiport: csbdeep's letters ``S``, ``T``, ``C``, ``Z``, ``Y``, ``X``.

Axes strings are normalised here and nowhere else: upper case, no repeats, and a length that
matches the image they describe.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ConfigError

ALLOWED = "STCZYX"
SPATIAL = "ZYX"

TIFFFILE_AXES = {"X": "X", "Y": "Y", "Z": "Z", "T": "T", "C": "C", "S": "C"}
"""tifffile's axis letters (what it reads from ImageJ and OME metadata) that fijiport has: ``S`` is tifffile's colour
*samples* (the R, G, B of an RGB image), read as channels; fijiport's ``S`` (csbdeep's sample axis) never comes
from a file."""
TIFFFILE_UNKNOWN = {"I": "a sequence of images of no declared kind", "Q": "a dimension of unknown meaning"}
"""tifffile's letters for "the metadata does not say": the axes are then guessed from the number of dimensions."""
TIFFFILE_OTHER = {
    "A": "angle",
    "P": "phase",
    "R": "tile",
    "H": "lifetime histogram",
    "E": "lambda (spectral)",
    "L": "exposure",
    "V": "event",
    "M": "mosaic",
    "O": "other",
}
"""tifffile's letters for dimensions fijiport has no axis for."""


def normalize_axes(axes: str, ndim: int | None = None, *, what: str = "axes") -> str:
    """Return ``axes`` upper-cased and checked against csbdeep's vocabulary and ``ndim``."""
    norm = str(axes).strip().upper()
    bad = sorted(set(norm) - set(ALLOWED))
    if not norm or bad:
        raise ConfigError(f"{what} {axes!r} contains {bad or 'nothing'}; use letters of {ALLOWED!r}, e.g. 'YX' or 'ZYX'")
    if len(set(norm)) != len(norm):
        raise ConfigError(f"{what} {axes!r} repeats an axis; each of {ALLOWED!r} may appear once")
    if not ("Y" in norm and "X" in norm):
        raise ConfigError(f"{what} {axes!r} must contain both Y and X")
    if ndim is not None and len(norm) != ndim:
        raise ConfigError(
            f"{what} {axes!r} has {len(norm)} letters but the image has {ndim} dimensions; "
            f"pass --axes with {ndim} letters, e.g. {guess_axes_for_ndim(ndim)!r}"
        )
    return norm


def guess_axes_for_ndim(ndim: int) -> str:
    """The usual axes of an image with ``ndim`` dimensions (2 → YX, 3 → ZYX, 4 → ZYXC)."""
    return {2: "YX", 3: "ZYX", 4: "ZYXC"}.get(ndim, "ZYX")


def with_channels(axes: str) -> str:
    """The axes of single-channel images stacked into one multi-channel image: ``C`` where ImageJ puts it, before Y
    and X (``TZYX`` → ``TZCYX``)."""
    at = min(axes.index(a) for a in "YX" if a in axes)
    return axes[:at] + "C" + axes[at:]


def channel_count(shape: Sequence[int], axes: str) -> int:
    """The number of channels of an image of ``shape`` with ``axes``: its C's length, 1 without C."""
    return int(shape[axes.index("C")]) if "C" in axes and len(shape) == len(axes) else 1


def spatial_axes(axes: str) -> str:
    """The spatial letters of ``axes`` in their order (``'ZYXC'`` → ``'ZYX'``)."""
    return "".join(a for a in axes if a in SPATIAL)


def n_spatial_dims(axes: str) -> int:
    return len(spatial_axes(axes))


def shape_of(axes: str, shape: Sequence[int]) -> dict[str, int]:
    """Map each axis letter to its length."""
    return dict(zip(axes, (int(s) for s in shape)))


def axes_from_tifffile(letters: str) -> str | None:
    """fijiport's axes for the axes a file's metadata declares, as tifffile names them (``series.axes``).

    ``S`` (colour samples) becomes ``C``; ``None`` when a letter says the metadata does not know (``I``, ``Q``:
    the caller guesses from the number of dimensions). Raises :class:`ConfigError` for dimensions fijiport has no
    axis for (angle, lambda, ...) and for a file with both channels and colour samples.
    """
    letters = str(letters).upper()
    if any(a in TIFFFILE_UNKNOWN for a in letters):
        return None
    other = [a for a in letters if a not in TIFFFILE_AXES]
    if other:
        names = ", ".join(f"{a!r} ({TIFFFILE_OTHER.get(a, 'not an axis fijiport knows')})" for a in other)
        raise ConfigError(f"axes {letters!r} hold {names}, which fijiport's axes {ALLOWED!r} cannot express")
    if "C" in letters and "S" in letters:
        raise ConfigError(f"axes {letters!r} hold both channels (C) and colour samples (S); fijiport takes one channel axis")
    return normalize_axes("".join(TIFFFILE_AXES[a] for a in letters), what="axes")


def stored_axes(declared: str | None, shape: Sequence[int], want: str, n_channels: int) -> str:
    """The axes an image holds its pixels in, for a network that wants ``want``: the axes its file's metadata
    declares (``declared``, tifffile's letters; ImageJ hyperstacks hold channels first, ``CYX``), else channels first
    when the first axis has the network's channel count and the last has not (how ImageJ writes them without
    metadata), else ``want`` itself."""
    if "C" not in want or len(shape) != len(want):
        return want
    if declared is not None:
        try:
            axes = axes_from_tifffile(declared)
        except ConfigError:
            axes = None
        if axes is not None and sorted(axes) == sorted(want):
            return axes
    if shape[0] == n_channels and shape[-1] != n_channels:
        return "C" + want.replace("C", "")
    return want


def frames_layout(declared: str | None, ndim: int, want: str, *, guess: bool = False) -> tuple[int, str | None] | None:
    """Where a time-lapse keeps its frames, for a network that takes ``want`` images (no T): the T axis and the
    frame's own axes (None when the file does not say them), or None for an image that is a single frame.

    ``declared`` are the image's axes as its data folder or its file's metadata says them (fijiport's or tifffile's
    letters; None if unknown): a declared T with as many letters as dimensions is the time axis. With ``guess``, an
    image with one axis more than ``want`` and no declared channel axis has its frames first (how N2V reads stacks of
    2D images); without, such an image is not taken for a time-lapse (a stack given to a 2D CARE model is refused, not
    restored as frames).
    """
    if declared is not None and "T" in declared.upper() and len(declared) == ndim:
        declared = declared.upper()
        return declared.index("T"), declared.replace("T", "")
    if guess and ndim == len(want) + 1 and "C" not in (declared or ""):
        return 0, None
    return None


def transpose_axes(x, src: str, dst: str):
    """``x`` with its axes ``src`` reordered to ``dst`` (the same letters)."""
    import numpy as np

    return x if src == dst else np.transpose(x, [src.index(a) for a in dst])
