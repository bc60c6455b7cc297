"""ONNX weights from a frozen TensorFlow graph, for deepImageJ's onnxruntime (≤ 1.13.1)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DependencyError, ExportError
from .tf_graph import FrozenGraph, run_graph

log = logging.getLogger(__name__)

OPSET = 17
"""Highest opset onnxruntime 1.13.1 runs (18 fails there)."""
IR_VERSION = 8
"""IR version written by onnx 1.12/1.13, which onnxruntime 1.13.1 reads (it rejects newer ones)."""


def frozen_graph_to_onnx(
    frozen: FrozenGraph,
    path: Path,
    *,
    input_key: str = "input",
    output_key: str = "output",
    opset: int = OPSET,
    probe: Optional[np.ndarray] = None,
    attempts: int = 3,
) -> Path:
    """Convert a frozen graph with tf2onnx; input and output are named ``input_key``/``output_key``.

    With ``probe``, the ONNX model is run on it and must give the frozen graph's output shape. Seen twice in
    CI, not reproduced on demand: a converted model whose output carried an extra leading axis. The cause is
    not known; as a guess (tf2onnx names nodes from a process-wide counter) up to ``attempts`` fresh
    conversions are made, and export fails with this message if none is right.
    """
    if probe is None:
        return _convert(frozen, path, input_key, output_key, opset)

    expected = run_graph(frozen, probe).shape
    for attempt in range(1, attempts + 1):
        _convert(frozen, path, input_key, output_key, opset)
        got = run_onnx(path, probe, input_key).shape
        if got == expected:
            return Path(path)
        log.warning("tf2onnx conversion %d gave output shape %s instead of %s; converting again", attempt, got, expected)
    raise ExportError(f"tf2onnx gave ONNX output shape {got} instead of {expected} in {attempts} attempts; please report this model")


def _convert(frozen: FrozenGraph, path: Path, input_key: str, output_key: str, opset: int) -> Path:
    try:
        import onnx
        import tf2onnx
    except ImportError as e:
        raise DependencyError(f"ONNX export needs tf2onnx and onnx ({e}); pip install tf2onnx onnx") from None
    if opset > 17:
        raise ExportError(f"opset {opset} is newer than onnxruntime 1.13.1 (deepImageJ) runs; use opset ≤ 17")
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.CopyFrom(frozen.graph_def)
    try:
        model_proto, _ = tf2onnx.convert.from_graph_def(
            gd, input_names=[frozen.input_tensor], output_names=[frozen.output_tensor], opset=opset
        )
    except Exception as e:
        raise ExportError(f"tf2onnx could not convert the network: {type(e).__name__}: {e}") from None
    _rename_io(model_proto, {frozen.input_tensor: input_key}, {frozen.output_tensor: output_key})
    model_proto.ir_version = min(model_proto.ir_version, IR_VERSION)
    model_proto.producer_name = "fijiport (tf2onnx)"
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, str(path))
    return Path(path)


def _rename_io(model_proto, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    renames = {**inputs, **outputs}
    for vi in list(model_proto.graph.input) + list(model_proto.graph.output):
        if vi.name in renames:
            vi.name = renames[vi.name]
    for node in model_proto.graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]


def run_onnx(path: Path, x: np.ndarray, input_key: str = "input") -> np.ndarray:
    """Run an ONNX model with the installed onnxruntime on the CPU."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {input_key: x})[0])
