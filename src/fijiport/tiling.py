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
    return _regions(size, [(k * size // n, (k + 1) * size // n) for k in range(n)], halo, valid)


def block_regions(size: int, block: int, halo: int, valid) -> list[TileRegion]:
    """Tiles of one axis whose inner parts are consecutive ``block``-sized pieces (the last one shorter), read as
    :func:`tile_regions` reads its tiles: what a distributed prediction's blocks are along the axis, so that a block
    writes whole output chunks when ``block`` is a multiple of the chunk size."""
    if block <= 0:
        raise ValueError(f"block size must be positive, got {block}")
    return _regions(size, [(k, min(size, k + block)) for k in range(0, size, block)], halo, valid)


def _regions(size: int, parts: list[tuple[int, int]], halo: int, valid) -> list[TileRegion]:
    """The :class:`TileRegion` of each inner part ``(start, stop)`` (see :func:`tile_regions`)."""
    step = int(getattr(valid, "step", 0) or 1)
    regions = []
    for start, stop in parts:
        lo, hi = (max(0, start - halo), min(size, stop + halo)) if len(parts) > 1 else (0, size)
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


class Block(NamedTuple):
    """One block of a blockwise (distributed) prediction: its position in the block grid and, per axis, the region
    it reads and the part of the output it writes (:class:`TileRegion`)."""

    index: tuple[int, ...]
    regions: tuple[TileRegion, ...]

    @property
    def read(self) -> tuple[slice, ...]:
        """What the block reads from the image (real pixels only)."""
        return tuple(slice(r.read_start, r.read_stop) for r in self.regions)

    @property
    def pad(self) -> tuple[tuple[int, int], ...]:
        """Pixels mirrored past the image's end (only at its end, as the untiled image is padded), per axis."""
        return tuple((0, r.pad_end) for r in self.regions)

    @property
    def write(self) -> tuple[slice, ...]:
        """The part of the output the block owns (no other block writes it)."""
        return tuple(slice(r.inner_start, r.inner_stop) for r in self.regions)

    @property
    def crop(self) -> tuple[slice, ...]:
        """Where :attr:`write` lies in the block's own prediction (of :attr:`read` padded by :attr:`pad`)."""
        return tuple(slice(r.inner_start - r.read_start, r.inner_stop - r.read_start) for r in self.regions)


def plan_blocks(shape: tuple[int, ...], block: tuple[int, ...], halo: tuple[int, ...], valid: tuple) -> list[Block]:
    """Every block of an image of ``shape`` cut into pieces of ``block`` per axis (see :func:`block_regions`), each
    read with ``halo`` pixels of the image's own context (mirrored only at its end), in C order of the block grid."""
    import itertools

    per_axis = [block_regions(n, b, h, v) for n, b, h, v in zip(shape, block, halo, valid)]
    return [
        Block(tuple(idx), tuple(per_axis[a][i] for a, i in enumerate(idx))) for idx in itertools.product(*(range(len(r)) for r in per_axis))
    ]


def choose_block(
    shape: tuple[int, ...], chunks: tuple[int, ...], steps: tuple[int, ...], max_voxels: int = MAX_TILE_VOXELS
) -> tuple[int, ...]:
    """A block size per axis: a multiple of the output chunk and of the network's size step along it (so blocks
    write whole chunks and keep the network's pooling aligned), grown one unit at a time along its shortest axis (near
    cubic blocks read the least halo) while the block stays within ``max_voxels`` and the image."""
    units = [math.lcm(max(1, c), max(1, s)) for c, s in zip(chunks, steps)]
    block = list(units)
    grown = True
    while grown:
        grown = False
        for a in sorted(range(len(block)), key=lambda a: block[a]):
            if block[a] < shape[a] and math.prod(block) // block[a] * (block[a] + units[a]) <= max_voxels:
                block[a] += units[a]
                grown = True
                break
    return tuple(block)
