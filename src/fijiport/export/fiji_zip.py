"""The zip CSBDeep-Fiji, StarDist-Fiji and KNIME load, and a ready Fiji macro next to it.

Layout as csbdeep's ``export_TF`` writes it: ``saved_model.pb`` and ``variables/`` at the root
(tag ``serve``, signature ``serving_default``) plus ``meta.json`` (type, version, probabilistic,
axes, axes_div_by, tile_overlap); the graph is the frozen, TF-1.x-compatible one.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..files import atomic_file
from .tf_graph import zip_folder


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
    """``fiji_macros/care_predict_folder.ijm`` with this model's path, tiling and normalisation filled in."""
    from ..macros import write_filled_macro

    block = max(div_by, 4)
    overlap = -(-overlap // block) * block
    return write_filled_macro("care_predict_folder.ijm", macro_path, {
        "model": Path(zip_path).resolve(), "p_low": f"{percentiles[0]:g}", "p_high": f"{percentiles[1]:g}",
        "ntiles": n_tiles, "block_multiple": block, "overlap": overlap,
    }, f"model {name!r} ({Path(zip_path).name}, axes {axes}): its training percentiles, block multiple 2^depth "
       f"= {block}, overlap {overlap} px (receptive field).", overwrite=overwrite)


def write_stardist_macro(zip_path: Path, macro_path: Path, *, name: str, thresholds: dict,
                         percentiles: tuple[float, float], overwrite: bool = False) -> Path:
    """``fiji_macros/stardist_segment_folder.ijm`` with this model's path, thresholds and normalisation filled in."""
    from ..macros import write_filled_macro

    return write_filled_macro("stardist_segment_folder.ijm", macro_path, {
        "model": Path(zip_path).resolve(), "prob_thresh": f"{thresholds['prob']:.4f}", "nms_thresh": f"{thresholds['nms']:.2f}",
        "p_low": f"{percentiles[0]:g}", "p_high": f"{percentiles[1]:g}",
    }, f"model {name!r} ({Path(zip_path).name}): its optimised thresholds and training percentiles.", overwrite=overwrite)
