"""The blocks of a blockwise (Dask) prediction (issue 16): every output pixel written by exactly one block, writes on
the output chunks, reads on the network's size step with the halo from the image itself, mirrored only at its end;
and a local network with pooling run block by block gives exactly its untiled output."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from fijiport.tiling import choose_block, plan_blocks, tile_regions, valid_size


def _net(x: np.ndarray, step: int) -> np.ndarray:
    """A stand-in U-Net on integers (exact arithmetic): a 5-tap convolution, sum-pooling by ``step``, another 3-tap
    convolution at the coarse scale, and upsampling back; its output depends on where the pooling grid falls, as a
    real U-Net's does, and on at most HALO pixels around each pixel."""
    y = ndimage.correlate(x, np.ones((5,) * x.ndim, np.int64), mode="constant")
    coarse = y.reshape(*sum(((n // step, step) for n in y.shape), ())).sum(axis=tuple(range(1, 2 * y.ndim, 2)))
    coarse = ndimage.correlate(coarse, np.ones((3,) * x.ndim, np.int64), mode="constant")
    for a in range(x.ndim):
        coarse = coarse.repeat(step, axis=a)
    return coarse + x


HALO = 2 + 4 * 2  # the 5-tap convolution's reach, then the coarse 3-tap's at stride 4, with room for the pooling cell


@pytest.mark.parametrize("shape, chunks", [((70, 53), (16, 16)), ((37, 64, 45), (8, 16, 16)), ((40, 40), (40, 8))])
def test_blocks_cover_the_output_once_on_its_chunks_and_equal_the_untiled_network(shape, chunks):
    step = 4
    valid = tuple(SimpleNamespace(min=step, step=step) for _ in shape)
    img = np.random.default_rng(0).integers(0, 100, shape).astype(np.int64)
    padded = tuple(valid_size(v, n) for v, n in zip(valid, shape))
    untiled = _net(np.pad(img, [(0, p - n) for p, n in zip(padded, shape)], mode="reflect"), step)[tuple(slice(0, n) for n in shape)]

    block = choose_block(shape, chunks, (step,) * len(shape), max_voxels=600)
    assert all(b % math.lcm(c, step) == 0 for b, c in zip(block, chunks)), block
    blocks = plan_blocks(shape, block, (HALO,) * len(shape), valid)
    assert len(blocks) > 1
    out = np.zeros(shape, np.int64)
    written = np.zeros(shape, np.int64)
    for b in blocks:
        for r, c, n in zip(b.regions, chunks, shape):
            assert r.inner_start % c == 0 and (r.inner_stop % c == 0 or r.inner_stop == n), "writes whole chunks"
            assert r.read_start % step == 0, "the pooling grid stays the image's"
            assert r.read_start <= max(0, r.inner_start - HALO) and r.read_stop >= min(n, r.inner_stop + HALO), "the halo is read"
            assert r.pad_end == 0 or r.read_stop == n, "mirrored only at the image's end"
        pred = _net(np.pad(img[b.read], b.pad, mode="reflect"), step)
        out[b.write] = pred[b.crop]
        written[b.write] += 1
    assert (written == 1).all(), "every output pixel by exactly one block"
    np.testing.assert_array_equal(out, untiled)


def test_blocks_along_an_axis_are_tiles_with_chunk_boundaries():
    valid = SimpleNamespace(min=8, step=8)
    from fijiport.tiling import block_regions

    # three equal blocks are csbdeep's three tiles
    assert block_regions(96, 32, 12, valid) == tile_regions(96, 3, 12, valid)
    assert [(r.inner_start, r.inner_stop) for r in block_regions(100, 32, 12, valid)] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    with pytest.raises(ValueError, match="positive"):
        block_regions(10, 0, 1, valid)


def test_block_size_keeps_within_the_voxels_and_the_image():
    assert choose_block((10, 4096, 4096), (1, 512, 512), (1, 8, 8), max_voxels=2**20) == (4, 512, 512), "the shortest axis grows"
    assert choose_block((64, 2048, 2048), (16, 256, 256), (4, 8, 8), max_voxels=2**22) == (64, 256, 256)
    assert choose_block((64, 64), (16, 16), (4, 4), max_voxels=2**20) == (64, 64), "never beyond the image"
    assert choose_block((100, 100), (6, 6), (4, 4), max_voxels=10) == (12, 12), "at least one unit of chunk and step"
