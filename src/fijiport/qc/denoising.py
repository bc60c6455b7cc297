"""``fijiport qc`` for Noise2Void: what the residual (input − prediction) holds, and, where clean images exist,
PSNR/SSIM/NRMSE against them.

Noise2Void is trained without ground truth, and most labs have none to test it with either. What can be measured
without it is what the network took away. Noise2Void removes pixel-independent, zero-mean noise, so the residual of a
good model looks like noise: no spatial autocorrelation (lags 1–3 along each spatial axis, Pearson) and no
correlation with the prediction. A residual that is smooth (autocorrelated) or follows the image means the network
removed structure along with the noise. These figures are heuristics, not proofs; the thresholds they are held to
are written in ``qc.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..artifacts.data_folder import GT_DIR, IMAGES_DIR, load_n2v_manifest, recorded_axes
from ..artifacts.model_folder import ModelFolder
from ..artifacts.qc_report import METRIC_LABELS, METRICS, QC_MD, DenoisingQc, write_qc_report
from ..axes import frames_layout, stored_axes, transpose_axes
from ..errors import DataError
from ..files import atomic_dir, check_output, declared_axes, list_tiffs, read_tiff
from ..tiling import auto_tiles
from .provenance import qc_provenance
from .restoration import channel_scores, display_slice

log = logging.getLogger(__name__)

LAGS = (1, 2, 3)
THRESHOLDS = {"autocorrelation_lag1": 0.3, "correlation_with_prediction": 0.3}
"""Above these the residual holds structure (heuristic limits; white noise gives ~0)."""


def residual_stats(noisy: np.ndarray, prediction: np.ndarray, n_spatial: int, *, channel_last: bool = False) -> dict[str, Any]:
    """What the residual ``noisy − prediction`` holds. Both arrays end in ``n_spatial`` spatial axes (then a channel
    axis with ``channel_last``); leading axes (frames) and channels are pooled.

    Returns ``autocorrelation`` (Pearson, at :data:`LAGS`, mean over the spatial axes), ``correlation_with_prediction``
    and ``std_ratio`` (std of the residual over std of the input: the share of the variation removed)."""
    x, p = np.asarray(noisy, np.float64), np.asarray(prediction, np.float64)
    if x.shape != p.shape:
        raise ValueError(f"input {x.shape} and prediction {p.shape} differ in shape")
    r = x - p
    end = x.ndim - 1 if channel_last else x.ndim
    spatial = list(range(end - n_spatial, end))
    autocorrelation = []
    for lag in LAGS:
        values = [_pearson(np.take(r, range(0, r.shape[a] - lag), axis=a), np.take(r, range(lag, r.shape[a]), axis=a))
                  for a in spatial if r.shape[a] > lag + 1]  # fmt: skip
        autocorrelation.append(float(np.mean(values)) if values else float("nan"))
    return {
        "autocorrelation": autocorrelation,
        "correlation_with_prediction": _pearson(r, p),
        "std_ratio": float(r.std() / x.std()) if x.std() > 0 else 0.0,
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def find_denoising_images(test_dir: Path) -> tuple[list[tuple[str, Path, Optional[Path]]], Optional[str]]:
    """(name, noisy image, clean image or None) for ``test_dir``: an N2V data folder (its ``test`` split), one of its
    splits (``images/`` and optional ``GT/``), or a folder of TIFFs (clean ones in its ``GT/``, if any); and the
    axes its data folder records (None: read from each file)."""
    test_dir = Path(test_dir)
    axes = recorded_axes(test_dir, load_n2v_manifest)
    base = test_dir
    if (test_dir / "test" / IMAGES_DIR).is_dir():
        base = test_dir / "test"
    images_dir = base / IMAGES_DIR if (base / IMAGES_DIR).is_dir() else base
    gt_dir = base / GT_DIR
    found = list_tiffs(images_dir, what="test folder")
    if not found:
        raise DataError(f"{test_dir} holds no noisy test images (.tif); pass DATA/test of `fijiport prepare n2v`, or a folder of TIFFs")
    gts = {p.name: p for p in list_tiffs(gt_dir, what="GT folder")} if gt_dir.is_dir() else {}
    if gts and set(gts) != {p.name for p in found}:
        missing = sorted({p.name for p in found} - set(gts))
        log.warning("%s: no clean image for %s; those are scored by their residual only", gt_dir, ", ".join(missing) or "-")
    return [(p.name, p, gts.get(p.name)) for p in found], axes


def qc_n2v(
    folder: ModelFolder,
    test_dir: Path,
    report_dir: Path,
    *,
    n_tiles: Optional[tuple[int, ...]] = None,
    save_predictions: bool = False,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> DenoisingQc:
    """Denoise every test image, measure its residual (and its scores against clean images where there are some), and
    write ``qc.json``, ``qc.md`` and one PNG panel per image.

    Parameters
    ----------
    folder
        The opened N2V model folder.
    test_dir
        Noisy images (and optionally ``GT/`` clean ones), or a data folder (its ``test/`` is used).
    report_dir
        The report folder to write, whole or not at all.
    n_tiles
        Tiles per image axis (default: tiles of about a million pixels).
    save_predictions
        Also write the denoised images (``predictions/``).
    overwrite
        Replace an existing ``report_dir``.
    progress
        Called as ``progress(done, total, name)`` before each image (e.g. :class:`fijiport.notebook.CountBar`).

    Returns
    -------
    DenoisingQc
        What ``qc.json`` holds: the residual's figures, and ``summary`` against clean images where there are some.
    """
    report_dir = Path(report_dir)
    check_output(report_dir, overwrite)
    if folder.kind.qc_task != "denoising":
        raise DataError(f"{folder.path} is a {folder.kind.title} model; `fijiport qc` measures it with {folder.kind.qc_task} QC")
    items, data_axes = find_denoising_images(test_dir)
    model = folder.load_keras()
    img_axes = folder.image_axes
    n_spatial = len(folder.spatial_axes)
    images: list[dict[str, Any]] = []
    with atomic_dir(report_dir, overwrite=overwrite) as tmp:
        (tmp / "panels").mkdir()
        if save_predictions:
            (tmp / "predictions").mkdir()
        for i, (name, path, gt_path) in enumerate(items):
            if progress:
                progress(i, len(items), name)
            noisy = read_tiff(path)
            frames = _frames(noisy, path, data_axes, img_axes, folder.n_channel_in)
            preds = []
            tiles = tuple(n_tiles) if n_tiles else auto_tiles(frames[0].shape, img_axes)
            for frame in frames:
                pred = folder.kind.predict(folder, model, frame, tiles).image
                assert pred is not None
                preds.append(pred)
            x, pred = np.stack(frames), np.stack(preds)
            entry: dict[str, Any] = {"name": name, "shape": list(noisy.shape), "frames": len(frames), "n_tiles": list(tiles),
                                     "residual": residual_stats(x, pred, n_spatial, channel_last="C" in img_axes)}  # fmt: skip
            gt = None
            if gt_path is not None:
                gt_frames = _frames(read_tiff(gt_path), gt_path, data_axes, img_axes, folder.n_channel_in)
                gt = np.stack(gt_frames)
                if gt.shape != x.shape:
                    raise DataError(f"{gt_path} is {list(gt.shape)} but {path} is {list(x.shape)}: a clean image must match its noisy one")
                entry["input"], entry["prediction"] = _scores(gt, x, img_axes), _scores(gt, pred, img_axes)
            images.append(entry)
            _panel(x[0], pred[0], None if gt is None else gt[0], img_axes, tmp / "panels" / f"{Path(name).stem}.png", name, entry)
            if save_predictions:
                import tifffile

                out = np.stack(preds) if len(preds) > 1 else preds[0]
                tifffile.imwrite(tmp / "predictions" / name, out.astype(np.float32))
        if progress:
            progress(len(items), len(items), "")
        report = _report(folder, Path(test_dir), images)
        write_qc_report(tmp, report)
        (tmp / QC_MD).write_text(_markdown(report))
    return report


def first_frame(path: Path, data_axes: Optional[str], folder: ModelFolder) -> np.ndarray:
    """An image's first frame in the network's layout, as :func:`qc_n2v` feeds it to ``folder``'s model."""
    return _frames(read_tiff(path), path, data_axes, folder.image_axes, folder.n_channel_in)[0]


