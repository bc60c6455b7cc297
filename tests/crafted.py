"""Crafted models for the tests: TensorFlow SavedModels and ONNX files built op by op (graph mode, the v1 SavedModel
builder, as CSBDeep zips are), including ones that touch files, to prove what fijiport refuses and that nothing ran."""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import yaml


def saved_model_dir(folder: Path, build: Callable[[Any, Any], Any], *, channels: int = 1) -> Path:
    """A SavedModel in ``folder`` whose ``serving_default`` maps ``input`` (float32, b,y,x,c) to ``build(tf, input)``."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, channels], name="input")
        y = tf.identity(build(tf, x), name="output")
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(folder))
            sig = tf.compat.v1.saved_model.predict_signature_def({"input": x}, {"output": y})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig}, strip_default_attrs=True)
            builder.save()
    return folder


def saved_model_zip(path: Path, build: Callable[[Any, Any], Any], *, meta: Optional[dict] = None) -> Path:
    """A CSBDeep-layout zip (``saved_model.pb`` + ``variables/`` at the root, ``meta.json``) of :func:`saved_model_dir`."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        folder = saved_model_dir(Path(tmp) / "sm", build)
        (folder / "variables").mkdir(exist_ok=True)
        with zipfile.ZipFile(path, "w") as zf:
            for p in sorted(folder.rglob("*")):
                rel = p.relative_to(folder).as_posix()
                zf.writestr(rel + "/", b"") if p.is_dir() else zf.write(p, rel)
            zf.writestr("meta.json", json.dumps(meta or {"type": "CARE", "axes": "YXC", "axes_div_by": [4, 4, 1]}))
    return path


def write_file_graph(canary: Path) -> Callable[[Any, Any], Any]:
    """A graph whose output waits for a WriteFile of ``canary`` (the serving signature writes it)."""

    def build(tf, x):
        write = tf.io.write_file(str(canary), "written by the model's graph")
        with tf.control_dependencies([write]):
            return tf.identity(x)

    return build


def read_file_graph(secret: Path) -> Callable[[Any, Any], Any]:
    """A graph whose output adds the length of ``secret`` (read with ReadFile) to the input: the output shows the read."""

    def build(tf, x):
        n = tf.cast(tf.strings.length(tf.io.read_file(str(secret))), tf.float32)
        return x + n

    return build


def bioimageio_zip_with_bundle(path: Path, bundle_zip: Path, *, name: str = "crafted model") -> Path:
    """A zip with an rdf naming ``bundle_zip`` as its tensorflow_saved_model_bundle (sha256 right): what the untrusted
    checks see first. Not a valid bioimage.io description beyond that; nothing may get that far."""
    data = bundle_zip.read_bytes()
    rdf = {
        "type": "model",
        "format_version": "0.5.4",
        "name": name,
        "weights": {
            "tensorflow_saved_model_bundle": {
                "source": "tf.zip",
                "sha256": hashlib.sha256(data).hexdigest(),
                "tensorflow_version": "1.15.0",
            }
        },
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
        zf.writestr("tf.zip", data)
    return path


def onnx_model(path: Path, *, output_type: Optional[int] = None, domain: str = "", external: Optional[str] = None) -> Path:
    """A tiny ONNX model (opset 13, IR 8): ``output = Cast(input * w, output_type)``; ``domain`` puts the Mul into
    another operator domain; ``external`` keeps the weight ``w`` in that external-data location."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    out_type = TensorProto.FLOAT if output_type is None else output_type
    w = numpy_helper.from_array(np.full((1,), 2.0, np.float32), "w")
    if external is not None:
        w.data_location = TensorProto.EXTERNAL
        w.ClearField("raw_data")
        for key, value in (("location", external), ("offset", "0"), ("length", "4")):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
    nodes = [
        helper.make_node("Mul", ["input", "w"], ["scaled"], name="mul", domain=domain),
        helper.make_node("Cast", ["scaled"], ["output"], to=out_type),
    ]
    graph = helper.make_graph(
        nodes,
        "crafted",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, None, None, 1])],
        [helper.make_tensor_value_info("output", out_type, [1, None, None, 1])],
        initializer=[w],
    )
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    path.write_bytes(model.SerializeToString())
    return path
