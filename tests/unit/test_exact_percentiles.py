"""Exact percentiles from block histograms (issue 16: normalisation never per block): the numbers ``np.percentile``
gives on the whole image as float32, bit for bit, from numpy arrays read a block at a time and from Dask arrays on
a real ``dask.distributed`` cluster, for integer and float data; where ``dask.array.percentile`` is approximate."""

from __future__ import annotations

import numpy as np
import pytest

from fijiport.normalize import scale_range
from fijiport.percentiles import exact_percentiles

PERCENTILES = [0.0, 0.1, 1.0, 2.0, 3.0, 50.0, 99.8, 99.9, 100.0]


def _images(rng):
    yield "uint8", rng.integers(0, 256, (5, 61, 77), dtype=np.uint8)
    yield "uint16 camera", (100 + rng.poisson(30, (3, 128, 129)) * 20).astype(np.uint16)
    yield "int16 negative", rng.integers(-3000, 3000, (4, 50, 50), dtype=np.int16)
    yield "int32 wide", rng.integers(-(2**30), 2**30, (1000,), dtype=np.int32)
    yield "float32 signed zeros", np.concatenate([rng.normal(0, 1, 5000), [0.0, -0.0] * 50, [1e-42, -1e-42]]).astype(np.float32)
    yield "float64 wide range", np.exp(rng.normal(0, 20, (40, 40)))
    yield "constant", np.full((33, 35), 7, np.uint16)
    yield "one pixel", np.array([[3.5]], np.float32)


@pytest.mark.parametrize("case", [name for name, _ in _images(np.random.default_rng(0))])
def test_equal_to_numpy_bit_for_bit_from_numpy_and_dask_blocks(case, monkeypatch):
    import dask
    import dask.array as da

    import fijiport.percentiles as pct

    x = dict(_images(np.random.default_rng(0)))[case]
    want = [np.percentile(x.astype(np.float32), p) for p in PERCENTILES]
    monkeypatch.setattr(pct, "NUMPY_BLOCK", 997)  # many numpy blocks, of uneven rows
    got_numpy = exact_percentiles(x, PERCENTILES)
    chunks = tuple(max(1, s // 3 + 1) for s in x.shape)
    with dask.config.set(scheduler="threads"):
        got_dask = exact_percentiles(da.from_array(x, chunks=chunks), PERCENTILES)
    for p, w, a, b in zip(PERCENTILES, want, got_numpy, got_dask):
        same = _same(w, a) and _same(w, b)
        assert same, f"{case} p={p}: numpy {w!r}, numpy blocks {a!r}, dask {b!r}"


def _same(want, got) -> bool:
    """The same float32 bits; or both zero: numpy's partition leaves -0.0 and +0.0 (equal values) in either order,
    so the sign of a zero percentile is its choice."""
    return np.asarray(want).tobytes() == np.asarray(got).tobytes() or want == got == 0


def test_random_images_and_percentiles_match_numpy():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 3000))
        x = (rng.random(n) * rng.choice([1.0, 1000.0, 65535.0]) - rng.choice([0.0, 300.0])).astype(np.float32)
        ps = [float(p) for p in rng.uniform(0, 100, 3)]  # Python floats, as fijiport's configs hold them
        got = exact_percentiles(x, ps)
        assert [np.percentile(x, p).tobytes() for p in ps] == [g.tobytes() for g in got], (n, ps)


def test_normalising_with_them_equals_scale_range_on_the_whole_image():
    import dask.array as da

    x = (100 + np.random.default_rng(2).poisson(15, (4, 96, 96)) * 10).astype(np.uint16)
    lo, hi = exact_percentiles(da.from_array(x, chunks=(1, 32, 48)), [2.0, 99.8])
    blockwise = ((x.astype(np.float32) - lo) / (hi - lo + np.float32(1e-6))).astype(np.float32)
    np.testing.assert_array_equal(blockwise, scale_range(x, (0, 1, 2), 2.0, 99.8))


def test_nan_gives_nan_as_numpy_does_and_bad_percentiles_are_refused():
    x = np.arange(100, dtype=np.float32)
    x[17] = np.nan
    assert np.isnan(np.percentile(x, 50)) and all(np.isnan(v) for v in exact_percentiles(x, [2.0, 50.0]))
    with pytest.raises(ValueError, match="in \\[0, 100\\]"):
        exact_percentiles(x, [101.0])
    with pytest.raises(ValueError, match="empty"):
        exact_percentiles(np.zeros((0, 4)), [2.0])


def test_on_a_distributed_cluster_where_dask_percentile_is_approximate():
    import dask.array as da
    from distributed import Client, LocalCluster, get_task_stream

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.poisson(5, (4, 64, 64)), 1000 + rng.poisson(50, (4, 64, 64))]).astype(np.uint16)  # frames differ
    arr = da.from_array(x, chunks=(1, 64, 64))
    want = [np.percentile(x.astype(np.float32), p) for p in (2.0, 99.8)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        with get_task_stream(client) as stream:
            got = exact_percentiles(arr, [2.0, 99.8])
        workers = {t["worker"] for t in stream.data}
        approximate = da.percentile(arr.astype(np.float32).ravel(), [2.0, 99.8]).compute()
    assert [w.tobytes() for w in want] == [g.tobytes() for g in got]
    assert len(stream.data) >= 2 * 8 and len(workers) == 2, "two passes over the 8 blocks, on both workers"
    assert not np.array_equal(approximate, np.asarray(want, np.float32)), "dask's merged per-chunk percentiles are not numpy's"


@pytest.mark.parametrize("case", [name for name, _ in _images(np.random.default_rng(0))])
def test_in_the_datas_own_dtype_equal_to_numpy_as_csbdeeps_normalizer_takes_them(case):
    """Model folders normalise with csbdeep's PercentileNormalizer: np.percentile of the raw image (float64 for
    integers), cast to float32; the exact percentiles of the stored values give the same numbers."""
    import dask.array as da
    from csbdeep.data import PercentileNormalizer

    x = dict(_images(np.random.default_rng(0)))[case]
    got = exact_percentiles(da.from_array(x, chunks=tuple(max(1, s // 2) for s in x.shape)), PERCENTILES, as_float32=False)
    for p, g in zip(PERCENTILES, got):
        assert _same(np.percentile(x, p), g) and np.asarray(g).dtype == np.asarray(np.percentile(x, p)).dtype, (case, p, g)
    if x.ndim >= 2:
        axes = "ZYX"[-x.ndim :]
        normalizer = PercentileNormalizer(2.0, 99.8)
        normalizer.before(x, axes)
        lo, hi = exact_percentiles(x, [2.0, 99.8], as_float32=False)
        assert normalizer.mi.ravel()[0] == np.float32(lo) and normalizer.ma.ravel()[0] == np.float32(hi)
