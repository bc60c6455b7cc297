"""Prediction with a model folder (Keras weights, the kind's own library and tiling)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..artifacts.model_folder import ModelFolder
from ..files import check_output, read_tiff
from ..tiling import choose_tiles
from .outputs import Prediction, label_targets, write_image, write_labels, wrong_dimensions


def folder_runner(model_dir: Path, *, percentiles: Optional[tuple[float, float]] = None, percentiles_source: str = "given"):
    """A runner (``run(path, out_dir, n_tiles, overwrite)`` with a pre-flight ``run.check``) for a model folder of
    any kind: restored images for image kinds, label images + ROI sets + measurements for label kinds."""
    folder = ModelFolder.open(model_dir, percentiles=percentiles, percentiles_source=percentiles_source)
    model = folder.load_keras()
    kind, axes = folder.kind, folder.image_axes

    def targets(out_dir: Path, name: str) -> tuple[Path, ...]:
        return label_targets(out_dir, name) if kind.output == "labels" else (out_dir / name,)

    def run(path: Path, out_dir: Path, n_tiles, overwrite: bool):
        img = read_tiff(path)  # checked by predict_images' pre-flight with ``check``
        tiles = choose_tiles(img.shape, axes, n_tiles)
        result = kind.predict(folder, model, img, tiles)
        if result.labels is not None:
            written = write_labels(result.labels, img, axes, label_targets(out_dir, path.name), overwrite, polygons=result.polygons)
            return Prediction(path, written, int(len(np.unique(result.labels)) - 1), tiles)
        assert result.image is not None
        target = out_dir / path.name
        write_image(target, result.image, overwrite)
        return Prediction(path, [target], None, tiles)

    def check(path: Path, img: np.ndarray, out_dir: Path, overwrite: bool, n_tiles=None) -> None:
        """The pre-flight: outputs free, the model's dimensions, valid tiles."""
        for p in targets(out_dir, path.name):
            check_output(p, overwrite)
        if img.ndim != len(axes):
            raise wrong_dimensions(path, img.shape, axes)
        choose_tiles(img.shape, axes, n_tiles)

    run.check = check  # type: ignore[attr-defined]
    return run
