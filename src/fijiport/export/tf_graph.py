"""Frozen TensorFlow inference graphs that old TensorFlow runtimes load.

Fiji's CSBDeep/StarDist plugins run TensorFlow 1.15 (Java), KNIME 1.13.1 and deepImageJ up to
2.10.1. A SavedModel written by TensorFlow 2.2x (csbdeep's ``export_TF``) holds ops and attributes
those versions do not know. Here a Keras model becomes a frozen GraphDef (variables folded into
constants, only the inference subgraph), rewritten into ops every target knows, and saved with the
v1 SavedModel builder (tag ``serve``, signature ``serving_default``).

Every rewrite is checked by running the graph before and after on the same input
(:func:`check_equivalent`).
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from ..package.tolerance import agree, strict

log = logging.getLogger(__name__)

SERVE_TAG = "serve"
SIGNATURE_KEY = "serving_default"


@dataclass
class FrozenGraph:
    """A frozen inference graph with one input and one output placeholder."""

    graph_def: Any  # tf.compat.v1.GraphDef
    input_name: str  # node name of the input placeholder
    output_name: str  # node name of the output
    rewrites: list[str]

    @property
    def input_tensor(self) -> str:
        return f"{self.input_name}:0"

    @property
    def output_tensor(self) -> str:
        return f"{self.output_name}:0"

    def op_types(self) -> set[str]:
        return {n.op for n in self.graph_def.node}


def freeze_keras_model(keras_model, input_name: str = "input", output_name: str = "output") -> FrozenGraph:
    """Fold the variables of a (tf_keras) model into constants and keep the inference subgraph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    in_shape = [None] + [None if d is None else int(d) for d in keras_model.input_shape[1:]]
    spec = tf.TensorSpec(in_shape, tf.float32, name=input_name)
    fn = tf.function(lambda x: keras_model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(fn)
    gd = frozen.graph.as_graph_def()
    placeholders = [n.name for n in gd.node if n.op == "Placeholder"]
    if placeholders != [input_name]:
        raise ExportError(f"expected one input placeholder, found {placeholders}; multi-input models are not supported")
    out_node = frozen.outputs[0].name.split(":")[0]
    # name the output: an Identity called `output_name` on top of the function's output
    node = gd.node.add()
    node.name, node.op = output_name, "Identity"
    node.input.append(out_node)
    node.attr["T"].type = tf.float32.as_datatype_enum
    gd = tf.compat.v1.graph_util.extract_sub_graph(gd, [output_name])
    return FrozenGraph(gd, input_name, output_name, rewrites=[])


def make_tf1_compatible(frozen: FrozenGraph) -> FrozenGraph:
    """Rewrite ops and attributes that TensorFlow 1.13–1.15 do not know into equivalent old ones.

    - ``AddV2`` (TF ≥ 1.15 in graphs written by TF 2) → ``Add`` (same maths for float tensors);
    - ``ResizeNearestNeighbor`` with ``half_pixel_centers=True`` (attribute added in TF 1.14; Keras'
      ``UpSampling`` writes it) → the legacy op, which for integer up-scaling factors picks the
      same source pixel (floor((i + 0.5) / f) == floor(i / f) for integer f);
    - ``FusedBatchNorm(V3)`` in inference mode after a convolution (n2v's U-Net) → folded into the convolution's
      kernel and bias (TF 1.13 does not know ``FusedBatchNormV3``; TF 1.15 refuses its 3D form): ``w·γ/√(σ²+ε)`` and
      ``(b − μ)·γ/√(σ²+ε) + β`` per output channel, the batch norm becoming an ``Identity``;
    - drops ``NoOp`` control-dependency leftovers.
    Default-valued attributes are stripped when saving (see :func:`write_saved_model`).
    """
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.CopyFrom(frozen.graph_def)
    rewrites = list(frozen.rewrites)
    counts: dict[str, int] = {}
    for node in gd.node:
        if node.op == "AddV2":
            node.op = "Add"
            counts["AddV2→Add"] = counts.get("AddV2→Add", 0) + 1
        elif node.op == "ResizeNearestNeighbor" and node.attr["half_pixel_centers"].b:
            if node.attr["align_corners"].b:
                raise ExportError(f"{node.name}: ResizeNearestNeighbor with align_corners and half_pixel_centers cannot be rewritten")
            node.attr["half_pixel_centers"].b = False
            counts["ResizeNearestNeighbor half_pixel_centers→legacy"] = counts.get("ResizeNearestNeighbor half_pixel_centers→legacy", 0) + 1
        for i in reversed(range(len(node.input))):
            if node.input[i].startswith("^"):
                del node.input[i]
    kept = [n for n in gd.node if n.op != "NoOp"]
    del gd.node[:]
    gd.node.extend(kept)
    folded = _fold_batch_norms(gd)
    if folded:
        counts["FusedBatchNorm folded into the convolution before it"] = folded
        gd = tf.compat.v1.graph_util.extract_sub_graph(gd, [frozen.output_name])  # the batch norms' constants are dead now
    rewrites += [f"{k} ({v}×)" for k, v in counts.items()]
    return FrozenGraph(gd, frozen.input_name, frozen.output_name, rewrites)


def _fold_batch_norms(gd) -> int:
    """Fold inference-mode batch norms that follow a convolution with a bias (through Identity nodes) into that
    convolution's constants, in place; returns how many. A batch norm whose constants are shared is left alone."""
    from tensorflow.python.framework import tensor_util

    nodes = {n.name: n for n in gd.node}
    consumers: dict[str, int] = {}
    for n in gd.node:
        for i in n.input:
            consumers[i.split(":")[0].lstrip("^")] = consumers.get(i.split(":")[0].lstrip("^"), 0) + 1

    def source(name: str):
        n = nodes[name.split(":")[0].lstrip("^")]
        while n.op == "Identity" and n.input:
            n = nodes[n.input[0].split(":")[0]]
        return n

    def own_const(name: str):
        n = source(name)
        if n.op != "Const" or consumers.get(n.name, 0) > 1:
            return None
        return n

    folded = 0
    for bn in [n for n in gd.node if n.op in ("FusedBatchNorm", "FusedBatchNormV3")]:
        if bn.attr["is_training"].b or len(bn.input) < 5:
            continue
        bias_add = source(bn.input[0])
        conv = source(bias_add.input[0]) if bias_add.op == "BiasAdd" else None
        if conv is None or conv.op not in ("Conv2D", "Conv3D") or consumers.get(bias_add.name, 0) > 1:
            continue
        kernel, bias = own_const(conv.input[1]), own_const(bias_add.input[1])
        params = [own_const(i) for i in bn.input[1:5]]
        if kernel is None or bias is None or any(c is None for c in params):
            continue
        scale, offset, mean, var = (tensor_util.MakeNdarray(c.attr["value"].tensor).astype(np.float64) for c in params if c is not None)
        factor = scale / np.sqrt(var + bn.attr["epsilon"].f)
        w = tensor_util.MakeNdarray(kernel.attr["value"].tensor).astype(np.float64)  # ...HWIO: output channels last
        b = tensor_util.MakeNdarray(bias.attr["value"].tensor).astype(np.float64)
        kernel.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto((w * factor).astype(np.float32)))
        bias.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(((b - mean) * factor + offset).astype(np.float32)))
        x, dtype = bn.input[0], bn.attr["T"].type
        bn.op = "Identity"
        del bn.input[:]
        bn.input.append(x)
        for key in list(bn.attr.keys()):
            del bn.attr[key]
        bn.attr["T"].type = dtype
        folded += 1
    return folded


