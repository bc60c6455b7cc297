"""Percentile normalisation, defined once, exactly as the bioimage.io ``scale_range`` op computes it.

bioimageio.core: ``(x - q_low) / (q_high - q_low + eps)`` with per-sample quantiles (``linear``
interpolation, numpy's default) over the given axes and ``eps = 1e-6``. csbdeep's
``PercentileNormalizer`` differs only in its ``eps`` (1e-20), which is immaterial for real data;
using this one everywhere makes test outputs reproduce in ``bioimageio test``.
"""

from __future__ import annotations

import numpy as np

SCALE_RANGE_EPS = 1e-6


def scale_range(x: np.ndarray, axes: tuple[int, ...], p_low: float, p_high: float, eps: float = SCALE_RANGE_EPS) -> np.ndarray:
    """Map the ``p_low``/``p_high`` percentiles over ``axes`` to 0/1 (float32 result)."""
    x = np.asarray(x, dtype=np.float32)
    lo = np.percentile(x, p_low, axis=axes, keepdims=True)
    hi = np.percentile(x, p_high, axis=axes, keepdims=True)
    return ((x - lo) / (hi - lo + eps)).astype(np.float32)


def normalize_percentiles(x: np.ndarray, p_low: float, p_high: float, channel_axis: int | None = None) -> np.ndarray:
    """Percentile-normalise an image jointly over all axes but the channel axis."""
    axes = tuple(i for i in range(x.ndim) if i != (channel_axis % x.ndim if channel_axis is not None else None))
    return scale_range(x, axes, p_low, p_high)
