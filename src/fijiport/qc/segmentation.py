"""``fijiport qc`` for StarDist: instance-segmentation metrics against ground-truth masks.

Matching is stardist's own (``stardist.matching``): precision, recall, F1, accuracy
TP/(TP+FP+FN) and panoptic quality at IoU thresholds 0.1–0.9.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from .. import __version__
from ..errors import DataError
from ..files import atomic_dir, check_output, read_tiff, write_json

log = logging.getLogger(__name__)

IOU_THRESHOLDS = [round(0.1 * i, 1) for i in range(1, 10)]
METRICS = ("precision", "recall", "f1", "accuracy", "panoptic_quality")
DEFAULT_PERCENTILES = (1.0, 99.8)


def find_segmentation_pairs(test_dir: Path) -> list[tuple[str, Path, Path]]:
    from ..data.pairing import pair_images

    test_dir = Path(test_dir)
    for base in (test_dir, test_dir / "test"):
        if (base / "images").is_dir() and (base / "masks").is_dir():
            pairing = pair_images(base / "images", base / "masks", source_label="images", target_label="masks")
            return [(p.name, p.source, p.target) for p in pairing.pairs]
    raise DataError(f"{test_dir} has no images/ and masks/ folders; pass the test folder written by `fijiport prepare stardist` (DATA_DIR/test)")


def load_stardist(model_dir: Path):
    """A stardist model folder → (model, axes, percentiles)."""
    from .._tf import legacy_tensorflow, quiet_stdout

    model_dir = Path(model_dir)
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        raise DataError(f"{model_dir} has no config.json; pass a stardist model folder")
    config = json.loads(cfg_path.read_text())
    if "n_rays" not in config:
        raise DataError(f"{model_dir} is not a StarDist model (config.json has no n_rays)")
    if not any((model_dir / w).is_file() for w in ("weights_best.h5", "weights_last.h5")):
        raise DataError(f"{model_dir} has no weights_best.h5 or weights_last.h5")
    legacy_tensorflow()
    from stardist.models import StarDist2D, StarDist3D

    cls = StarDist2D if int(config.get("n_dim", 2)) == 2 else StarDist3D
    try:
        with quiet_stdout():
            model = cls(None, name=model_dir.name, basedir=str(model_dir.parent))
    except Exception as e:  # stardist raises many types for configs and weights it cannot use
        raise DataError(f"stardist cannot load the StarDist model in {model_dir} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); is config.json a StarDist config that belongs to "
                        "these weights? Copy the model folder again, whole, from where it was trained") from None
    percentiles = DEFAULT_PERCENTILES
    fcfg = model_dir / "fijiport_config.yaml"
    if fcfg.is_file():
        data = yaml.safe_load(fcfg.read_text()) or {}
        percentiles = (float(data.get("percentile_low", 1.0)), float(data.get("percentile_high", 99.8)))
    axes = str(config.get("axes", "YXC")).upper()
    return model, axes, percentiles


def qc_stardist(model_dir: Path, test_dir: Path, report_dir: Path, *, save_predictions: bool = False,
                overwrite: bool = False, progress: Optional[Callable[[int, int, str], None]] = None) -> dict[str, Any]:
    """Segment every test image and write ``qc.json``, ``qc.md``, ``metrics.png`` and overlay panels."""
    from stardist.matching import matching_dataset

    from .._tf import quiet_stdout
    from ..training.stardist import normalize_image

    report_dir = Path(report_dir)
    check_output(report_dir, overwrite)
    model, net_axes, percentiles = load_stardist(model_dir)
    pairs = find_segmentation_pairs(test_dir)
    if not pairs:
        raise DataError(f"{test_dir} holds no image/mask pairs")
    img_axes = net_axes if int(model.config.n_channel_in) > 1 else net_axes.replace("C", "")
    truths, preds, names, images = [], [], [], []
    for i, (name, img_path, mask_path) in enumerate(pairs):
        if progress:
            progress(i, len(pairs), name)
        img, truth = read_tiff(img_path), read_tiff(mask_path)
        if img.ndim != len(img_axes):
            raise DataError(f"{img_path} has {img.ndim} dimensions but the model expects axes {img_axes}")
        x = normalize_image(img, img_axes, *percentiles)
        n_tiles = tuple(max(1, int(np.ceil(s / 1024))) if a in "XY" else 1 for s, a in zip(x.shape, img_axes))
        with quiet_stdout():
            labels, _ = model.predict_instances(x, axes=img_axes, n_tiles=n_tiles, show_tile_progress=False)
        truths.append(truth.astype(np.int32))
        preds.append(labels.astype(np.int32))
        names.append(name)
        images.append(img)
    if progress:
        progress(len(pairs), len(pairs), "")
    per_threshold = []
    for t in IOU_THRESHOLDS:
        s = matching_dataset(truths, preds, thresh=t, show_progress=False)
        per_threshold.append({"iou": t, **{m: float(getattr(s, m)) for m in METRICS},
                              "tp": int(s.tp), "fp": int(s.fp), "fn": int(s.fn)})
    per_image = []
    for name, truth, pred in zip(names, truths, preds):
        s = matching_dataset([truth], [pred], thresh=0.5, show_progress=False)
        per_image.append({"name": name, "objects_true": int(truth.max() and len(np.unique(truth)) - 1),
                          "objects_predicted": int(len(np.unique(pred)) - 1), **{m: float(getattr(s, m)) for m in METRICS}})
    data = {
        "kind": "stardist", "fijiport_version": __version__, "model": str(Path(model_dir).resolve()),
        "test_dir": str(Path(test_dir).resolve()), "n_images": len(names),
        "thresholds": {"prob": float(model.thresholds.prob), "nms": float(model.thresholds.nms)},
        "normalization": {"percentiles": list(percentiles)},
        "at_iou_0.5": next(r for r in per_threshold if r["iou"] == 0.5),
        "per_threshold": per_threshold, "images": per_image,
    }
    with atomic_dir(report_dir, overwrite=overwrite) as tmp:
        (tmp / "panels").mkdir()
        write_json(tmp / "qc.json", data)
        (tmp / "qc.md").write_text(_markdown(data))
        _plot_metrics(per_threshold, tmp / "metrics.png")
        for name, img, truth, pred in zip(names, images, truths, preds):
            _overlay(img, truth, pred, img_axes, tmp / "panels" / f"{Path(name).stem}.png", name)
        if save_predictions:
            import tifffile

            (tmp / "predictions").mkdir()
            for name, pred in zip(names, preds):
                tifffile.imwrite(tmp / "predictions" / name, pred.astype(np.uint16 if pred.max() < 2**16 else np.uint32))
    return data


def _markdown(data: dict[str, Any]) -> str:
    lines = ["# StarDist quality control", "",
             f"Model `{data['model']}` (thresholds prob {data['thresholds']['prob']:.3f}, nms {data['thresholds']['nms']:.2f}) "
             f"on {data['n_images']} test image(s) from `{data['test_dir']}`. Matching by IoU (stardist.matching); "
             "accuracy = TP/(TP+FP+FN).", "", "![metrics against IoU threshold](metrics.png)", "",
             "| IoU | precision | recall | F1 | accuracy | panoptic quality | TP | FP | FN |", "|---|---|---|---|---|---|---|---|---|"]
    for r in data["per_threshold"]:
        lines.append(f"| {r['iou']:.1f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['accuracy']:.3f} | "
                     f"{r['panoptic_quality']:.3f} | {r['tp']} | {r['fp']} | {r['fn']} |")
    lines += ["", "## Per image (IoU 0.5)", "", "| image | objects (true / predicted) | F1 | accuracy | panel |", "|---|---|---|---|---|"]
    for im in data["images"]:
        lines.append(f"| {im['name']} | {im['objects_true']} / {im['objects_predicted']} | {im['f1']:.3f} | {im['accuracy']:.3f} | "
                     f"![](panels/{Path(im['name']).stem}.png) |")
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


def _overlay(img, truth, pred, axes: str, path: Path, name: str) -> None:
    """Image with true (green) and predicted (magenta) outlines; middle Z slice for stacks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    fig, ax = plt.subplots(figsize=(7, 7 * rgb.shape[0] / max(rgb.shape[1], 1) + 0.4))
    ax.imshow(rgb)
    ax.set_title(f"{name}: ground truth (green), StarDist (magenta)")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