def run_graph(frozen: FrozenGraph, x: np.ndarray) -> np.ndarray:
    """Run a frozen graph on ``x`` in a fresh v1 session."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen.graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run(frozen.output_tensor, {frozen.input_tensor: x})


def check_equivalent(before: FrozenGraph, after: FrozenGraph, x: np.ndarray, atol: float = 1e-5) -> float:
    """Run both graphs on ``x``; raise :class:`ExportError` if they differ by more than ``atol`` times the output's
    largest magnitude (at least 1: float32 rounding grows with the values, e.g. N2V's outputs on the input's scale)."""

    a, b = run_graph(before, x), run_graph(after, x)
    agreement = agree(b, a, strict(atol * max(1.0, float(np.abs(a).max()) if a.size else 1.0)))
    if not agreement.ok:
        raise ExportError(f"graph rewrite changed the output ({agreement.reason}); please report this model")
    log.info("rewritten graph reproduces the original: max |diff| %.3g", agreement.max_abs_diff)
    return float(agreement.max_abs_diff or 0.0)


def write_saved_model(frozen: FrozenGraph, out_dir: Path, input_key: str = "input", output_key: str = "output") -> Path:
    """Save the frozen graph as a v1 SavedModel folder (``saved_model.pb`` + ``variables/``)."""
    import tensorflow as tf

    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen.graph_def, name="")
        x = graph.get_tensor_by_name(frozen.input_tensor)
        y = graph.get_tensor_by_name(frozen.output_tensor)
        with tf.compat.v1.Session(graph=graph) as sess:
            builder = tf.compat.v1.saved_model.Builder(str(out_dir))
            signature = tf.compat.v1.saved_model.predict_signature_def(inputs={input_key: x}, outputs={output_key: y})
            builder.add_meta_graph_and_variables(sess, [SERVE_TAG], signature_def_map={SIGNATURE_KEY: signature}, strip_default_attrs=True)
            builder.save()
    (out_dir / "variables").mkdir(exist_ok=True)
    return out_dir


def zip_folder(folder: Path, zip_path: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Zip the content of ``folder`` (entries relative to it, so ``saved_model.pb`` is at the root)."""
    folder = Path(folder)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_dir():
                zf.writestr(rel + "/", b"")
            else:
                zf.write(path, rel)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return zip_path