def _frames(img: np.ndarray, path: Path, data_axes: Optional[str], img_axes: str, n_channel: int) -> list[np.ndarray]:
    """The image as frames in the network's layout ``img_axes``: a time-lapse (T, or one axis more than the model
    has) gives one frame per time point."""
    axes = data_axes or declared_axes(path)
    layout = frames_layout(axes, img.ndim, img_axes, guess=True)
    if layout is None:
        return [_to_network(img, path, axes, img_axes, n_channel)]
    t, rest = layout
    return [_to_network(np.take(img, i, axis=t), path, rest, img_axes, n_channel) for i in range(img.shape[t])]


def _to_network(img: np.ndarray, path: Path, axes: Optional[str], img_axes: str, n_channel: int) -> np.ndarray:
    if img.ndim == len(img_axes) and "C" in img_axes:
        src = axes if axes and len(axes) == img.ndim and set(axes) == set(img_axes) else stored_axes(axes, img.shape, img_axes, n_channel)
        img = transpose_axes(img, src, img_axes)
    if img.ndim != len(img_axes):
        raise DataError(f"{path} has {img.ndim} dimensions {list(img.shape)} but the model denoises {img_axes} images")
    return img


def _scores(gt: np.ndarray, x: np.ndarray, img_axes: str) -> dict[str, float]:
    """The CARE paper's scores against the clean image, per frame (and channel), averaged."""
    per = [channel_scores(g, f, img_axes) for g, f in zip(gt, x)]
    return {m: float(np.mean([s.to_dict()[m] for s in per])) for m in METRICS}


