"""Restoration metrics as in the CARE paper (Weigert et al. 2018).

Ground truth is normalised with its 0.1/99.9 percentiles; the image under test (prediction or
raw input) is then scaled by the affine transform that minimises its mean squared error to the
normalised ground truth, so that neither an offset nor a gain is counted as an error. PSNR and
NRMSE use the normalised data range 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import numpy as np

GT_PERCENTILES = (0.1, 99.9)


def normalize_gt(gt: np.ndarray, p_low: float = GT_PERCENTILES[0], p_high: float = GT_PERCENTILES[1]) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    lo, hi = np.percentile(gt, p_low), np.percentile(gt, p_high)
    return (gt - lo) / max(hi - lo, 1e-12)


def scale_to(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Affine rescaling of ``x`` minimising the mean squared error to ``target`` (least squares)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if x.size != t.size:
        raise ValueError(f"cannot scale an image of {x.size} pixels to one of {t.size}")
    var = x.var()
    alpha = 0.0 if var < 1e-24 else float(np.mean((x - x.mean()) * (t - t.mean())) / var)
    beta = t.mean() - alpha * x.mean()
    return (alpha * x + beta).reshape(np.shape(target))


def psnr(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(range² / MSE)`` (inf for identical images)."""
    mse = float(np.mean((np.asarray(gt, np.float64) - np.asarray(x, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def nrmse(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """Root mean squared error divided by the data range."""
    return float(np.sqrt(np.mean((np.asarray(gt, np.float64) - np.asarray(x, np.float64)) ** 2)) / data_range)


def ssim(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (scikit-image, 7-pixel window, smaller for thin stacks)."""
    from skimage.metrics import structural_similarity

    gt, x = np.asarray(gt, np.float64), np.asarray(x, np.float64)
    win = min(7, min(gt.shape))
    win = win if win % 2 else win - 1
    if win < 3:
        raise ValueError(f"image of shape {gt.shape} is too small for SSIM (needs ≥ 3 pixels per axis)")
    return float(cast(float, structural_similarity(gt, x, data_range=data_range, win_size=win)))


@dataclass
class RestorationScores:
    psnr: float
    ssim: float
    nrmse: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def restoration_scores(gt: np.ndarray, x: np.ndarray) -> RestorationScores:
    """PSNR, SSIM and NRMSE of ``x`` against ``gt`` after the CARE paper's normalisation and scaling."""
    gt_n = normalize_gt(gt)
    x_s = scale_to(x, gt_n)
    return RestorationScores(psnr=psnr(gt_n, x_s), ssim=ssim(gt_n, x_s), nrmse=nrmse(gt_n, x_s))
