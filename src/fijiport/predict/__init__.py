"""``fijiport predict``: apply a CARE or StarDist model to images, tiled for large ones.

The model is a csbdeep/stardist model folder (Keras weights, csbdeep's tiling) or a bioimage.io
package zip / rdf.yaml (its own pre- and postprocessing and ONNX weights through bioimageio.core,
as the Model Zoo runs it). CARE writes the restored image (float32 TIFF, same name). StarDist (and
any package whose output is a label image) writes the label image, an ImageJ ROI set
(``<name>.zip``, opens in Fiji's ROI Manager) and a CSV of per-object measurements (area,
centroid, mean intensity). Inputs are only read; every output is written to a temporary file and
renamed, and existing outputs are kept unless ``overwrite``.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ..artifacts.model_folder import has_network_config
from ..errors import DataError
from ..files import check_pixels, list_tiffs, read_tiff
from .folder import folder_runner
from .outputs import Prediction
from .package import package_runner

log = logging.getLogger(__name__)

WEIGHT_CHOICES = ("auto", "keras", "onnx")
"""``auto``: Keras for model folders, ONNX for packages."""


def expand_images(paths: list[Path]) -> list[Path]:
    """Files as given, folders as their TIFFs (sorted); refuse anything else with its name."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = list_tiffs(p)  # sorted; hidden files (macOS's ._name.tif) skipped with a warning
            if not found:
                raise DataError(f"{p} holds no .tif/.tiff files; pass TIFF images or a folder of them (Fiji: File > Save As > Tiff...)")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p} does not exist")
    return out


def is_package(model: Path) -> bool:
    """A bioimage.io package: a zip, an rdf.yaml / bioimageio.yaml, or a folder holding one."""
    model = Path(model)
    if model.is_file():
        return zipfile.is_zipfile(model) or model.name.endswith(("rdf.yaml", "bioimageio.yaml"))
    return (
        model.is_dir()
        and not (model / "config.json").is_file()
        and ((model / "rdf.yaml").is_file() or (model / "bioimageio.yaml").is_file())
    )


def predict_images(
    model: Path,
    images: list[Path],
    out_dir: Path,
    *,
    n_tiles: Optional[tuple[int, ...]] = None,
    weights: str = "auto",
    overwrite: bool = False,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> list[Prediction]:
    """Predict every image with the model (folder or bioimage.io package; CARE or StarDist detected)."""
    model, out_dir = Path(model), Path(out_dir)
    if weights not in WEIGHT_CHOICES:
        raise DataError(f"--weights {weights!r}: choose one of {', '.join(WEIGHT_CHOICES)}")
    if not model.exists():
        raise DataError(f"model {model} does not exist; pass a csbdeep/stardist model folder or a bioimage.io zip")
    files = expand_images(images)
    for f in files:
        if f.parent.resolve() == out_dir.resolve():
            raise DataError(f"output folder {out_dir} holds the input {f.name}; choose another -o (inputs are never overwritten)")
    if is_package(model):
        run = package_runner(model, weights)
    else:
        run = _folder_runner(model, weights)
    _preflight(files, run, out_dir, overwrite, n_tiles)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, f in enumerate(files):
        if progress:
            progress(i, len(files), f.name)
        results.append(run(f, out_dir, n_tiles, overwrite))
    if progress:
        progress(len(files), len(files), "")
    return results


def _preflight(files: list[Path], run, out_dir: Path, overwrite: bool, n_tiles) -> None:
    """Read every image and check it (readable, finite, the model's dimensions, tiles, outputs free) before
    predicting any: a bad file is refused up front, not after hours of work with half the outputs written.
    The runners rely on it and do not check again."""

    seen: dict[str, Path] = {}
    for f in files:
        if f.name in seen:
            raise DataError(
                f"two inputs are named {f.name} ({seen[f.name]} and {f}); outputs are named after their input, "
                "so predict them into different -o folders"
            )
        seen[f.name] = f
    for f in files:
        img = read_tiff(f)
        check_pixels(f, img)
        run.check(f, img, out_dir, overwrite, n_tiles)


def _folder_runner(model_dir: Path, weights: str):

    if weights == "onnx":
        raise DataError(
            f"{model_dir} is a model folder (Keras weights); export it first (`fijiport export {model_dir} -o model.zip`) "
            "to predict with ONNX weights"
        )
    if not model_dir.is_dir() or not has_network_config(model_dir):
        raise DataError(
            f"{model_dir} is neither a model folder with config.json nor a bioimage.io zip; pass a csbdeep CARE "
            "or stardist model folder, or an exported .zip"
        )
    return folder_runner(model_dir)
