"""How many tiles an image is predicted in."""

from __future__ import annotations

import math
from typing import Optional

from ..errors import DataError

MAX_TILE_VOXELS = 2**20
"""Most pixels (voxels) predicted at once: 1024×1024 in 2D, 64×128×128 in 3D. A network's memory grows
with the tile (~0.4 GB per million voxels for a 32-filter CARE U-Net on the CPU), so larger images are
tiled and peak memory follows the tile, not the image. ``--tiles`` overrides it."""


def auto_tiles(shape: tuple[int, ...], axes: str, max_voxels: int = MAX_TILE_VOXELS) -> tuple[int, ...]:
    """Tiles per axis so no tile holds more than ``max_voxels``: the longest tile side is halved until it fits
    (Z last among equals, as stacks are usually coarser along Z)."""
    tiles = [1] * len(shape)
    spatial = [i for i, a in enumerate(axes) if a in "ZYX"]

    def side(i: int) -> int:
        return math.ceil(shape[i] / tiles[i])

    while math.prod(side(i) for i in spatial) > max_voxels:
        i = max(spatial, key=lambda i: (side(i), axes[i] != "Z"))
        if side(i) <= 32:
            break  # tiles this small would be mostly halo
        tiles[i] *= 2
    return tuple(tiles)


def choose_tiles(shape: tuple[int, ...], axes: str, n_tiles: Optional[tuple[int, ...]]) -> tuple[int, ...]:
    """``n_tiles`` checked against the image's axes, or by default :func:`auto_tiles`."""
    if n_tiles is None:
        return auto_tiles(shape, axes)
    if len(n_tiles) != len(shape):
        raise DataError(f"--tiles {','.join(map(str, n_tiles))}: give one number per image axis ({axes}), "
                        f"e.g. --tiles {','.join('1' if a == 'C' else '2' for a in axes)}")
    if any(t < 1 for t in n_tiles):
        raise DataError(f"--tiles {','.join(map(str, n_tiles))}: every value must be 1 or more")
    return tuple(n_tiles)
