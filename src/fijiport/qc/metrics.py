"""Restoration metrics as in the CARE paper (Weigert et al. 2018).

Ground truth is normalised with its 0.1/99.9 percentiles; the image under test (prediction or
raw input) is then scaled by the affine transform that minimises its mean squared error to the
normalised ground truth, so that neither an offset nor a gain is counted as an error. PSNR and
NRMSE use the normalised data range 1. Pearson's correlation (as MMV_Im2Im reports it) needs no
scaling: it is unchanged by any gain and offset.

The maps shown in the QC panels are those of ZeroCostDL4Mic: :func:`ssim_map` (the local SSIM of
each pixel's window) and :func:`rse_map` (the root squared error of each pixel).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import numpy as np

GT_PERCENTILES = (0.1, 99.9)


def normalize_gt(gt: np.ndarray, p_low: float = GT_PERCENTILES[0], p_high: float = GT_PERCENTILES[1]) -> np.ndarray:
    """Ground truth scaled so that its ``p_low`` / ``p_high`` percentiles map to 0 and 1.

    Parameters
    ----------
    gt
        The ground-truth image (any shape, any dtype).
    p_low, p_high
        The percentiles mapped to 0 and 1 (the CARE paper's 0.1 and 99.9 by default).

    Returns
    -------
    numpy.ndarray
        ``gt`` as float64, normalised.
    """
    gt = np.asarray(gt, dtype=np.float64)
    lo, hi = np.percentile(gt, p_low), np.percentile(gt, p_high)
    return (gt - lo) / max(hi - lo, 1e-12)


def scale_to(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Affine rescaling of ``x`` minimising the mean squared error to ``target`` (least squares).

    Parameters
    ----------
    x
        The image to scale (prediction or input).
    target
        The image to scale it to (the normalised ground truth), with as many pixels as ``x``.

    Returns
    -------
    numpy.ndarray
        ``alpha * x + beta`` in ``target``'s shape.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if x.size != t.size:
        raise ValueError(f"cannot scale an image of {x.size} pixels to one of {t.size}")
    var = x.var()
    alpha = 0.0 if var < 1e-24 else float(np.mean((x - x.mean()) * (t - t.mean())) / var)
    beta = t.mean() - alpha * x.mean()
    return (alpha * x + beta).reshape(np.shape(target))


def psnr(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(range² / MSE)`` (inf for identical images).

    Parameters
    ----------
    gt
        The normalised ground truth.
    x
        The image compared with it, of the same shape (scaled to it: :func:`scale_to`).
    data_range
        The range of the data (1 after :func:`normalize_gt`).

    Returns
    -------
    float
        In dB; higher is better.
    """
    mse = float(np.mean((np.asarray(gt, np.float64) - np.asarray(x, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def nrmse(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """Root mean squared error divided by the data range.

    Parameters
    ----------
    gt
        The normalised ground truth.
    x
        The image compared with it, of the same shape (scaled to it: :func:`scale_to`).
    data_range
        The range of the data (1 after :func:`normalize_gt`).

    Returns
    -------
    float
        0 for identical images; lower is better.
    """
    return float(np.sqrt(np.mean((np.asarray(gt, np.float64) - np.asarray(x, np.float64)) ** 2)) / data_range)


def _ssim_window(shape: tuple[int, ...]) -> int:
    win = min(7, min(shape))
    win = win if win % 2 else win - 1
    if win < 3:
        raise ValueError(f"image of shape {shape} is too small for SSIM (needs ≥ 3 pixels per axis)")
    return win


def ssim(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (scikit-image, 7-pixel window, smaller for thin stacks).

    Parameters
    ----------
    gt
        The normalised ground truth.
    x
        The image compared with it, of the same shape (scaled to it: :func:`scale_to`).
    data_range
        The range of the data (1 after :func:`normalize_gt`).

    Returns
    -------
    float
        1 for identical images; higher is better.
    """
    from skimage.metrics import structural_similarity

    gt, x = np.asarray(gt, np.float64), np.asarray(x, np.float64)
    return float(cast(float, structural_similarity(gt, x, data_range=data_range, win_size=_ssim_window(gt.shape))))


def ssim_map(gt: np.ndarray, x: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """The local SSIM of every pixel (the window around it); its mean, half a window away from the border, is :func:`ssim`.

    Parameters
    ----------
    gt
        The normalised ground truth.
    x
        The image compared with it, scaled to it (:func:`scale_to`).
    data_range
        The range of the data (1 after :func:`normalize_gt`).

    Returns
    -------
    numpy.ndarray
        A float64 map of ``gt``'s shape: 1 where ``x`` has ``gt``'s local structure, lower where it departs from it.
    """
    from skimage.metrics import structural_similarity

    gt, x = np.asarray(gt, np.float64), np.asarray(x, np.float64)
    _, full = cast(tuple, structural_similarity(gt, x, data_range=data_range, win_size=_ssim_window(gt.shape), full=True))
    return np.asarray(full, dtype=np.float64)


def rse_map(gt: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The root squared error of every pixel, ``sqrt((gt − x)²)``, as ZeroCostDL4Mic's RSE maps show it.

    Parameters
    ----------
    gt
        The normalised ground truth.
    x
        The image compared with it, scaled to it (:func:`scale_to`).

    Returns
    -------
    numpy.ndarray
        A float64 map of ``gt``'s shape (0 where ``x`` equals ``gt``); its root mean square is :func:`nrmse`.
    """
    return np.sqrt(np.square(np.asarray(gt, np.float64) - np.asarray(x, np.float64)))


def pearson(gt: np.ndarray, x: np.ndarray) -> float:
    """Pearson's correlation coefficient of the pixels of ``gt`` and ``x`` (unchanged by a gain or an offset).

    Parameters
    ----------
    gt
        The ground truth (any scaling).
    x
        The image compared with it, of as many pixels.

    Returns
    -------
    float
        Between -1 and 1 (1: ``x`` is ``gt`` up to a gain and an offset); 0 when either image is constant.
    """
    a = np.asarray(gt, np.float64).ravel()
    b = np.asarray(x, np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"cannot correlate an image of {a.size} pixels with one of {b.size}")
    a, b = a - a.mean(), b - b.mean()
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return 0.0 if denominator < 1e-24 else float(np.sum(a * b) / denominator)


@dataclass
class RestorationScores:
    """The scores of one image against its ground truth (see :func:`restoration_scores`)."""

    psnr: float
    ssim: float
    nrmse: float
    pearson: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def restoration_scores(gt: np.ndarray, x: np.ndarray) -> RestorationScores:
    """PSNR, SSIM, NRMSE and Pearson's correlation of ``x`` against ``gt``.

    Parameters
    ----------
    gt
        The ground-truth image.
    x
        The image under test (a prediction or the raw input), of ``gt``'s shape.

    Returns
    -------
    RestorationScores
        PSNR (dB), SSIM and NRMSE after the CARE paper's normalisation of ``gt`` and affine scaling of ``x``;
        Pearson's correlation, which needs neither.
    """
    gt_n = normalize_gt(gt)
    x_s = scale_to(x, gt_n)
    return RestorationScores(psnr=psnr(gt_n, x_s), ssim=ssim(gt_n, x_s), nrmse=nrmse(gt_n, x_s), pearson=pearson(gt_n, x_s))
