"""``fijiport predict``: apply a CARE or StarDist model folder to images, tiled for large ones.

CARE writes the restored image (float32 TIFF, same name). StarDist writes the label image, an
ImageJ ROI set (``<name>.zip``, opens in Fiji's ROI Manager) and a CSV of per-object measurements
(area, centroid, mean intensity). Inputs are only read; every output is written to a temporary file
and renamed, and existing outputs are kept unless ``overwrite``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import DataError
from .files import TIFF_SUFFIXES, atomic_file, check_output, read_tiff

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    source: Path
    outputs: list[Path] = field(default_factory=list)
    n_objects: Optional[int] = None
    n_tiles: tuple[int, ...] = ()


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given, folders as their TIFFs (sorted); refuse anything else with its name."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in TIFF_SUFFIXES)
            if not found:
                raise DataError(f"{p} holds no .tif/.tiff files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p} does not exist")
    return out


def predict_images(model_dir: Path, images: list[Path], out_dir: Path, *, n_tiles: Optional[tuple[int, ...]] = None,
                   overwrite: bool = False, progress: Optional[Callable[[int, int, str], None]] = None) -> list[Prediction]:
    """Predict every image with the model folder (CARE or StarDist, detected from config.json)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    files = expand_images(images)
    for f in files:
        if f.parent.resolve() == out_dir.resolve():
            raise DataError(f"output folder {out_dir} holds the input {f.name}; choose another -o (inputs are never overwritten)")
    cfg = model_dir / "config.json"
    if not cfg.is_file():
        raise DataError(f"{model_dir} has no config.json; pass a csbdeep CARE or stardist model folder")
    is_stardist = "n_rays" in json.loads(cfg.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _stardist_runner(model_dir) if is_stardist else _care_runner(model_dir)
    results = []
    for i, f in enumerate(files):
        if progress:
            progress(i, len(files), f.name)
        results.append(run(f, out_dir, n_tiles, overwrite))
    if progress:
        progress(len(files), len(files), "")
    return results


def _tiles(shape: tuple[int, ...], axes: str, n_tiles: Optional[tuple[int, ...]]) -> tuple[int, ...]:
    from .qc.restoration import auto_tiles

    if n_tiles is None:
        return auto_tiles(shape, axes)
    if len(n_tiles) != len(shape):
        raise DataError(f"--tiles {','.join(map(str, n_tiles))} has {len(n_tiles)} values; the image has axes {axes}")
    return tuple(n_tiles)


def _care_runner(model_dir: Path):
    from csbdeep.data import PercentileNormalizer

    from ._tf import quiet_stdout
    from .export.model_folder import load_care_keras, read_care_model_folder

    folder = read_care_model_folder(model_dir)
    model = load_care_keras(folder)
    axes = folder.spatial_axes + ("C" if folder.n_channel_in > 1 else "")

    def run(path: Path, out_dir: Path, n_tiles, overwrite: bool) -> Prediction:
        import tifffile

        target = out_dir / path.name
        check_output(target, overwrite)
        img = read_tiff(path)
        if img.ndim != len(axes):
            raise DataError(f"{path} has {img.ndim} dimensions but the model expects axes {axes}")
        tiles = _tiles(img.shape, axes, n_tiles)
        with quiet_stdout():
            restored = model.predict(img, axes, normalizer=PercentileNormalizer(*folder.percentiles), n_tiles=tiles)
        with atomic_file(target, overwrite=overwrite) as tmp:
            tifffile.imwrite(tmp, restored.astype(np.float32), imagej=False)
        return Prediction(path, [target], None, tiles)

    return run


def _stardist_runner(model_dir: Path):
    from ._tf import quiet_stdout
    from .qc.segmentation import load_stardist
    from .training.stardist import normalize_image

    model, net_axes, percentiles = load_stardist(model_dir)
    axes = net_axes if int(model.config.n_channel_in) > 1 else net_axes.replace("C", "")

    def run(path: Path, out_dir: Path, n_tiles, overwrite: bool) -> Prediction:
        import tifffile
        from stardist import export_imagej_rois

        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        labels_path, rois_path, csv_path = out_dir / path.name, out_dir / f"{stem}.zip", out_dir / f"{stem}.csv"
        for p in (labels_path, rois_path, csv_path):
            check_output(p, overwrite)
        img = read_tiff(path)
        if img.ndim != len(axes):
            raise DataError(f"{path} has {img.ndim} dimensions but the model expects axes {axes}")
        tiles = _tiles(img.shape, axes, n_tiles)
        x = normalize_image(img, axes, *percentiles)
        with quiet_stdout():
            labels, details = model.predict_instances(x, axes=axes, n_tiles=tiles, show_tile_progress=False)
        dtype = np.uint16 if labels.max() < 2**16 else np.uint32
        with atomic_file(labels_path, overwrite=overwrite) as tmp:
            tifffile.imwrite(tmp, labels.astype(dtype))
        outputs = [labels_path]
        if labels.ndim == 2:
            with atomic_file(rois_path, overwrite=overwrite) as tmp, tempfile.TemporaryDirectory(dir=out_dir) as scratch:
                export_imagej_rois(str(Path(scratch) / "rois.zip"), details["coord"])  # stardist's own ROI writer
                os.replace(Path(scratch) / "rois.zip", tmp)
            outputs.append(rois_path)
        with atomic_file(csv_path, overwrite=overwrite) as tmp:
            _measurements(labels, img, axes, tmp)
        outputs.append(csv_path)
        return Prediction(path, outputs, int(len(np.unique(labels)) - 1), tiles)

    return run


def _measurements(labels: np.ndarray, img: np.ndarray, axes: str, path: Path) -> None:
    """Per object: label, area (pixels/voxels), centroid, mean intensity (first channel)."""
    from skimage.measure import regionprops_table

    intensity = np.take(img, 0, axis=axes.index("C")) if "C" in axes else img
    props = regionprops_table(labels.astype(np.int32), intensity_image=intensity.astype(np.float64),
                              properties=("label", "area", "centroid", "intensity_mean"))
    spatial = [a.lower() for a in axes if a in "ZYX"]
    columns = {"label": props["label"], "area": props["area"]}
    for i, a in enumerate(spatial):
        columns[f"centroid_{a}"] = props[f"centroid-{i}"]
    columns["mean_intensity"] = props["intensity_mean"]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in zip(*columns.values()):
            writer.writerow([int(v) if k in ("label", "area") else round(float(v), 4) for k, v in zip(columns, row)])
