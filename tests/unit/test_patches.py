"""fijiport's streaming patch sampler gives csbdeep's ``create_patches`` patches exactly (issue 7, item 3)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fijiport.data.patches import foreground_mask, open_tiff, sample_care_patches
from fijiport.errors import DataError
from helpers import csbdeep_patches

PERCENTILES = (2.0, 99.8)


def _blobs(rng, shape, dtype):
    """Bright blocks on a dim, noisy background: some windows pass the background filter, most do not."""
    coarse = rng.random(tuple(max(1, s // 8) for s in shape)) > 0.8
    bright = coarse.repeat(8, axis=0)
    for ax in range(1, len(shape)):
        bright = bright.repeat(8, axis=ax)
    bright = bright[tuple(slice(0, s) for s in shape)]
    bright = np.pad(bright, [(0, s - b) for s, b in zip(shape, bright.shape)])
    gt = 100 + 900 * bright + rng.normal(0, 5, shape)
    low = gt / 4 + rng.normal(0, 20, shape)
    if np.issubdtype(dtype, np.integer):
        return np.clip(low, 0, None).astype(dtype), np.clip(gt, 0, None).astype(dtype)
    return low.astype(dtype), gt.astype(dtype)


def _read(pairs):
    return [(tifffile.imread(s), tifffile.imread(t)) for s, t in pairs]


def _write_pairs(root: Path, shapes, dtype=np.uint16, compress=False) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(7)
    (root / "low").mkdir(parents=True)
    (root / "GT").mkdir()
    pairs = []
    for i, shape in enumerate(shapes):
        low, gt = _blobs(rng, shape, dtype)
        kw = {"compression": "zlib"} if compress else {}
        for sub, img in (("low", low), ("GT", gt)):
            tifffile.imwrite(root / sub / f"im{i}.tif", img, **kw)
        pairs.append((root / "low" / f"im{i}.tif", root / "GT" / f"im{i}.tif"))
    return pairs


@pytest.mark.parametrize(
    "case",
    [
        dict(shapes=[(96, 80), (64, 128), (70, 70)], axes="YX", patch=(32, 32), n=12),
        dict(shapes=[(96, 80), (64, 64)], axes="YX", patch=(33, 16), n=40),  # odd size; replacement when few eligible
        dict(shapes=[(20, 48, 40), (24, 40, 48)], axes="ZYX", patch=(8, 16, 16), n=9),
        dict(shapes=[(64, 64), (80, 72)], axes="YX", patch=(16, 16), n=8, dtype=np.float32, compress=True),
    ],
)
def test_same_patches_as_csbdeep_create_patches(tmp_path, case):
    pairs = _write_pairs(tmp_path, case["shapes"], case.get("dtype", np.uint16), case.get("compress", False))
    X_ref, Y_ref, axes_ref = csbdeep_patches(_read(pairs), case["axes"], case["patch"], case["n"], 3, PERCENTILES)
    np.random.seed(3)
    X, Y, axes = sample_care_patches(pairs, case["axes"], case["patch"], case["n"], PERCENTILES)
    assert axes == axes_ref
    assert X.shape == X_ref.shape and Y.shape == Y_ref.shape
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(Y, Y_ref)


def test_channels_are_kept_whole(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "low").mkdir()
    (tmp_path / "GT").mkdir()
    pairs = []
    for i in range(2):
        low, gt = _blobs(rng, (2, 64, 80), np.uint16)
        low, gt = np.moveaxis(low, 0, -1).copy(), np.moveaxis(gt, 0, -1).copy()  # YXC
        tifffile.imwrite(tmp_path / "low" / f"c{i}.tif", low)
        tifffile.imwrite(tmp_path / "GT" / f"c{i}.tif", gt)
        pairs.append((tmp_path / "low" / f"c{i}.tif", tmp_path / "GT" / f"c{i}.tif"))
    X_ref, Y_ref, axes_ref = csbdeep_patches(_read(pairs), "YXC", (16, 16, 2), 6, 5, PERCENTILES)
    np.random.seed(5)
    X, Y, axes = sample_care_patches(pairs, "YXC", (16, 16, 2), 6, PERCENTILES)
    assert axes == axes_ref == "SCYX"
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(Y, Y_ref)


def test_foreground_rule_equals_csbdeep_also_for_negative_thresholds():
    """A float image whose 99.9th percentile is negative: the zero padding then counts as foreground."""
    from csbdeep.data import no_background_patches

    rng = np.random.default_rng(2)
    for offset in (0.0, -5.0):
        gt = (rng.normal(0, 1, (40, 50)) + offset).astype(np.float32)
        ref = no_background_patches(0.4, 99.9)((gt, gt), (12, 10))
        np.testing.assert_array_equal(foreground_mask(gt, (12, 10)), ref)


def test_same_seed_same_patches_and_inputs_untouched(tmp_path):
    from helpers import tree_hashes

    pairs = _write_pairs(tmp_path, [(64, 64), (72, 64)])
    before = tree_hashes(tmp_path)
    runs = []
    for _ in range(2):
        np.random.seed(11)
        runs.append(sample_care_patches(pairs, "YX", (16, 16), 5, PERCENTILES)[0])
    np.testing.assert_array_equal(*runs)
    assert tree_hashes(tmp_path) == before


def test_uncompressed_tiffs_are_memory_mapped_compressed_ones_read(tmp_path):
    plain = _write_pairs(tmp_path / "plain", [(32, 32)])[0][0]
    packed = _write_pairs(tmp_path / "packed", [(32, 32)], compress=True)[0][0]
    assert isinstance(open_tiff(plain).base, np.memmap) or isinstance(open_tiff(plain), np.memmap)
    assert not isinstance(open_tiff(packed).base, np.memmap)
    np.testing.assert_array_equal(open_tiff(plain), open_tiff(packed))


def test_empty_ground_truth_is_named(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "GT").mkdir()
    tifffile.imwrite(tmp_path / "low" / "a.tif", np.ones((32, 32), np.uint16))
    gt = np.zeros((32, 32), np.float32)
    gt[0, 0] = -1  # every window's maximum (0) is at or below 40% of the 99.9th percentile (0)
    tifffile.imwrite(tmp_path / "GT" / "a.tif", gt)
    with pytest.raises(DataError, match=r"GT/a\.tif has no region bright enough"):
        sample_care_patches([(tmp_path / "low" / "a.tif", tmp_path / "GT" / "a.tif")], "YX", (16, 16), 4, PERCENTILES)


def test_patch_larger_than_image_is_named(tmp_path):
    pairs = _write_pairs(tmp_path, [(32, 32)])
    with pytest.raises(DataError, match=r"im0\.tif .*Y: patch 64 > image 32"):
        sample_care_patches(pairs, "YX", (64, 16), 4, PERCENTILES)


def test_tile_regions_cover_each_axis_within_the_valid_sizes():
    """Every tile reads a size the network accepts, starts on its size step, and the inner parts tile the axis."""
    from fijiport.tiling import tile_regions as _tile_regions

    class Size:  # a bioimage.io ParameterizedSize
        def __init__(self, min, step):
            self.min, self.step = min, step

    for size, n, halo, valid in [
        (1000, 4, 22, Size(16, 16)),
        (500, 3, 22, Size(16, 16)),
        (512, 4, 22, Size(48, 4)),
        (30, 1, 0, Size(48, 4)),
        (97, 2, 8, Size(8, 8)),
        (64, 1, 0, Size(48, 4)),
    ]:
        regions = _tile_regions(size, n, halo, valid)
        assert next(r[3] for r in regions) == 0 and regions[-1][4] == size
        assert all(a[4] == b[3] for a, b in itertools.pairwise(regions))
        for lo, hi, pad, start, stop in regions:
            length = hi - lo + pad
            assert length >= valid.min and (length - valid.min) % valid.step == 0
            assert lo % valid.step == 0 and 0 <= lo <= start and stop <= hi <= size
            assert pad == 0 or hi == size  # only an image end is mirrored
            if n > 1:
                assert start - lo >= min(halo, start) and hi - stop >= min(halo, size - stop)
            assert length <= max(valid.min, 2 * halo + size // n + 2 * valid.step)  # a tile stays a tile
