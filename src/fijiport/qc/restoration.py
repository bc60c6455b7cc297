"""``fijiport qc`` for CARE: predict held-out images and compare input and prediction with GT."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..artifacts.data_folder import SOURCE_DIR, TARGET_DIR, load_manifest, recorded_manifest
from ..artifacts.model_folder import ModelFolder
from ..artifacts.qc_report import METRIC_LABELS, METRICS, QC_MD, RestorationQc, write_qc_report
from ..axes import frames_layout, stored_axes, transpose_axes
from ..calibration import write_frames
from ..data.pairing import pair_images
from ..errors import DataError
from ..files import TiffFrames, atomic_dir, check_output, declared_axes, read_tiff, tiff_shape
from ..tiling import auto_tiles
from .metrics import RestorationScores, normalize_gt, restoration_scores, rse_map, scale_to, ssim_map
from .provenance import qc_provenance

log = logging.getLogger(__name__)


@dataclass
class ImageQc:
    name: str
    shape: list[int]
    input: Optional[RestorationScores]
    """The input's scores against GT (the baseline); None when GT's channels have no counterpart in the input."""
    prediction: RestorationScores
    n_tiles: list[int]


@dataclass
class QcResult:
    report_dir: Path
    images: list[ImageQc] = field(default_factory=list)
    report: Optional[RestorationQc] = None
    """What was written as ``qc.json`` (with the provenance and warnings)."""

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean per metric of ``prediction``, and of ``input`` where every image has a baseline."""
        kinds = ("input", "prediction") if all(im.input is not None for im in self.images) else ("prediction",)
        return {m: {kind: float(np.mean([getattr(getattr(im, kind), m) for im in self.images])) for kind in kinds} for m in METRICS}


def find_test_pairs(test_dir: Path) -> list[tuple[str, Path, Path]]:
    """(name, low, GT) triples from ``test_dir/{low,GT}``, or ``test_dir/test/{low,GT}`` for a data folder."""

    test_dir = Path(test_dir)
    for base in (test_dir, test_dir / "test"):
        low, gt = base / SOURCE_DIR, base / TARGET_DIR
        if low.is_dir() and gt.is_dir():
            pairing = pair_images(low, gt, source_label="low", target_label="GT")
            if pairing.unpaired:
                log.warning("ignoring unpaired files: %s", ", ".join(pairing.only_source + pairing.only_target))
            return [(p.name, p.source, p.target) for p in pairing.pairs]
    raise DataError(f"{test_dir} has no low/ and GT/ folders; pass the test folder written by `fijiport prepare` (DATA_DIR/test)")


