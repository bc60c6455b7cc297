"""Exact percentiles of an image too large to hold, from histograms of its blocks, for Dask.

fijiport normalises an image with ``np.percentile`` of its pixels: as float32 for packages
(:func:`fijiport.normalize.scale_range`, bioimage.io's ``scale_range``), of the pixels as they are stored for model
folders (csbdeep's ``PercentileNormalizer`` takes the percentiles of the raw image, then casts them to float32). Over
a Zarr volume split into blocks, normalising each block with its own percentiles makes seams, and
``dask.array.percentile`` is approximate (it merges per-block percentiles). This module computes the numbers
``np.percentile`` gives on the whole image, bit for bit, for any integer or float dtype, holding one block at a time:

1. every value is mapped to an unsigned key whose order is the values' order (floats: the IEEE sign bit flipped for
   positives, all bits for negatives; signed integers: offset by the dtype's minimum);
2. the keys are read 16 bits at a time from the top (8-bit data: 8): each pass counts, over all blocks, the next digit
   of the keys that share the prefix found so far for each wanted rank (the order statistics ``np.percentile``
   interpolates between, ``floor((n-1)q)`` and the next), which fixes that digit; 2 passes for 32-bit values, 4 for
   64-bit ones;
3. the two values are interpolated as numpy 2 does for a Python float ``q`` (the weight in float64, the arithmetic in
   the values' dtype, float64 for integers), so the result equals ``np.percentile(x, q)`` (a zero's sign aside:
   numpy's partition leaves -0.0 and +0.0 in either order).

Each pass is one Dask computation over the blocks (per-block histograms summed pairwise), so it runs in parallel on
whatever scheduler is active, a ``dask.distributed`` cluster included. An image with a NaN gives NaN, as numpy does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NUMPY_BLOCK = 1 << 24
"""Elements per block when the image is a numpy array (memory-mapped files are read a block at a time)."""


def exact_percentiles(x: Any, percentiles: Sequence[float], *, as_float32: bool = True) -> list[Any]:
    """``np.percentile(x.astype(np.float32), p)`` (or, with ``as_float32=False``, ``np.percentile(x, p)``) for each
    ``p`` of ``percentiles``, over every element of ``x``.

    Parameters
    ----------
    x
        A numpy array (memory-mapped is fine: read a block at a time) or a Dask array (its chunks are the blocks; the
        passes run on the active Dask scheduler), of integers or floats.
    percentiles
        Percentiles in [0, 100].
    as_float32
        The percentiles of the values as float32, as ``scale_range`` (packages) takes them; False: of the values in
        their own dtype, as csbdeep's ``PercentileNormalizer`` (model folders) takes them.

    Returns
    -------
    list of numpy scalars
        One value per percentile, identical to numpy's (float32, or float64 for integers and float64 data).
    """
    n = int(np.prod(x.shape))
    if n == 0:
        raise ValueError("percentiles of an empty image")
    if any(not 0 <= p <= 100 for p in percentiles):
        raise ValueError(f"percentiles must lie in [0, 100], got {list(percentiles)}")
    dtype = np.dtype(np.float32) if as_float32 else np.dtype(x.dtype)
    if dtype.kind not in "uif":
        raise ValueError(f"percentiles of {dtype} data are not supported; integers or floats only")
    bits = dtype.itemsize * 8
    width = min(16, bits)
    wanted = [_order_statistics(n, p) for p in percentiles]
    ranks = sorted({r for (i, j, _) in wanted for r in (i, j)})
    prefix = dict.fromkeys(ranks, 0)
    within = {r: r for r in ranks}
    for k in range(bits // width):
        needed = sorted(set(prefix.values()))
        hist, nans = _sum_over_blocks(x, _digit_histograms, dtype, k, width, needed)
        if nans:
            return [dtype.type(np.nan) if dtype.kind == "f" else np.float64(np.nan)] * len(percentiles)
        for r in ranks:
            h = hist[needed.index(prefix[r])]
            ends = np.cumsum(h)
            digit = int(np.searchsorted(ends, within[r], side="right"))
            within[r] -= int(ends[digit] - h[digit])
            prefix[r] = (prefix[r] << width) | digit
    values = {r: _value(prefix[r], dtype) for r in ranks}
    return [_lerp(values[i], values[j], gamma) for i, j, gamma in wanted]


def _order_statistics(n: int, p: float) -> tuple[int, int, float]:
    """The ranks numpy's ``linear`` method interpolates between for ``p``, and the weight (as numpy computes it)."""
    virtual = (n - 1) * np.true_divide(float(p), 100)
    previous = np.floor(virtual)
    gamma = float(virtual - previous)
    i = min(int(previous), n - 1)
    return i, min(i + 1, n - 1), gamma


