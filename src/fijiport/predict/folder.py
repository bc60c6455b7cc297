"""Prediction with a csbdeep CARE or stardist model folder (Keras weights, csbdeep's own tiling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import check_output, read_tiff
from .outputs import label_targets, wrong_dimensions, write_image, write_labels
from .tiles import choose_tiles


def _checker(axes: str, targets):
    """The pre-flight check of a model folder runner: outputs free, the model's dimensions, valid tiles."""

    def check(path: Path, img: np.ndarray, out_dir: Path, overwrite: bool, n_tiles=None) -> None:
        for p in targets(out_dir, path.name):
            check_output(p, overwrite)
        if img.ndim != len(axes):
            raise wrong_dimensions(path, img.shape, axes)
        choose_tiles(img.shape, axes, n_tiles)

    return check


def care_runner(model_dir: Path):
    from csbdeep.data import PercentileNormalizer

    from .._tf import quiet_stdout
    from ..export.model_folder import load_care_keras, read_care_model_folder
    from . import Prediction

    folder = read_care_model_folder(model_dir)
    model = load_care_keras(folder)
    axes = folder.spatial_axes + ("C" if folder.n_channel_in > 1 else "")

    def run(path: Path, out_dir: Path, n_tiles, overwrite: bool):
        target = out_dir / path.name
        img = read_tiff(path)  # checked by predict_images' pre-flight with ``check``
        tiles = choose_tiles(img.shape, axes, n_tiles)
        with quiet_stdout():
            restored = model.predict(img, axes, normalizer=PercentileNormalizer(*folder.percentiles), n_tiles=tiles)
        write_image(target, restored, overwrite)
        return Prediction(path, [target], None, tiles)

    run.check = _checker(axes, lambda out_dir, name: (out_dir / name,))
    return run


def stardist_runner(model_dir: Path):
    from .._tf import quiet_stdout
    from ..qc.segmentation import load_stardist
    from ..training.stardist import normalize_image
    from . import Prediction

    model, net_axes, percentiles = load_stardist(model_dir)
    axes = net_axes if int(model.config.n_channel_in) > 1 else net_axes.replace("C", "")

    def run(path: Path, out_dir: Path, n_tiles, overwrite: bool):
        targets = label_targets(out_dir, path.name)
        img = read_tiff(path)  # checked by predict_images' pre-flight with ``check``
        tiles = choose_tiles(img.shape, axes, n_tiles)
        x = normalize_image(img, axes, *percentiles)
        with quiet_stdout():
            labels, details = model.predict_instances(x, axes=axes, n_tiles=tiles, show_tile_progress=False)
        written = write_labels(labels, img, axes, targets, overwrite, polygons=details.get("coord") if labels.ndim == 2 else None)
        return Prediction(path, written, int(len(np.unique(labels)) - 1), tiles)

    run.check = _checker(axes, label_targets)
    return run
