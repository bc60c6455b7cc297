"""Is a low/GT pair a pair? Figures that catch what ``prepare care`` let through before: the --low and --gt folders
swapped, GT files shuffled between images, a GT shifted against its input, inputs clipped at their maximum.

Each pair is measured (:func:`measure_pair`), then judged (:func:`judge_pair`): clear failures are refused naming the
file and the figure, borderline ones logged as warnings; the figures go into the manifest (``PairRecord.checks``).

What is measured, and on what, so that a 64×1024×1024 stack costs what a small image does:

- the first sample / time point / channel, centre-cropped to at most :data:`CROP` (32 × 256 × 256, Z × Y × X;
  images under :data:`MIN_SIZE` px in Y or X get the saturation check only);
- **correlation**: Pearson's r of low and GT, both smoothed with a Gaussian of :data:`SMOOTH` px (the noise of a
  15-photon acquisition otherwise hides the likeness);
- **shift**: where GT's content sits relative to low's, from the peak of their cross-correlation (scikit-image's
  ``phase_cross_correlation`` with ``normalization=None``, to 1/4 px: phase normalisation whitens the noise
  too and finds no peak in noisy pairs), and the correlation once GT is moved back by it (rounded, on the overlap);
- **noise ratio**: the noise of low over that of GT, each relative to its own signal range (the 1st-99th percentile
  of the smoothed crop). The noise is Donoho's estimate, the median absolute finest-scale wavelet coefficient / 0.6745,
  which is what ``skimage.restoration.estimate_sigma`` computes; here with the Haar wavelet in numpy, because
  ``estimate_sigma`` needs PyWavelets, which is not a dependency;
- **saturation**: the fraction of pixels at the image's maximum value, per channel over the whole image (a strided
  subsample of at most :data:`SATURATION_SAMPLE` pixels), the largest.

Thresholds, calibrated on the demo's simulated pairs (``data.synthetic.write_care_pairs``, 15 photons, 2D and 3D) and
broken variants of the same files (measured figures in ``tests/unit/test_pair_checks.py``): good pairs have
correlation >= 0.97, shift 0, noise ratio 2.5-5 (1.3 at 100 photons), saturation <= 0.01%; swapped folders have noise
ratio 0.2-0.4; shuffled GT names and a GT rolled by 20 px have shifts of 8-70 px (correlation -0.3 to 0.33); inputs
clipped on 75% of their pixels have saturation 0.75. Even 1-photon pairs (correlation 0.37) stay above the refusal.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ..artifacts.data_folder import PairChecks
from ..axes import SPATIAL
from ..errors import DataError

log = logging.getLogger(__name__)

CROP = {"Z": 32, "Y": 256, "X": 256}
"""The centre crop the correlation, shift and noise are measured on (at most, per spatial axis)."""
SMOOTH = {"Z": 1.0, "Y": 2.0, "X": 2.0}
"""Gaussian sigma (px) per spatial axis before correlating."""
MIN_SIZE = 16
"""Images narrower than this in Y or X get only the saturation check: their correlation and shift mean little."""
SATURATION_SAMPLE = 4_000_000
"""At most this many pixels per channel are counted for the saturation (a strided subsample of the whole image)."""

CORRELATION_REFUSE, CORRELATION_WARN = 0.2, 0.5
SHIFT_REFUSE, SHIFT_WARN = 3.0, 1.5
"""Pixels, along any spatial axis."""
NOISE_RATIO_REFUSE, NOISE_RATIO_WARN = 0.5, 1.0
SATURATION_REFUSE, SATURATION_WARN = 0.2, 0.01

SKIP = "or pass --skip-pair-checks if the pair is right as it is"


def check_pair(
    low_path: Path, gt_path: Path, low: np.ndarray, gt: np.ndarray, axes: str, gt_axes: Optional[str] = None, channel: Optional[int] = 0
) -> PairChecks:
    """Measure a pair, refuse it (:class:`DataError`) if it is clearly not one, log a warning for each borderline figure.

    ``gt_axes`` are GT's when its channels are not the input's; ``channel`` is the input channel compared with GT's
    first (None when no input channel is GT's: only the saturation is checked).

    Returns
    -------
    PairChecks
        The figures, with the warnings logged.
    """
    checks = measure_pair(low, gt, axes, gt_axes, channel)
    checks.warnings = judge_pair(checks, low_path, gt_path, "".join(a for a in SPATIAL if a in axes))
    for w in checks.warnings:
        log.warning("%s", w)
    return checks


def measure_pair(low: np.ndarray, gt: np.ndarray, axes: str, gt_axes: Optional[str] = None, channel: Optional[int] = 0) -> PairChecks:
    """The figures of one pair (see the module's docstring); None where an image is constant, or where GT's first
    channel has no counterpart in the input (``channel`` None: saturation only)."""
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    gt_axes = gt_axes or axes
    checks = PairChecks(saturated_low=_saturation(low, axes), saturated_gt=_saturation(gt, gt_axes))
    if channel is None:
        return checks
    (lo, spatial), (hi, _) = _crop(low, axes, channel), _crop(gt, gt_axes)
    if lo.std() == 0 or hi.std() == 0:
        return checks  # a constant image: the per-image check says so
    if min(n for a, n in zip(spatial, lo.shape) if a in "YX") < MIN_SIZE:
        log.info("%s pixels in Y, X are too few to measure a pair's correlation, shift and noise; not measured", lo.shape)
        return checks
    sigma = [SMOOTH[a] for a in spatial]
    lo_s, hi_s = ndimage.gaussian_filter(lo, sigma), ndimage.gaussian_filter(hi, sigma)
    checks.correlation = _round(_correlation(lo_s, hi_s))
    # normalization=None is documented (plain cross-correlation); skimage's annotation says str
    shift, _, _ = phase_cross_correlation(
        hi_s - hi_s.mean(),
        lo_s - lo_s.mean(),
        upsample_factor=4,
        normalization=None,  # pyright: ignore[reportArgumentType]
    )
    checks.shift = [float(s) + 0.0 for s in np.asarray(shift)]  # + 0.0: no -0.0 in the manifest
    d = np.round(np.asarray(shift)).astype(int)
    on_low = tuple(slice(max(0, -k), n - max(0, k)) for k, n in zip(d, lo_s.shape))
    on_gt = tuple(slice(max(0, k), n - max(0, -k)) for k, n in zip(d, hi_s.shape))
    checks.aligned_correlation = _round(_correlation(lo_s[on_low], hi_s[on_gt]))
    noise_lo, noise_hi = _relative_noise(lo, lo_s), _relative_noise(hi, hi_s)
    if noise_lo is not None and noise_hi:
        checks.noise_ratio = _round(noise_lo / noise_hi)
    return checks


def judge_pair(checks: PairChecks, low_path: Path, gt_path: Path, spatial: str) -> list[str]:
    """Raise :class:`DataError` for a pair that clearly is not one; return the warnings for borderline figures."""
    warnings = []
    for path, frac in ((low_path, checks.saturated_low), (gt_path, checks.saturated_gt)):
        if frac is None:
            continue
        if frac >= SATURATION_REFUSE:
            raise DataError(
                f"{path}: {frac:.0%} of its pixels sit at its maximum value (clipped or over-exposed; good images have "
                f"< {SATURATION_WARN:.0%}); CARE cannot learn what was cut off: use the acquisitions as the camera saved "
                f"them (no 8-bit conversion, no Apply in Fiji's Brightness/Contrast), {SKIP}"
            )
        if frac >= SATURATION_WARN:
            warnings.append(f"{path}: {frac:.1%} of its pixels sit at its maximum value (saturated?); CARE cannot restore clipped regions")
    if checks.correlation is not None and checks.shift is not None and checks.aligned_correlation is not None:
        r, r_aligned = checks.correlation, checks.aligned_correlation
        moved = max(abs(s) for s in checks.shift)
        shift = f"({', '.join(f'{s:g}' for s in checks.shift)}) px along {', '.join(spatial)}"
        if moved >= SHIFT_REFUSE and r_aligned >= CORRELATION_WARN:
            raise DataError(
                f"{gt_path} is shifted against its input {low_path} by {shift}: correlation {r:.2f} as they are, "
                f"{r_aligned:.2f} once shifted back; register the pair so that each pixel shows the same point in both "
                f"(or check that this GT belongs to this input), {SKIP}"
            )
        if moved >= SHIFT_REFUSE or r < CORRELATION_REFUSE:
            raise DataError(
                f"{low_path} and {gt_path} do not look like two acquisitions of the same field: correlation {r:.2f} after "
                f"smoothing (pairs have > {CORRELATION_WARN}), {r_aligned:.2f} at the best shift {shift}; check that each "
                f"GT file has its own input's name (shuffled or renamed files?), {SKIP}"
            )
        if moved >= SHIFT_WARN:
            warnings.append(f"{gt_path} may be shifted against {low_path} by {shift}; CARE needs registered pairs")
        if r < CORRELATION_WARN:
            warnings.append(
                f"{low_path} and {gt_path} correlate weakly (correlation {r:.2f} after smoothing; pairs have > {CORRELATION_WARN}): "
                "a very noisy input, or not quite the same field?"
            )
    if checks.noise_ratio is not None:
        if checks.noise_ratio < NOISE_RATIO_REFUSE:
            raise DataError(
                f"{gt_path} is noisier than its input {low_path} (noise ratio input/GT {checks.noise_ratio:.2f}; pairs have "
                f"> {NOISE_RATIO_WARN:g}): --low and --gt look swapped; swap them, {SKIP}"
            )
        if checks.noise_ratio < NOISE_RATIO_WARN:
            warnings.append(
                f"{low_path} is not noisier than its GT {gt_path} (noise ratio input/GT {checks.noise_ratio:.2f}); "
                "--low should hold the low-quality acquisitions"
            )
    return warnings


def _crop(img: np.ndarray, axes: str, channel: int = 0) -> tuple[np.ndarray, str]:
    """The first sample / time point (and channel ``channel``), spatial axes in Z, Y, X order, centre-cropped to
    :data:`CROP`."""
    index = tuple(slice(None) if a in SPATIAL else channel if a == "C" else 0 for a in axes)
    present = [a for a in axes if a in SPATIAL]
    spatial = "".join(a for a in SPATIAL if a in present)
    sub = np.transpose(img[index], [present.index(a) for a in spatial])
    window = tuple(slice((n - min(n, CROP[a])) // 2, (n - min(n, CROP[a])) // 2 + min(n, CROP[a])) for a, n in zip(spatial, sub.shape))
    return np.asarray(sub[window], dtype=np.float64), spatial


def _saturation(img: np.ndarray, axes: str) -> Optional[float]:
    """The largest fraction of pixels at the maximum value over the channels; None for a constant image."""
    channels = [np.take(img, c, axis=axes.index("C")) for c in range(img.shape[axes.index("C")])] if "C" in axes else [img]
    fractions = []
    for ch in channels:
        step = max(1, int(np.ceil((ch.size / SATURATION_SAMPLE) ** (1 / ch.ndim))))
        sample = ch[(slice(None, None, step),) * ch.ndim]
        top = sample.max()
        if top != sample.min():
            fractions.append(float(np.count_nonzero(sample == top)) / sample.size)
    return _round(max(fractions), 4) if fractions else None


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / norm if norm else 0.0


def _relative_noise(img: np.ndarray, smoothed: np.ndarray) -> Optional[float]:
    """Donoho's noise estimate (finest-scale Haar coefficients) over the smoothed image's 1st-99th percentile range."""
    d = img
    for ax in range(img.ndim):
        n = d.shape[ax] - d.shape[ax] % 2
        if n < 2:
            continue
        even, odd = np.take(d, np.arange(0, n, 2), axis=ax), np.take(d, np.arange(1, n, 2), axis=ax)
        d = (even - odd) / np.sqrt(2)
    lo, hi = np.percentile(smoothed, [1, 99])
    if hi <= lo:
        return None
    return float(np.median(np.abs(d)) / 0.6745) / float(hi - lo)


def _round(x: float, digits: int = 3) -> float:
    return round(float(x), digits) + 0.0
