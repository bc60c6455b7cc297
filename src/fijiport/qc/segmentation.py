"""``fijiport qc`` for StarDist: instance-segmentation metrics against ground-truth masks.

Matching is stardist's own (``stardist.matching``): precision, recall, F1, accuracy
TP/(TP+FP+FN) and panoptic quality at IoU thresholds 0.1–0.9.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..artifacts.data_folder import IMAGES_DIR, MASKS_DIR, load_stardist_manifest, recorded_axes
from ..artifacts.model_folder import ModelFolder
from ..artifacts.qc_report import QC_MD, SEGMENTATION_METRICS, SegmentationQc, write_qc_report
from ..axes import frames_layout
from ..data.labels import implausible_objects, object_stats
from ..data.pairing import pair_images
from ..errors import DataError
from ..files import atomic_dir, check_output, declared_axes, read_tiff
from .provenance import qc_provenance

log = logging.getLogger(__name__)

IOU_THRESHOLDS = [round(0.1 * i, 1) for i in range(1, 10)]
METRICS = SEGMENTATION_METRICS


def find_segmentation_pairs(test_dir: Path) -> list[tuple[str, Path, Path]]:

    test_dir = Path(test_dir)
    for base in (test_dir, test_dir / "test"):
        if (base / IMAGES_DIR).is_dir() and (base / MASKS_DIR).is_dir():
            pairing = pair_images(base / IMAGES_DIR, base / MASKS_DIR, source_label="images", target_label="masks")
            return [(p.name, p.source, p.target) for p in pairing.pairs]
    raise DataError(
        f"{test_dir} has no images/ and masks/ folders; pass the test folder written by `fijiport prepare stardist` (DATA_DIR/test)"
    )


def qc_stardist(
    model_dir: Path | ModelFolder,
    test_dir: Path,
    report_dir: Path,
    *,
    save_predictions: bool = False,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> SegmentationQc:
    """Segment every test image and write ``qc.json``, ``qc.md``, ``metrics.png`` and overlay panels: precision,
    recall, F1, accuracy and panoptic quality at IoU 0.1-0.9.

    Parameters
    ----------
    model_dir
        A StarDist model folder (or an opened :class:`~fijiport.artifacts.model_folder.ModelFolder`).
    test_dir
        ``images/`` and ``masks/`` folders, or a data folder (its ``test/`` is used).
    report_dir
        The report folder to write, whole or not at all.
    save_predictions
        Also write the label images (``predictions/``).
    overwrite
        Replace an existing ``report_dir``.
    progress
        Called as ``progress(done, total, name)`` before each image (e.g. :class:`fijiport.notebook.CountBar`).

    Returns
    -------
    SegmentationQc
        What ``qc.json`` holds (``at_iou_05`` the figures at IoU 0.5).
    """
    report_dir = Path(report_dir)
    check_output(report_dir, overwrite)
    folder = model_dir if isinstance(model_dir, ModelFolder) else ModelFolder.open(model_dir)
    if folder.kind.qc_task != "segmentation":
        raise DataError(f"{model_dir} is a {folder.kind.title} model; its QC compares images with ground truth, not labels")
    pairs = find_segmentation_pairs(test_dir)
    if not pairs:
        raise DataError(f"{test_dir} holds no image/mask pairs")
    model = folder.load_keras()
    from stardist.matching import matching_dataset

    img_axes = folder.image_axes
    data_axes = recorded_axes(Path(test_dir), load_stardist_manifest)
    # per test image, its frames (one for an image, every frame of a time-lapse): (image, truth, prediction)
    segmented: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for i, (name, img_path, mask_path) in enumerate(pairs):
        if progress:
            progress(i, len(pairs), name)
        img, truth = read_tiff(img_path), read_tiff(mask_path)
        layout = frames_layout(data_axes or declared_axes(img_path), img.ndim, img_axes)
        frames = [(img, truth)] if layout is None else [(np.take(img, k, axis=layout[0]), truth[k]) for k in range(truth.shape[0])]
        segmented[name] = []
        for frame, frame_truth in frames:
            if frame.ndim != len(img_axes):
                raise DataError(f"{img_path} has {frame.ndim} dimensions but the model expects axes {img_axes}")
            n_tiles = tuple(max(1, int(np.ceil(s / 1024))) if a in "XY" else 1 for s, a in zip(frame.shape, img_axes))
            labels = folder.kind.predict(folder, model, frame, n_tiles).labels
            assert labels is not None
            segmented[name].append((frame, frame_truth.astype(np.int32), labels.astype(np.int32)))
    if progress:
        progress(len(pairs), len(pairs), "")
    names = list(segmented)
    truths = [t for frames in segmented.values() for _, t, _ in frames]
    preds = [p for frames in segmented.values() for _, _, p in frames]
    per_threshold = []
    for t in IOU_THRESHOLDS:
        s: Any = matching_dataset(truths, preds, thresh=t, show_progress=False)
        per_threshold.append({"iou": t, **{m: float(getattr(s, m)) for m in METRICS}, "tp": int(s.tp), "fp": int(s.fp), "fn": int(s.fn)})
    warnings = []
    for name, frames in segmented.items():
        why = implausible_objects(
            object_stats([p for _, _, p in frames]), object_stats([t for _, t, _ in frames]), what="its ground-truth objects"
        )
        if why:
            warnings.append(f"{name}: {why}")
    for w in warnings:
        log.warning("%s", w)
    per_image = []
    for name, frames in segmented.items():
        s = matching_dataset([t for _, t, _ in frames], [p for _, _, p in frames], thresh=0.5, show_progress=False)
        per_image.append(
            {
                "name": name,
                "objects_true": sum(len(np.unique(t)) - 1 for _, t, _ in frames),
                "objects_predicted": sum(len(np.unique(p)) - 1 for _, _, p in frames),
                **{m: float(getattr(s, m)) for m in METRICS},
            }
        )
    report = SegmentationQc.model_validate(
        {
            **qc_provenance(folder, Path(test_dir), names),
            "warnings": warnings,
            "n_images": len(names),
            "thresholds": {"prob": float(model.thresholds.prob), "nms": float(model.thresholds.nms)},
            "normalization": {"percentiles": list(folder.percentiles)},
            "at_iou_0.5": next(r for r in per_threshold if r["iou"] == 0.5),
            "per_threshold": per_threshold,
            "images": per_image,
        }
    )
    with atomic_dir(report_dir, overwrite=overwrite) as tmp:
        (tmp / "panels").mkdir()
        write_qc_report(tmp, report)
        (tmp / QC_MD).write_text(_markdown(report.model_dump(mode="json", by_alias=True)))
        _plot_metrics(per_threshold, tmp / "metrics.png")
        for name, frames in segmented.items():  # a time-lapse's panel: its first frame
            img, truth, pred = frames[0]
            _overlay(img, truth, pred, img_axes, tmp / "panels" / f"{Path(name).stem}.png", name + (", frame 1" if len(frames) > 1 else ""))
        if save_predictions:
            import tifffile

            (tmp / "predictions").mkdir()
            for name, frames in segmented.items():  # a time-lapse's labels as one stack, T first
                pred = frames[0][2] if len(frames) == 1 else np.stack([p for _, _, p in frames])
                tifffile.imwrite(tmp / "predictions" / name, pred.astype(np.uint16 if pred.max() < 2**16 else np.uint32))
    return report


def _markdown(data: dict[str, Any]) -> str:
    lines = [
        "# StarDist quality control",
        "",
        f"Model `{data['model']}` (thresholds prob {data['thresholds']['prob']:.3f}, nms {data['thresholds']['nms']:.2f}) "
        f"on {data['n_images']} {'training' if data.get('split') == 'train' else 'test'} image(s) from `{data['test_dir']}`. "
        "Matching by IoU (stardist.matching); accuracy = TP/(TP+FP+FN).",
        *[line for w in data.get("warnings", []) for line in ("", f"**Warning**: {w}.")],
        *(["", "**These are the model's training images**: QC on them flatters the model."] if data.get("split") == "train" else []),
        "",
        "![metrics against IoU threshold](metrics.png)",
        "",
        "| IoU | precision | recall | F1 | accuracy | panoptic quality | TP | FP | FN |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["per_threshold"]:
        lines.append(
            f"| {r['iou']:.1f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['accuracy']:.3f} | "
            f"{r['panoptic_quality']:.3f} | {r['tp']} | {r['fp']} | {r['fn']} |"
        )
    lines += ["", "## Per image (IoU 0.5)", "", "| image | objects (true / predicted) | F1 | accuracy | panel |", "|---|---|---|---|---|"]
    for im in data["images"]:
        lines.append(
            f"| {im['name']} | {im['objects_true']} / {im['objects_predicted']} | {im['f1']:.3f} | {im['accuracy']:.3f} | "
            f"![](panels/{Path(im['name']).stem}.png) |"
        )
    return "\n".join(lines) + "\n"


def _plot_metrics(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ious = [r["iou"] for r in rows]
    for m in METRICS:
        ax.plot(ious, [r[m] for r in rows], "o-", label=m.replace("_", " "))
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def outlines_rgb(img, truth, pred, axes: str) -> np.ndarray:
    """The image (first channel, middle Z slice for stacks) as RGB with true (green) and predicted (magenta) outlines."""
    from skimage.segmentation import find_boundaries

    x = np.asarray(img, dtype=np.float64)
    if "C" in axes:
        x = np.take(x, 0, axis=axes.index("C"))
    if x.ndim == 3:
        z = x.shape[0] // 2
        x, truth, pred = x[z], truth[z], pred[z]
    lo, hi = np.percentile(x, 1), np.percentile(x, 99.8)
    x = np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = np.stack([x] * 3, -1)
    rgb[find_boundaries(truth, mode="inner")] = (0.1, 0.9, 0.1)
    rgb[find_boundaries(pred, mode="inner")] = (1.0, 0.1, 1.0)
    return rgb


def _overlay(img, truth, pred, axes: str, path: Path, name: str) -> None:
    """Image with true (green) and predicted (magenta) outlines; middle Z slice for stacks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgb = outlines_rgb(img, truth, pred, axes)
    fig, ax = plt.subplots(figsize=(7, 7 * rgb.shape[0] / max(rgb.shape[1], 1) + 0.4))
    ax.imshow(rgb)
    ax.set_title(f"{name}: ground truth (green), StarDist (magenta)")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