def _report(folder: ModelFolder, test_dir: Path, images: list[dict[str, Any]]) -> DenoisingQc:
    residual = {
        "autocorrelation": [float(np.nanmean([im["residual"]["autocorrelation"][k] for im in images])) for k in range(len(LAGS))],
        "lags": list(LAGS),
        "correlation_with_prediction": float(np.mean([im["residual"]["correlation_with_prediction"] for im in images])),
        "std_ratio": float(np.mean([im["residual"]["std_ratio"] for im in images])),
    }
    scored = [im for im in images if "prediction" in im]
    summary = None
    if scored:
        summary = {m: {w: float(np.mean([im[w][m] for im in scored])) for w in ("input", "prediction")} for m in METRICS}
    warnings = []
    if residual["autocorrelation"][0] > THRESHOLDS["autocorrelation_lag1"]:
        warnings.append(
            f"the residual (input − prediction) is smooth: autocorrelation {residual['autocorrelation'][0]:.2f} at lag 1 "
            f"(white noise: ~0, limit {THRESHOLDS['autocorrelation_lag1']}); the network removes image structure with the "
            "noise (over-smoothing): train longer, on more images, or check that the test images resemble the training ones"
        )
    if residual["correlation_with_prediction"] > THRESHOLDS["correlation_with_prediction"]:
        warnings.append(
            f"the residual follows the image: correlation with the prediction {residual['correlation_with_prediction']:.2f} "
            f"(limit {THRESHOLDS['correlation_with_prediction']}); the network removes signal, not only noise"
        )
    if summary and summary["psnr"]["prediction"] < summary["psnr"]["input"]:
        warnings.append(
            f"the model makes the images worse against their clean versions: mean PSNR {summary['psnr']['input']:.2f} → "
            f"{summary['psnr']['prediction']:.2f} dB; do not use this model"
        )
    for w in warnings:
        log.warning("%s", w)
    from ..kinds.n2v import mean_std

    means, stds = mean_std(folder)
    return DenoisingQc.model_validate({
        **qc_provenance(folder, test_dir, [im["name"] for im in images]),
        "warnings": warnings,
        "normalization": {"means": means.tolist(), "stds": stds.tolist(), "method": "the training data's mean and std (n2v)"},
        "n_images": len(images),
        "n_with_gt": len(scored),
        "residual": residual,
        "thresholds": THRESHOLDS,
        "summary": summary,
        "images": images,
    })  # fmt: skip


