"""Exact percentiles of an image too large to hold, from histograms of its blocks, for Dask.

fijiport normalises an image with ``np.percentile`` of its pixels as float32 (:func:`fijiport.normalize.scale_range`,
bioimage.io's ``scale_range``). Over a Zarr volume split into blocks, normalising each block with its own percentiles
makes seams, and ``dask.array.percentile`` is approximate (it merges per-block percentiles). This module computes the
same numbers ``np.percentile`` gives on the whole image, bit for bit, for any dtype, holding one block at a time:

1. every float32 value is mapped to a 32-bit key whose unsigned order is the values' order (the IEEE sign bit
   flipped for positives, all bits for negatives);
2. pass 1 counts the keys' top 16 bits over all blocks (a 65536-bin histogram per block, summed): the bins that hold
   the order statistics ``np.percentile`` interpolates between (ranks ``floor((n-1)q)`` and the next) and the ranks
   within them;
3. pass 2 counts the low 16 bits of the keys in those bins only: the exact keys, hence the exact values;
4. the values are interpolated as numpy 2 does for a Python float ``q`` (the weight in float64, the arithmetic in
   float32), so the result equals ``np.percentile(x.astype(np.float32), q)`` for a Python float ``q`` (a zero's sign
   aside: numpy's partition leaves -0.0 and +0.0 in either order).

Each pass is one Dask computation over the blocks (per-block histograms summed pairwise), so it runs in parallel on
whatever scheduler is active, a ``dask.distributed`` cluster included. An image with a NaN gives NaN, as numpy does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DIGIT = 16
BINS = 1 << DIGIT
SIGN = np.uint32(0x80000000)
NUMPY_BLOCK = 1 << 24
"""Elements per block when the image is a numpy array (memory-mapped files are read a block at a time)."""


def exact_percentiles(x: Any, percentiles: Sequence[float]) -> list[np.float32]:
    """``np.percentile(x.astype(np.float32), p)`` for each ``p`` of ``percentiles``, over every element of ``x``.

    Parameters
    ----------
    x
        A numpy array (memory-mapped is fine: read a block at a time) or a Dask array (its chunks are the blocks; the
        passes run on the active Dask scheduler).
    percentiles
        Percentiles in [0, 100].

    Returns
    -------
    list of numpy.float32
        One value per percentile, identical to numpy's.
    """
    n = int(np.prod(x.shape))
    if n == 0:
        raise ValueError("percentiles of an empty image")
    if any(not 0 <= p <= 100 for p in percentiles):
        raise ValueError(f"percentiles must lie in [0, 100], got {list(percentiles)}")
    wanted = [_order_statistics(n, p) for p in percentiles]
    ranks = sorted({r for (i, j, _) in wanted for r in (i, j)})

    top, nans = _sum_over_blocks(x, _top_histogram_and_nans)
    if nans:
        return [np.float32(np.nan)] * len(percentiles)
    ends = np.cumsum(top)
    bins = {r: int(np.searchsorted(ends, r, side="right")) for r in ranks}
    needed = sorted(set(bins.values()))
    low = _sum_over_blocks(x, _low_histograms, needed)
    values = {}
    for r, b in bins.items():
        within = r - int(ends[b] - top[b])
        digit = int(np.searchsorted(np.cumsum(low[needed.index(b)]), within, side="right"))
        values[r] = _value((np.uint32(b) << np.uint32(DIGIT)) | np.uint32(digit))
    return [_lerp(values[i], values[j], gamma) for i, j, gamma in wanted]


def _order_statistics(n: int, p: float) -> tuple[int, int, float]:
    """The ranks numpy's ``linear`` method interpolates between for ``p``, and the weight (as numpy computes it)."""
    virtual = (n - 1) * np.true_divide(float(p), 100)
    previous = np.floor(virtual)
    gamma = float(virtual - previous)
    i = min(int(previous), n - 1)
    return i, min(i + 1, n - 1), gamma


def _lerp(a: np.float32, b: np.float32, gamma: float) -> np.float32:
    """numpy 2's ``_lerp`` for float32 bounds and a Python float weight (weak promotion: float32 arithmetic)."""
    diff = b - a
    if gamma >= 0.5:
        return np.float32(b - diff * np.float32(1 - gamma))
    return np.float32(a + diff * np.float32(gamma))


def _keys(block: np.ndarray) -> np.ndarray:
    """Order-preserving uint32 keys of the block's values as float32 (NaNs sort last)."""
    u = np.ascontiguousarray(block, dtype=np.float32).reshape(-1).view(np.uint32)
    return np.where(u & SIGN, ~u, u | SIGN)


def _value(key: np.uint32) -> np.float32:
    u = key ^ SIGN if key & SIGN else ~key
    return np.array([u], dtype=np.uint32).view(np.float32)[0]


def _top_histogram_and_nans(block: np.ndarray) -> tuple[np.ndarray, int]:
    block = np.asarray(block)
    nans = int(np.isnan(block).sum()) if block.dtype.kind == "f" else 0
    return np.bincount(_keys(block) >> np.uint32(DIGIT), minlength=BINS), nans


def _low_histograms(block: np.ndarray, bins: list[int]) -> np.ndarray:
    keys = _keys(block)
    top = keys >> np.uint32(DIGIT)
    return np.stack([np.bincount(keys[top == b] & np.uint32(BINS - 1), minlength=BINS) for b in bins])


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
