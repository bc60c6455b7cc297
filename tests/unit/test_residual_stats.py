"""The N2V QC's residual figures tell noise from removed structure (they are what QC has without ground truth)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from fijiport.qc.denoising import residual_stats


def _scene(rng, shape=(128, 128)):
    return gaussian_filter(rng.normal(size=shape), 3) * 50 + 100


def test_a_residual_of_white_noise_scores_near_zero():
    rng = np.random.default_rng(0)
    clean = _scene(rng)
    noisy = clean + rng.normal(0, 5, clean.shape)
    stats = residual_stats(noisy, clean, 2)  # a perfect denoiser: the residual is the noise
    assert all(abs(a) < 0.05 for a in stats["autocorrelation"])
    assert abs(stats["correlation_with_prediction"]) < 0.05
    assert 0 < stats["std_ratio"] < 1


def test_over_smoothing_leaves_structure_in_the_residual():
    rng = np.random.default_rng(1)
    clean = _scene(rng) + gaussian_filter(rng.normal(size=(128, 128)), 1) * 30  # fine detail
    noisy = clean + rng.normal(0, 5, clean.shape)
    blurred = gaussian_filter(noisy, 4)  # removes the noise and the fine detail
    stats = residual_stats(noisy, blurred, 2)
    assert stats["autocorrelation"][0] > 0.5


def test_a_network_that_removes_signal_correlates_with_its_prediction():
    rng = np.random.default_rng(2)
    clean = _scene(rng)
    noisy = clean + rng.normal(0, 5, clean.shape)
    halved = 100 + (noisy - 100) * 0.5  # takes away half of every structure's contrast
    assert residual_stats(noisy, halved, 2)["correlation_with_prediction"] > 0.9


def test_frames_and_channels_are_pooled_along_their_own_axes():
    rng = np.random.default_rng(3)
    clean = np.stack([np.stack([_scene(rng, (64, 64)) for _ in range(2)], -1) for _ in range(3)])  # T, Y, X, C
    noisy = clean + rng.normal(0, 5, clean.shape)
    stats = residual_stats(noisy, clean, 2, channel_last=True)
    assert all(abs(a) < 0.06 for a in stats["autocorrelation"])
    # a residual constant along the frames axis must not count as spatial correlation
    stripes = np.repeat(rng.normal(size=(1, 64, 64)), 3, axis=0)
    assert abs(residual_stats(stripes + 10, np.full_like(stripes, 10), 2)["autocorrelation"][0]) < 0.06