def _markdown(report: DenoisingQc) -> str:
    r = report.residual
    lines = [
        "# Noise2Void quality control",
        "",
        f"Model `{report.model}` ({report.weights}, sha256 {str(report.weights_sha256)[:12]}…) on {report.n_images} "
        f"{report.images_word} image(s) from `{report.test_dir}`.",
        "",
        "What the residual (input − prediction) holds, mean over the images. A residual of pure pixel-independent noise "
        "has autocorrelation and correlation with the prediction near 0; higher values mean structure was removed.",
        "",
        "| autocorrelation lag "
        + " | lag ".join(str(lag) for lag in r["lags"])
        + " | correlation with prediction | residual std / input std |",
        "|---" * (len(r["lags"]) + 2) + "|",
        "| " + " | ".join(f"{a:.3f}" for a in r["autocorrelation"]) + f" | {r['correlation_with_prediction']:.3f} | {r['std_ratio']:.3f} |",
    ]
    if report.summary:
        lines += ["", f"Against clean images ({report.n_with_gt} image(s); CARE paper's normalisation and affine scaling):", "",
                  "| metric | input vs GT | prediction vs GT | gain |", "|---|---|---|---|"]  # fmt: skip
        for m in METRICS:
            s = report.summary[m]
            lines.append(f"| {METRIC_LABELS[m]} | {s['input']:.4f} | {s['prediction']:.4f} | {s['prediction'] - s['input']:+.4f} |")
    else:
        lines += ["", "No clean images (`GT/`) were found, so there are no PSNR/SSIM figures: the residual is all that was measured."]
    for w in report.warnings:
        lines += ["", f"**Warning**: {w}."]
    if report.split == "train":
        lines += ["", "**These are the model's training images**: QC on them flatters the model; measure it on held-out data."]
    lines += ["", "## Per image", "", "| image | frames | residual autocorrelation (lag 1) | correlation with prediction | PSNR in → pred | panel |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for im in report.images:
        res = im["residual"]
        psnr = f"{im['input']['psnr']:.2f} → {im['prediction']['psnr']:.2f}" if "prediction" in im else "no GT"
        lines.append(f"| {im['name']} | {im['frames']} | {res['autocorrelation'][0]:.3f} | {res['correlation_with_prediction']:.3f} | "
                     f"{psnr} | ![](panels/{Path(im['name']).stem}.png) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _panel(x, pred, gt, axes: str, path: Path, name: str, entry: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x2, p2 = display_slice(x, axes), display_slice(pred, axes)
    shown = [(x2, "noisy input"), (p2, "N2V prediction")] + ([(display_slice(gt, axes), "clean image (GT)")] if gt is not None else [])
    fig, axs = plt.subplots(1, len(shown) + 1, figsize=(4 * (len(shown) + 1), 4.4))
    vmin, vmax = np.percentile(p2, 0.5), np.percentile(p2, 99.8)
    for ax, (img, title) in zip(axs, shown):
        ax.imshow(img, cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.axis("off")
    residual = x2 - p2
    lim = max(float(np.percentile(np.abs(residual), 99.5)), 1e-6)
    im = axs[-1].imshow(residual, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axs[-1].set_title("residual (input − prediction)")
    axs[-1].axis("off")
    fig.colorbar(im, ax=axs[-1], fraction=0.046)
    res = entry["residual"]
    z_note = " (middle Z slice)" if "Z" in axes else ""
    frame_note = ", first frame" if entry["frames"] > 1 else ""
    fig.suptitle(f"{name}{z_note}{frame_note}: residual autocorrelation {res['autocorrelation'][0]:.2f}, "
                 f"correlation with prediction {res['correlation_with_prediction']:.2f}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


__all__ = ["find_denoising_images", "first_frame", "qc_n2v", "residual_stats"]
