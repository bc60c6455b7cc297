"""The zip CSBDeep-Fiji, StarDist-Fiji and KNIME load.

Layout as csbdeep's ``export_TF`` writes it: ``saved_model.pb`` and ``variables/`` at the root
(tag ``serve``, signature ``serving_default``) plus ``meta.json`` (the kind's: type, version, axes,
axes_div_by, tile_overlap, ...); the graph is the frozen, TF-1.x-compatible one.

Next to them fijiport records the trained model's test tensors, :data:`TEST_INPUT` (the network's input, batch
first, normalised as in training) and :data:`TEST_OUTPUT` (the Keras model's output for it), which ``fijiport
runtimes check`` compares every runtime with. The plugins never read them: CSBDeep-Fiji unpacks every entry of
the zip into ``Fiji.app/models/<name>/`` and loads the SavedModel from that folder (imagej-tensorflow's
``DefaultTensorFlowService``: ``SavedModelBundle.load(dir, "serve")``); its own reading of ``meta.json`` is
commented out (CSBDeep_fiji ``TensorFlowNetwork.loadModel``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..files import atomic_file
from .tf_graph import zip_folder

TEST_INPUT = "test_input.npy"
TEST_OUTPUT = "test_output.npy"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_fiji_zip(
    saved_model_dir: Path,
    meta: dict,
    zip_path: Path,
    *,
    overwrite: bool = False,
    test_tensors: Optional[tuple[np.ndarray, np.ndarray]] = None,
) -> Path:
    """Write the Fiji/KNIME zip; ``test_tensors`` (network input, trained model's output) go next to ``meta.json``."""
    extra = {"meta.json": json.dumps(meta, indent=2).encode()}
    if test_tensors is not None:
        extra[TEST_INPUT], extra[TEST_OUTPUT] = _npy(test_tensors[0]), _npy(test_tensors[1])
    with atomic_file(zip_path, overwrite=overwrite) as tmp:
        zip_folder(saved_model_dir, tmp, extra=extra)
    return Path(zip_path)
