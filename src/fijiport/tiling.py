"""How an image is cut into tiles for prediction, and the input sizes a network accepts.

Used by every step that runs a network on whole images (``qc``, ``predict``) whatever the weights
(Keras model folder or bioimage.io package), so tiled and untiled predictions agree everywhere.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

from .errors import DataError

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
        raise DataError(
            f"--tiles {','.join(map(str, n_tiles))}: give one number per image axis ({axes}), "
            f"e.g. --tiles {','.join('1' if a == 'C' else '2' for a in axes)}"
        )
    if any(t < 1 for t in n_tiles):
        raise DataError(f"--tiles {','.join(map(str, n_tiles))}: every value must be 1 or more")
    return tuple(n_tiles)


MAX_TILE_OVERHEAD = 20
"""Most pixels the tiles may read, in multiples of the image: beyond it each tile is mostly halo."""


def check_tile_sizes(shape: tuple[int, ...], axes: str, tiles: tuple[int, ...], context: dict[str, int]) -> None:
    """Refuse tiles so small against the network's context (``context``: pixels per side per spatial axis) that the
    tiles together read more than :data:`MAX_TILE_OVERHEAD` times the image: ``--tiles 100,100`` on a 257×301 image
    (2×3-pixel tiles, 22 px of context) read 360 times its pixels and ran 8 minutes instead of 2 seconds."""
    overhead, advice = 1.0, []
    for size, axis, n in zip(shape, axes, tiles):
        halo = context.get(axis, 0)
        if n <= 1 or not halo:
            continue
        inner = max(1, size // n)
        overhead *= min(size, inner + 2 * halo) / inner
        advice.append(f"{max(1, size // (2 * halo))} along {axis}")
    if overhead > MAX_TILE_OVERHEAD:
        raise DataError(
            f"--tiles {','.join(map(str, tiles))}: tiles this small read {overhead:.0f} times the image's pixels, as each is "
            f"mostly halo (the network needs {max(context.values())} px of context per side), and prediction would be that "
            f"much slower; use at most {' and '.join(advice)} (tiles at least twice the context), or leave --tiles out"
        )


class TileRegion(NamedTuple):
    """One tile along one axis, as csbdeep tiles::

        image axis   0 ─────────────────────────────────────────── size
        read               ├──── halo ───┼─── inner ───┼─── halo ────┤ (+ pad_end mirrored past the image end)
                       read_start    inner_start   inner_stop    read_stop

    The network reads ``[read_start, read_stop)`` plus ``pad_end`` mirrored pixels (only at the image end);
    the tile contributes ``[inner_start, inner_stop)`` of the output.
    """

    read_start: int
    read_stop: int
    pad_end: int
    inner_start: int
    inner_stop: int


def tile_regions(size: int, n: int, halo: int, valid) -> list[TileRegion]:
    """Tiles of one axis as csbdeep makes them: ``n`` near-equal inner parts, each read with ``halo`` pixels of
    real context on both sides (clipped at the image border, never mirrored inside the image), starting on the
    network's size step (so a StarDist grid stays aligned with the image's) and grown inside the image to a
    size the network accepts; a tile at the image's end is mirrored there exactly as the untiled image is.
    ``valid`` is the axis' accepted size: an int, or a bioimage.io ``ParameterizedSize`` (``min``, ``step``)."""
    step = int(getattr(valid, "step", 0) or 1)
    regions = []
    for k in range(n):
        start, stop = k * size // n, (k + 1) * size // n
        lo, hi = (max(0, start - halo), min(size, stop + halo)) if n > 1 else (0, size)
        lo -= lo % step
        need = valid_size(valid, hi - lo)
        if need < hi - lo:
            raise DataError(
                f"the model takes inputs of {need} pixels along this axis; a tile of {hi - lo} (with halo) is "
                f"larger: pass more --tiles along it (at least {math.ceil(size / max(1, need - 2 * halo))})"
            )
        if lo + need <= size:  # grown inside the image: real context only
            regions.append(TileRegion(lo, lo + need, 0, start, stop))
            continue
        # at the image end: mirrored exactly as the untiled image is (same amount), so border pixels match it
        if step == 1:  # a fixed input size
            lo = max(0, size - need)
            regions.append(TileRegion(lo, size, need - (size - lo), start, stop))
            continue
        padded = valid_size(valid, size)
        while lo > 0 and padded - lo < need:
            lo -= step
        regions.append(TileRegion(lo, size, padded - size, start, stop))
    return regions


def valid_size(size, at_least: int) -> int:
    """The smallest input size the axis accepts that is ≥ ``at_least`` (``size``: an int or ``min`` + n·``step``)."""
    if isinstance(size, int):
        return size
    if hasattr(size, "min") and hasattr(size, "step"):
        if at_least <= size.min or not size.step:
            return size.min
        return size.min + math.ceil((at_least - size.min) / size.step) * size.step
    raise DataError(f"the model's input axis size {size!r} is not supported by fijiport predict")
