"""Prediction with a model folder (Keras weights, the kind's own library and tiling)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ..artifacts.model_folder import ModelFolder
from ..axes import stored_axes, transpose_axes
from ..files import check_output, declared_axes, read_tiff
from ..tiling import check_tile_sizes, choose_tiles
from .outputs import LabelFrame, Prediction, label_targets, plausibility, write_image, write_labels, wrong_dimensions

log = logging.getLogger(__name__)


def folder_runner(
    model_dir: Path, *, percentiles: Optional[tuple[float, float]] = None, percentiles_source: str = "given", intensity: str = "input"
):
    """A runner (``run(path, out_dir, n_tiles, overwrite)`` with a pre-flight ``run.check`` and the outputs it writes,
    ``run.targets``) for a model folder of any kind: restored images for image kinds (on the input's intensity scale,
    or with ``intensity="normalised"`` as the network gives them), label images + ROI sets + measurements for label kinds."""
    folder = ModelFolder.open(model_dir, percentiles=percentiles, percentiles_source=percentiles_source)
    model = folder.load_keras()
    kind, axes = folder.kind, folder.image_axes
    context = kind.geometry(folder, model).axes_overlap
    if intensity == "input" and kind.output == "image" and folder.n_channel_in != folder.n_channel_out:
        log.warning(
            "%s takes %d channels and gives %d: no input channel's percentiles map its output back (csbdeep skips that step "
            "too), so restored images hold the network's normalised output",
            model_dir, folder.n_channel_in, folder.n_channel_out,
        )  # fmt: skip
        intensity = "normalised"

    def targets(out_dir: Path, name: str) -> tuple[Path, ...]:
        return label_targets(out_dir, name) if kind.output == "labels" else (out_dir / name,)

    def predict_frame(img: np.ndarray, declared: Optional[str], n_tiles) -> tuple[np.ndarray, tuple[int, ...]]:
        """An image (or one frame of a time-lapse) restored, in its own layout ``declared`` (the file's axes as its
        metadata says them, tifffile's letters; ImageJ writes channels first), and the tiles per model axis."""
        src = stored_axes(declared, img.shape, axes, folder.n_channel_in)
        tiles = choose_tiles(img.shape, src, n_tiles)
        x, tiles = transpose_axes(img, src, axes), tuple(tiles[src.index(a)] for a in axes)
        result = kind.predict(folder, model, x, tiles, normalised=intensity == "normalised")
        assert result.image is not None
        if result.image.ndim != len(axes):  # a probabilistic network's extra axis: as it comes
            return result.image, tiles
        return transpose_axes(result.image, axes, src), tiles

    def predict_labels_frame(img: np.ndarray, declared: Optional[str], n_tiles) -> tuple[LabelFrame, tuple[int, ...]]:
        """An image (or one frame of a time-lapse, in its own layout ``declared``) segmented, and the tiles per
        model axis."""
        src = stored_axes(declared, img.shape, axes, folder.n_channel_in)  # ImageJ writes channels first
        tiles = choose_tiles(img.shape, src, n_tiles)
        x, tiles = transpose_axes(img, src, axes), tuple(tiles[src.index(a)] for a in axes)
        result = kind.predict(folder, model, x, tiles, normalised=intensity == "normalised")
        assert result.labels is not None
        return LabelFrame(result.labels, result.polygons, x, axes), tiles

    record = folder.training_record
    object_stats = record.object_stats if record else None

    def run(path: Path, out_dir: Path, n_tiles, overwrite: bool):
        img = read_tiff(path)  # checked by predict_images' pre-flight with ``check``
        if kind.output == "labels":
            frame, tiles = predict_labels_frame(img, declared_axes(path), n_tiles)
            written = write_labels(
                frame.labels, frame.image, axes, label_targets(out_dir, path.name), overwrite, polygons=frame.polygons, source=path
            )
            warnings = plausibility(path, frame.labels, object_stats)
            return Prediction(path, written, int(len(np.unique(frame.labels)) - 1), tiles, warnings)
        target = out_dir / path.name
        declared = declared_axes(path)
        restored, tiles = predict_frame(img, declared, n_tiles)
        src = stored_axes(declared, img.shape, axes, folder.n_channel_in)
        write_image(target, restored, overwrite, axes=src if restored.ndim == len(src) else None, source=path)
        return Prediction(path, [target], None, tiles, intensity=intensity)

    def check(path: Path, img: np.ndarray, out_dir: Path, overwrite: bool, n_tiles=None, declared: Optional[str] = None) -> None:
        """The pre-flight: outputs free, the model's dimensions, valid tiles of a useful size. ``declared``: the
        image's axes when it is a frame of a time-lapse (else the file's metadata says them)."""
        for p in targets(out_dir, path.name):
            check_output(p, overwrite)
        if img.ndim != len(axes):
            raise wrong_dimensions(path, img.shape, axes)
        src = stored_axes(declared or declared_axes(path), img.shape, axes, folder.n_channel_in)
        check_tile_sizes(img.shape, src, choose_tiles(img.shape, src, n_tiles), context)

    run.check = check  # type: ignore[attr-defined]
    run.predict_frame = predict_frame  # type: ignore[attr-defined]
    run.predict_labels_frame = predict_labels_frame  # type: ignore[attr-defined]
    run.object_stats = object_stats  # type: ignore[attr-defined]
    run.image_axes, run.output, run.intensity = axes, kind.output, intensity  # type: ignore[attr-defined]
    run.n_channel_in = folder.n_channel_in  # type: ignore[attr-defined]
    run.training_pixel_size = folder.training_record.pixel_size_um if folder.training_record else None  # type: ignore[attr-defined]
    run.targets = lambda path, out_dir: targets(out_dir, path.name)  # type: ignore[attr-defined]
    return run
