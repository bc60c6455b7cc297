"""bench/steady.py's FLOP count (issue 18): 2 × multiply-adds of every Conv, ConvTranspose and MatMul, at the shapes a
real run gives — checked against the textbook formulas on small graphs, and on csbdeep's own 2D U-Net against a count
of its Keras layers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import steady


def _model(nodes, inits, x_shape, y_name="y"):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * len(x_shape))],
        [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_conv_convtranspose_and_matmul_counts(tmp_path):
    rng = np.random.default_rng(0)
    w1 = rng.random((8, 3, 3, 3), dtype=np.float32)  # Conv 3 -> 8, 3×3, same padding
    w2 = rng.random((8, 4, 2, 2), dtype=np.float32)  # ConvTranspose 8 -> 4, 2×2 stride 2
    m = rng.random((64, 5), dtype=np.float32)  # MatMul over the last axis (width 32 -> 5 after the transpose conv: 64)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["a", "w2"], ["b"], strides=[2, 2]),
        helper.make_node("MatMul", ["b", "m"], ["y"]),
    ]
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, {"w1": w1, "w2": w2, "m": m}, (1, 3, 32, 32)), path)
    x = rng.random((1, 3, 32, 32), dtype=np.float32)
    conv = 2 * (1 * 8 * 32 * 32) * (3 * 3 * 3)
    convt = 2 * (1 * 8 * 32 * 32) * (4 * 2 * 2)
    matmul = 2 * (1 * 4 * 64 * 5) * 64
    assert steady.onnx_flops(path, x) == conv + convt + matmul


@pytest.mark.slow
def test_csbdeep_unet_count_matches_its_keras_layers(care2d_model, care2d_zip, tmp_path):
    """The ONNX count of a real csbdeep CARE network (tf2onnx's graph, as fijiport exports it, counted at run time)
    equals 2 × Σ (output pixels × kernel volume × in × out channels) over the Keras Conv layers csbdeep builds."""
    import zipfile

    from csbdeep.models import CARE

    with zipfile.ZipFile(care2d_zip) as zf:
        (tmp_path / "w.onnx").write_bytes(zf.read("weights.onnx"))
    x = np.zeros((1, 64, 48, 1), np.float32)
    keras_model = CARE(None, name=care2d_model.name, basedir=str(care2d_model.parent)).keras_model
    convs = [layer for layer in keras_model.layers if type(layer).__name__.startswith("Conv")]
    assert len(convs) >= 5, "a U-Net has several convolutions"
    outputs = keras_model.__class__(keras_model.input, [layer.output for layer in convs]).predict_on_batch(x)
    expected = sum(2 * int(np.prod(out.shape[1:-1])) * int(np.prod(layer.get_weights()[0].shape)) for layer, out in zip(convs, outputs))
    assert steady.onnx_flops(tmp_path / "w.onnx", x) == expected
