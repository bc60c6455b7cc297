"""How many tiles an image is predicted in."""

from __future__ import annotations

from typing import Optional

from ..errors import DataError


def choose_tiles(shape: tuple[int, ...], axes: str, n_tiles: Optional[tuple[int, ...]]) -> tuple[int, ...]:
    """``n_tiles`` checked against the image's axes, or by default as many as keep every tile within
    :data:`fijiport.qc.restoration.MAX_TILE`."""
    from ..qc.restoration import auto_tiles

    if n_tiles is None:
        return auto_tiles(shape, axes)
    if len(n_tiles) != len(shape):
        raise DataError(f"--tiles {','.join(map(str, n_tiles))}: give one number per image axis ({axes}), "
                        f"e.g. --tiles {','.join('1' if a == 'C' else '2' for a in axes)}")
    if any(t < 1 for t in n_tiles):
        raise DataError(f"--tiles {','.join(map(str, n_tiles))}: every value must be 1 or more")
    return tuple(n_tiles)
