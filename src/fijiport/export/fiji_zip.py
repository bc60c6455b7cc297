"""The zip CSBDeep-Fiji, StarDist-Fiji and KNIME load, and a ready Fiji macro next to it.

Layout as csbdeep's ``export_TF`` writes it: ``saved_model.pb`` and ``variables/`` at the root
(tag ``serve``, signature ``serving_default``) plus ``meta.json`` (type, version, probabilistic,
axes, axes_div_by, tile_overlap); the graph is the frozen, TF-1.x-compatible one.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from .. import __version__
from .._resources import packaging_text
from ..files import atomic_file
from .tf_graph import zip_folder

MACRO_TEMPLATE = "csbdeep_predict_folder.ijm"


def csbdeep_meta(config: dict, axes: str, div_by: int, tile_overlap: int) -> dict:
    import csbdeep

    return {
        "type": "CARE",
        "version": csbdeep.__version__,
        "probabilistic": bool(config.get("probabilistic", False)),
        "axes": axes,
        "axes_div_by": [div_by if a in "XYZT" else 1 for a in axes],
        "tile_overlap": [tile_overlap if a in "XYZT" else 0 for a in axes],
        "exported_by": f"fijiport {__version__} (frozen graph for TensorFlow 1.13-2.10)",
    }


def write_fiji_zip(saved_model_dir: Path, meta: dict, zip_path: Path, *, overwrite: bool = False) -> Path:
    with atomic_file(zip_path, overwrite=overwrite) as tmp:
        zip_folder(saved_model_dir, tmp, extra={"meta.json": json.dumps(meta, indent=2).encode()})
    return Path(zip_path)


def write_care_macro(zip_path: Path, macro_path: Path, *, name: str, axes: str, div_by: int, overlap: int,
                     percentiles: tuple[float, float], n_tiles: int = 8, overwrite: bool = False) -> Path:
    """A CSBDeep-Fiji folder macro with this model's path, tiling and normalisation filled in."""
    block = max(div_by, 4)
    overlap = -(-overlap // block) * block
    text = Template(packaging_text(MACRO_TEMPLATE)).substitute(
        name=name.replace("\n", " "), fijiport_version=__version__, model_file=Path(zip_path).name,
        model_path=str(Path(zip_path).resolve()).replace("\\", "/"), axes=axes, n_tiles=n_tiles,
        block_multiple=block, overlap=overlap, p_low=f"{percentiles[0]:g}", p_high=f"{percentiles[1]:g}",
    )
    with atomic_file(macro_path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(macro_path)


def write_stardist_macro(zip_path: Path, macro_path: Path, *, name: str, thresholds: dict,
                         percentiles: tuple[float, float], overwrite: bool = False) -> Path:
    """A StarDist-Fiji folder macro with this model's path, thresholds and normalisation filled in."""
    text = Template(packaging_text("stardist_segment_folder.ijm")).substitute(
        name=name.replace("\n", " "), fijiport_version=__version__, model_file=Path(zip_path).name,
        model_path=str(Path(zip_path).resolve()).replace("\\", "/"), prob_thresh=f"{thresholds['prob']:.4f}",
        nms_thresh=f"{thresholds['nms']:.2f}", p_low=f"{percentiles[0]:g}", p_high=f"{percentiles[1]:g}",
    )
    with atomic_file(macro_path, overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(macro_path)