def qc_care(
    model_dir: Path | ModelFolder,
    test_dir: Path,
    report_dir: Path,
    *,
    percentiles: Optional[tuple[float, float]] = None,
    n_tiles: Optional[tuple[int, ...]] = None,
    save_predictions: bool = False,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> QcResult:
    """Predict every test image with the model and write ``qc.json``, ``qc.md`` and one PNG panel each (input,
    prediction, GT, signed error; SSIM and RSE maps of input and prediction).

    Parameters
    ----------
    model_dir
        A CARE model folder (or an opened :class:`~fijiport.artifacts.model_folder.ModelFolder`).
    test_dir
        ``low/`` and ``GT/`` folders, or a data folder (its ``test/`` is used).
    report_dir
        The report folder to write, whole or not at all.
    percentiles
        Input normalisation for folders that do not record theirs.
    n_tiles
        Tiles per image axis (default: tiles of about a million pixels).
    save_predictions
        Also write the predictions (``predictions/``).
    overwrite
        Replace an existing ``report_dir``.
    progress
        Called as ``progress(done, total, name)`` before each image (e.g. :class:`fijiport.notebook.CountBar`).

    Returns
    -------
    QcResult
        Each image's scores; ``summary()`` gives the means, ``report`` what ``qc.json`` holds.
    """
    report_dir = Path(report_dir)
    check_output(report_dir, overwrite)
    folder = model_dir if isinstance(model_dir, ModelFolder) else ModelFolder.open(model_dir, percentiles=percentiles)
    if folder.kind.qc_task != "restoration":
        raise DataError(
            f"{model_dir} is a {folder.kind.title} model; its QC compares labels, not images: "
            f"`fijiport qc {model_dir} DATA/test -o REPORT` runs it"
        )
    pairs = find_test_pairs(test_dir)
    if not pairs:
        raise DataError(f"{test_dir} holds no paired test images")
    model = folder.load_keras()
    img_axes = folder.image_axes
    result = QcResult(report_dir)
    with atomic_dir(report_dir, overwrite=overwrite) as tmp:
        (tmp / "panels").mkdir()
        if save_predictions:
            (tmp / "predictions").mkdir()
        manifest = recorded_manifest(Path(test_dir), load_manifest)
        data_axes = manifest.axes if manifest else None
        baseline = _baseline_channels(folder, manifest)
        for i, (name, low_path, gt_path) in enumerate(pairs):
            if progress:
                progress(i, len(pairs), name)
            layout = frames_layout(data_axes or declared_axes(low_path), len(tiff_shape(low_path)[0]), img_axes)
            if layout is not None:  # a time-lapse: frame by frame, scores averaged over the frames
                gt_layout = (
                    (manifest.target_axes.index("T"), manifest.target_axes.replace("T", ""))
                    if manifest
                    else frames_layout(declared_axes(gt_path), len(tiff_shape(gt_path)[0]), img_axes) or layout
                )
                result.images.append(
                    _qc_frames(folder, model, name, (low_path, gt_path), (layout, gt_layout), baseline, n_tiles, tmp, save_predictions)
                )
                continue
            low, gt = read_test_pair(folder, low_path, gt_path)
            tiles = tuple(n_tiles) if n_tiles else auto_tiles(low.shape, img_axes)
            pred = folder.kind.predict(folder, model, low, tiles).image
            assert pred is not None
            base = baseline_image(low, baseline, img_axes)
            scores_in = None if base is None else channel_scores(gt, base, img_axes)
            scores_pred = channel_scores(gt, pred, img_axes)
            result.images.append(ImageQc(name, list(low.shape), scores_in, scores_pred, list(tiles)))
            _panel(
                low if base is None else base, pred, gt, img_axes, tmp / "panels" / f"{Path(name).stem}.png", name, scores_in, scores_pred
            )
            if save_predictions:
                import tifffile

                tifffile.imwrite(tmp / "predictions" / name, pred.astype(np.float32))
        if progress:
            progress(len(pairs), len(pairs), "")
        result.report = report = _qc_report(result, folder, Path(test_dir), [name for name, _, _ in pairs], baseline)
        write_qc_report(tmp, report)
        (tmp / QC_MD).write_text(_qc_markdown(report))
    return result


def _qc_frames(
    folder: ModelFolder, model, name: str, paths: tuple[Path, Path], layouts, baseline: Optional[list[int]], n_tiles, tmp: Path, save: bool
) -> ImageQc:
    """QC of a time-lapse pair, one frame in memory at a time: each frame predicted as ``predict`` does (normalised
    on its own), the scores averaged over the frames, the first frame in the panel. ``layouts`` are the input's and
    GT's (T axis, frame axes), which differ where their channels do."""
    img_axes = folder.image_axes
    low_path, gt_path = paths
    (t, frame_axes), (gt_t, gt_frame_axes) = layouts
    lows, gts = TiffFrames(low_path, t), TiffFrames(gt_path, gt_t)
    if len(lows) != len(gts):
        raise DataError(f"{low_path} has {len(lows)} frames but {gt_path} has {len(gts)}")
    src = frame_axes or stored_axes(None, lows.shape, img_axes, folder.n_channel_in)
    gt_src = gt_frame_axes or (
        img_axes.replace("C", "") if len(gts.shape) == len(img_axes) - 1 else stored_axes(None, gts.shape, img_axes, folder.n_channel_out)
    )
    if len(src) != len(img_axes) or sorted(src) != sorted(img_axes):
        raise DataError(f"{low_path}: its frames are {src} ({list(lows.shape)}) but the model restores {img_axes} images")
    tiles = tuple(n_tiles) if n_tiles else auto_tiles(tuple(lows.shape[src.index(a)] for a in img_axes), img_axes)
    scores: list[tuple[Optional[RestorationScores], RestorationScores]] = []

    def predictions():
        for k in range(len(lows)):
            low, gt = transpose_axes(lows[k], src, img_axes), in_model_axes(gts[k], gt_src, img_axes, gt_path)
            check_gt_channels(gt, img_axes, folder.n_channel_out, gt_path)
            pred = folder.kind.predict(folder, model, low, tiles).image
            assert pred is not None
            base = baseline_image(low, baseline, img_axes)
            scores.append((None if base is None else channel_scores(gt, base, img_axes), channel_scores(gt, pred, img_axes)))
            if k == 0:
                shown = low if base is None else base
                _panel(shown, pred, gt, img_axes, tmp / "panels" / f"{Path(name).stem}.png", f"{name}, frame 0", *scores[0])
            yield transpose_axes(pred.astype(np.float32), img_axes, src)

    if save:
        frame_shape = tuple(folder.n_channel_out if a == "C" else n for a, n in zip(src, lows.shape))  # the model's channels out
        write_frames(tmp / "predictions" / name, predictions(), (len(lows), *frame_shape), "T" + src, None)
    else:
        for _ in predictions():
            pass

    def mean(which: int) -> Optional[RestorationScores]:
        if any(s[which] is None for s in scores):
            return None
        return RestorationScores(*(float(np.mean([getattr(s[which], m) for s in scores])) for m in METRICS))

    prediction = mean(1)
    assert prediction is not None
    return ImageQc(name, list(lows.file_shape), mean(0), prediction, list(tiles))


def _baseline_channels(folder: ModelFolder, manifest) -> Optional[list[int]]:
    """For each GT channel, the input channel scored against it as the baseline (None: no baseline): what the data
    folder records, else each channel itself when the model has as many channels out as in."""
    if manifest is not None:
        return manifest.baseline_channels()
    return list(range(folder.n_channel_in)) if folder.n_channel_in == folder.n_channel_out else None


def baseline_image(low: np.ndarray, channels: Optional[list[int]], axes: str) -> Optional[np.ndarray]:
    """The input's channels that correspond to GT's (in GT's order), in ``axes``; None without a baseline."""
    if channels is None:
        return None
    if "C" not in axes or channels == list(range(low.shape[axes.index("C")])):
        return low
    return np.take(low, channels, axis=axes.index("C"))


def in_model_axes(x: np.ndarray, src: str, img_axes: str, path: Path) -> np.ndarray:
    """``x`` (axes ``src``) in the model's image axes; a GT without C gets one of one channel."""
    if "C" in img_axes and "C" not in src:
        x, src = np.expand_dims(x, -1), src + "C"
    if sorted(src) != sorted(img_axes) or x.ndim != len(src):
        raise DataError(f"{path}: its axes are {src} ({list(x.shape)}) but the model restores {img_axes} images")
    return transpose_axes(x, src, img_axes)


def check_gt_channels(gt: np.ndarray, img_axes: str, n_out: int, path: Path) -> None:
    """Refuse a GT (in the model's axes) of another number of channels than the model restores."""
    if "C" in img_axes and gt.shape[img_axes.index("C")] != n_out:
        raise DataError(f"{path} has {gt.shape[img_axes.index('C')]} channels but the model restores {n_out}")


def read_test_pair(folder: ModelFolder, low_path: Path, gt_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A test input and its ground truth in the model's image axes (ImageJ hyperstacks hold channels first, CYX:
    the network wants them last), checked against each other and the model: GT has the model's output channels,
    which may be other than the input's (a single GT channel may be saved without C)."""
    img_axes = folder.image_axes
    low, gt = read_tiff(low_path), read_tiff(gt_path)
    if low.ndim != len(img_axes):
        raise DataError(f"{low_path} has {low.ndim} dimensions but the model expects axes {img_axes}")
    low = transpose_axes(low, stored_axes(declared_axes(low_path), low.shape, img_axes, folder.n_channel_in), img_axes)
    if gt.ndim == len(img_axes):
        gt = transpose_axes(gt, stored_axes(declared_axes(gt_path), gt.shape, img_axes, folder.n_channel_out), img_axes)
    elif gt.ndim == len(img_axes) - 1 and "C" in img_axes and folder.n_channel_out == 1:  # one GT channel, saved without C
        gt = np.expand_dims(gt, img_axes.index("C"))
    spatial = [i for i, a in enumerate(img_axes) if a != "C"]
    if gt.ndim != low.ndim or [low.shape[i] for i in spatial] != [gt.shape[i] for i in spatial]:
        raise DataError(f"{low_path} is {low.shape} but {gt_path} is {gt.shape}")
    check_gt_channels(gt, img_axes, folder.n_channel_out, gt_path)
    return low, gt


def channel_scores(gt: np.ndarray, x: np.ndarray, axes: str) -> RestorationScores:
    if "C" not in axes:
        return restoration_scores(gt, x)
    c = axes.index("C")
    per = [restoration_scores(np.take(gt, i, axis=c), np.take(x, i, axis=c)) for i in range(gt.shape[c])]
    return RestorationScores(*(float(np.mean([getattr(s, m) for s in per])) for m in METRICS))


NO_BASELINE = (
    "no input baseline: the ground truth's channels are not the input's (or the data folder does not say which input "
    "channel each is), so the input cannot be scored against it; the prediction's scores stand alone"
)


def _qc_report(result: QcResult, folder: ModelFolder, test_dir: Path, names: list[str], baseline: Optional[list[int]]) -> RestorationQc:
    summary = result.summary()
    warnings = []
    if "input" in summary["psnr"] and summary["psnr"]["prediction"] < summary["psnr"]["input"]:
        worse = sum(im.input is not None and im.prediction.psnr < im.input.psnr for im in result.images)
        warnings.append(
            f"the model makes the images worse: mean PSNR {summary['psnr']['input']:.2f} → {summary['psnr']['prediction']:.2f} dB "
            f"({worse} of {len(result.images)} image(s) further from the ground truth than their input); train longer, check "
            "the pairs, or do not use this model"
        )
    for w in warnings:
        log.warning("%s", w)
    return RestorationQc.model_validate(
        {
            **qc_provenance(folder, test_dir, names),
            "warnings": warnings,
            "normalization": {
                "percentiles": list(folder.percentiles),
                "gt_percentiles": [0.1, 99.9],
                "scaling": "affine, least squares to normalised GT (CARE paper)",
            },
            "baseline": None if baseline is None else {"input_channels": baseline},
            "no_baseline": None if "input" in summary["psnr"] else NO_BASELINE,
            "n_images": len(result.images),
            "summary": summary,
            "images": [
                {
                    "name": im.name,
                    "shape": im.shape,
                    "n_tiles": im.n_tiles,
                    "input": None if im.input is None else im.input.to_dict(),
                    "prediction": im.prediction.to_dict(),
                }
                for im in result.images
            ],
        }
    )


def _qc_markdown(report: RestorationQc) -> str:
    data: dict[str, Any] = report.model_dump(mode="json")
    s = data["summary"]
    lines = [
        "# CARE quality control",
        "",
        f"Model `{data['model']}` ({data['weights']}, sha256 {str(data.get('weights_sha256'))[:12]}…) on {data['n_images']} "
        f"{report.images_word} image(s) from `{data['test_dir']}`.",
        "GT normalised with its 0.1/99.9 percentiles; input and prediction scaled affinely to it (least squares).",
        "Higher PSNR/SSIM/Pearson r and lower NRMSE are better; the gain is prediction minus input.",
    ]
    if report.no_baseline:
        lines += ["", f"**{report.no_baseline[0].upper() + report.no_baseline[1:]}.**"]
    lines += ["", "| metric | input vs GT | prediction vs GT | gain |", "|---|---|---|---|"]
    for m in METRICS:
        if "input" in s[m]:
            lines.append(
                f"| {METRIC_LABELS[m]} | {s[m]['input']:.4f} | {s[m]['prediction']:.4f} | {s[m]['prediction'] - s[m]['input']:+.4f} |"
            )
        else:
            lines.append(f"| {METRIC_LABELS[m]} | — | {s[m]['prediction']:.4f} | — |")
    for w in report.warnings:
        lines += ["", f"**Warning**: {w}."]
    if report.split == "train":
        lines += ["", "**These are the model's training images**: QC on them flatters the model; measure it on held-out data."]
    lines += [
        "",
        "## Per image",
        "",
        "Each panel: input, prediction, ground truth and the signed error (prediction − GT); below, the SSIM maps and "
        "the root-squared-error (RSE) maps of input and prediction against the GT (ZeroCostDL4Mic's maps: bright SSIM "
        "and dark RSE are good).",
        "",
        "| image | PSNR in → pred | SSIM in → pred | NRMSE in → pred | Pearson r in → pred | panel |",
        "|---|---|---|---|---|---|",
    ]
    for im in data["images"]:
        cells = [
            _in_to_pred(im["input"] or {}, im["prediction"], m, f)
            for m, f in (("psnr", ".2f"), ("ssim", ".3f"), ("nrmse", ".4f"), ("pearson", ".3f"))
        ]
        lines.append(f"| {im['name']} | " + " | ".join(cells) + f" | ![](panels/{Path(im['name']).stem}.png) |")
    return "\n".join(lines) + "\n"


def _in_to_pred(before: dict, after: dict, metric: str, fmt: str) -> str:
    return f"{format(before[metric], fmt) if metric in before else '—'} → {format(after[metric], fmt)}"


def display_slice(x: np.ndarray, axes: str) -> np.ndarray:
    """The 2D image shown in panels: first channel, middle Z slice."""
    x = np.asarray(x, dtype=np.float64)
    if "C" in axes:
        x = np.take(x, 0, axis=axes.index("C"))
    if x.ndim == 3:
        x = x[x.shape[0] // 2]
    return x


def _panel(low, pred, gt, axes, path: Path, name: str, s_in: Optional[RestorationScores], s_pred: RestorationScores) -> None:
    """Top row: input, prediction, GT (one intensity scale) and the signed error prediction − GT. Bottom row, as
    ZeroCostDL4Mic shows them: the SSIM maps (0-1, bright is good) and the RSE maps (one scale, dark is good) of input
    and prediction against the GT, each titled with its image's score. Without a baseline (``s_in`` None: GT's
    channels are not the input's) the input is shown, its maps are left empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gt2 = normalize_gt(display_slice(gt, axes))
    low2 = scale_to(display_slice(low, axes), gt2)
    pred2 = scale_to(display_slice(pred, axes), gt2)
    err = pred2 - gt2
    fig, axs = plt.subplots(2, 4, figsize=(16, 8.4))
    vmin, vmax = np.percentile(gt2, 1), np.percentile(gt2, 99.8)
    in_title = "input (no baseline)" if s_in is None else f"input  PSNR {s_in.psnr:.1f}"
    for ax, img, title in zip(axs[0], (low2, pred2, gt2), (in_title, f"prediction  PSNR {s_pred.psnr:.1f}", "ground truth")):
        ax.imshow(img, cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(title)
    limit = max(float(np.percentile(np.abs(err), 99.5)), 1e-6)
    fig.colorbar(axs[0][3].imshow(err, cmap="RdBu_r", vmin=-limit, vmax=limit), ax=axs[0][3], fraction=0.046)
    axs[0][3].set_title("error: prediction − GT")
    empty = np.full(gt2.shape, np.nan)
    try:
        maps = [empty if s_in is None else ssim_map(gt2, low2), ssim_map(gt2, pred2)]
    except ValueError:  # a slice too thin for SSIM's window: the maps stay empty, the scores say it all
        maps = [empty] * 2
    ssim_in = "SSIM map input  " + ("(no baseline)" if s_in is None else f"{s_in.ssim:.3f}")
    for ax, m, title in zip(axs[1][:2], maps, (ssim_in, f"SSIM map prediction  {s_pred.ssim:.3f}")):
        fig.colorbar(ax.imshow(m, cmap="inferno", vmin=0, vmax=1), ax=ax, fraction=0.046)
        ax.set_title(title)
    rse_in, rse_pred = (empty if s_in is None else rse_map(gt2, low2)), rse_map(gt2, pred2)
    rse_max = max(float(np.nanpercentile(rse_in, 99.5)) if s_in is not None else 0.0, float(np.percentile(rse_pred, 99.5)), 1e-6)
    rse_in_title = "RSE map input  " + ("(no baseline)" if s_in is None else f"NRMSE {s_in.nrmse:.3f}")
    for ax, m, title in zip(axs[1][2:], (rse_in, rse_pred), (rse_in_title, f"RSE map prediction  NRMSE {s_pred.nrmse:.3f}")):
        fig.colorbar(ax.imshow(m, cmap="viridis", vmin=0, vmax=rse_max), ax=ax, fraction=0.046)
        ax.set_title(title)
    for ax in axs.ravel():
        ax.axis("off")
    z_note = " (middle Z slice)" if "Z" in axes else ""
    if s_in is None:
        fig.suptitle(
            f"{name}{z_note}: SSIM {s_pred.ssim:.3f}, NRMSE {s_pred.nrmse:.4f}, Pearson r {s_pred.pearson:.3f} (no input baseline)"
        )
    else:
        fig.suptitle(
            f"{name}{z_note}: SSIM {s_in.ssim:.3f} → {s_pred.ssim:.3f}, NRMSE {s_in.nrmse:.4f} → {s_pred.nrmse:.4f}, "
            f"Pearson r {s_in.pearson:.3f} → {s_pred.pearson:.3f}"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
