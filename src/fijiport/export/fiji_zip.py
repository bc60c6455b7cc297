"""The zip CSBDeep-Fiji, StarDist-Fiji and KNIME load.

Layout as csbdeep's ``export_TF`` writes it: ``saved_model.pb`` and ``variables/`` at the root
(tag ``serve``, signature ``serving_default``) plus ``meta.json`` (the kind's: type, version, axes,
axes_div_by, tile_overlap, ...); the graph is the frozen, TF-1.x-compatible one.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_file
from .tf_graph import zip_folder


def write_fiji_zip(saved_model_dir: Path, meta: dict, zip_path: Path, *, overwrite: bool = False) -> Path:
    with atomic_file(zip_path, overwrite=overwrite) as tmp:
        zip_folder(saved_model_dir, tmp, extra={"meta.json": json.dumps(meta, indent=2).encode()})
    return Path(zip_path)
