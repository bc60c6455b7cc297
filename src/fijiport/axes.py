"""The one axes vocabulary of fijiport: csbdeep's letters ``S``, ``T``, ``C``, ``Z``, ``Y``, ``X``.

Axes strings are normalised here and nowhere else: upper case, no repeats, and a length that
matches the image they describe.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ConfigError

ALLOWED = "STCZYX"
SPATIAL = "ZYX"


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


def spatial_axes(axes: str) -> str:
    """The spatial letters of ``axes`` in their order (``'ZYXC'`` → ``'ZYX'``)."""
    return "".join(a for a in axes if a in SPATIAL)


def n_spatial_dims(axes: str) -> int:
    return len(spatial_axes(axes))


def shape_of(axes: str, shape: Sequence[int]) -> dict[str, int]:
    """Map each axis letter to its length."""
    return dict(zip(axes, (int(s) for s in shape)))