def _lerp(a, b, gamma: float):
    """numpy 2's ``_lerp`` for bounds of the data's dtype and a Python float weight (weak promotion: the data's float
    dtype, float64 for integers)."""
    diff = b - a
    return b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma


def _keys(block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Order-preserving unsigned keys (uint64) of the block's values in ``dtype`` (NaNs sort last)."""
    x = np.ascontiguousarray(block, dtype=dtype).reshape(-1)
    if dtype.kind == "u":
        return x.astype(np.uint64)
    if dtype.kind == "i":
        return (x.astype(np.int64) - np.iinfo(dtype).min).astype(np.uint64)
    unsigned = np.dtype(f"u{dtype.itemsize}")
    sign = unsigned.type(1 << (dtype.itemsize * 8 - 1))
    u = x.view(unsigned)
    return np.where(u & sign, ~u, u | sign).astype(np.uint64)


def _value(key: int, dtype: np.dtype):
    """The value of ``dtype`` whose key is ``key`` (the inverse of :func:`_keys`)."""
    if dtype.kind == "u":
        return dtype.type(key)
    if dtype.kind == "i":
        return dtype.type(key + int(np.iinfo(dtype).min))
    bits = dtype.itemsize * 8
    sign = 1 << (bits - 1)
    u = key ^ sign if key & sign else ~key & ((1 << bits) - 1)
    return np.array([u], dtype=f"u{dtype.itemsize}").view(dtype)[0]


def _digit_histograms(block: np.ndarray, dtype: np.dtype, k: int, width: int, prefixes: list[int]) -> tuple[np.ndarray, int]:
    """For each prefix (the top ``k * width`` bits found so far), the histogram of the next ``width``-bit digit of the
    block's keys that have it; and the block's NaN count."""
    block = np.asarray(block)
    nans = int(np.isnan(block).sum()) if block.dtype.kind == "f" else 0
    keys = _keys(block, dtype)
    bits = dtype.itemsize * 8
    shift = np.uint64(bits - width * (k + 1))
    digits = (keys >> shift) & np.uint64((1 << width) - 1)
    if k == 0:
        return np.bincount(digits, minlength=1 << width)[np.newaxis], nans
    top = keys >> (shift + np.uint64(width))
    return np.stack([np.bincount(digits[top == np.uint64(p)], minlength=1 << width) for p in prefixes]), nans


def _add(a, b):
    return tuple(x + y for x, y in zip(a, b)) if isinstance(a, tuple) else a + b


def _sum_over_blocks(x: Any, fn, *args) -> Any:
    """``fn(block, *args)`` summed over the blocks of ``x``: a Dask array's chunks, as one Dask computation (results
    added pairwise, so no task receives every block's histogram); a numpy array's slices along its first axis of
    about :data:`NUMPY_BLOCK` elements, in this process."""
    if hasattr(x, "to_delayed"):
        from dask.base import compute
        from dask.delayed import delayed

        parts = [delayed(fn)(b, *args) for b in x.to_delayed().ravel()]
        while len(parts) > 1:
            parts = [delayed(_add)(parts[k], parts[k + 1]) if k + 1 < len(parts) else parts[k] for k in range(0, len(parts), 2)]
        return compute(parts[0])[0]
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    x = x.reshape(1) if x.ndim == 0 else x
    rows = max(1, NUMPY_BLOCK // max(1, int(np.prod(x.shape[1:]))))
    total = None
    for k in range(0, x.shape[0], rows):
        part = fn(np.asarray(x[k : k + rows]), *args)
        total = part if total is None else _add(total, part)
    return total
