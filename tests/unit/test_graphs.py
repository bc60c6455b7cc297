"""The graph checks on packages from outside (fijiport.package.graphs): TensorFlow graphs of inference ops pass, with
their saver; ops that touch files or run code are refused naming the op and the node, wherever they hide; ONNX models
with custom operator domains or external data outside the package are refused. Read without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from crafted import bioimageio_zip_with_bundle, onnx_model, read_file_graph, saved_model_dir, saved_model_zip, write_file_graph
from fijiport.errors import DataError
from fijiport.package.graphs import check_onnx, check_saved_model, serving_signature, tf_inference_ops
from fijiport.package.untrusted import inspect_package


def _pb(folder: Path) -> bytes:
    return (folder / "saved_model.pb").read_bytes()


def _conv_with_variables(tf, x):
    kernel = tf.compat.v1.get_variable("kernel", [3, 3, 1, 4], initializer=tf.compat.v1.random_normal_initializer(seed=1))
    y = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"))
    return tf.image.resize(y, tf.shape(y)[1:3] * 2, method="nearest")


def test_inference_graphs_with_their_saver_pass(tmp_path):
    """A v1 graph with variables (its saver holds SaveV2, RestoreV2, MergeV2Checkpoints, StringJoin) and a TF2
    SavedModel (save and restore inside library functions) pass: the checkpoint ops sit in the saver's subgraphs."""
    import tensorflow as tf

    v1 = saved_model_dir(tmp_path / "v1", _conv_with_variables)
    check_saved_model(_pb(v1), "v1")

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones([1, 1, 1, 1]))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
        def __call__(self, x):
            return tf.nn.conv2d(x, self.w, strides=1, padding="SAME")

    module = Module()
    tf.saved_model.save(module, str(tmp_path / "v2"), signatures=module.__call__)
    check_saved_model(_pb(tmp_path / "v2"), "v2")
    assert serving_signature(_pb(v1), "v1").input_shape == (None, None, None, 1)


def _py_func(tf, x):
    return tf.compat.v1.py_func(lambda a: a, [x], tf.float32)


def _matching_files(tf, x):
    n = tf.cast(tf.size(tf.io.matching_files("/etc/*")), tf.float32)
    return x + n


def _print_to_file(tf, x):
    with tf.control_dependencies([tf.print("x", output_stream="file:///tmp/fijiport-never-written.txt")]):
        return tf.identity(x)


def _save_from_the_signature(tf, x):
    save = tf.raw_ops.SaveV2(prefix="/tmp/fijiport-never-saved", tensor_names=["x"], shape_and_slices=[""], tensors=[x])
    with tf.control_dependencies([save]):
        return tf.identity(x)


@pytest.mark.parametrize(
    "build,op",
    [
        (write_file_graph(Path("/tmp/fijiport-canary")), "WriteFile"),
        (read_file_graph(Path("/etc/hostname")), "ReadFile"),
        (_py_func, "PyFunc"),
        (_matching_files, "MatchingFiles"),
        (_print_to_file, "PrintV2"),
        (_save_from_the_signature, "SaveV2"),
    ],
    ids=["WriteFile", "ReadFile", "PyFunc", "MatchingFiles", "PrintV2 to a file", "SaveV2 outside the saver"],
)
def test_graphs_that_touch_files_or_run_code_are_refused_naming_op_and_node(build, op, tmp_path):
    folder = saved_model_dir(tmp_path / "sm", build)
    with pytest.raises(DataError, match=r"uses the op \w+ \(node '[^']+' in the graph\), which is not an inference op") as refused:
        check_saved_model(_pb(folder), "crafted")
    assert op in str(refused.value)  # named first, or among the other nodes (PrintV2 comes after its StringFormat)


def test_an_init_op_that_writes_is_refused(tmp_path):
    """The loader runs a v1 SavedModel's main_op before any prediction: a WriteFile there is refused too."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 1], name="input")
        y = tf.identity(x, name="output")
        main_op = tf.io.write_file(str(tmp_path / "canary"), "x")
        with tf.compat.v1.Session(graph=graph) as sess:
            builder = tf.compat.v1.saved_model.Builder(str(tmp_path / "sm"))
            sig = tf.compat.v1.saved_model.predict_signature_def({"input": x}, {"output": y})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig}, main_op=main_op)
            builder.save()
    with pytest.raises(DataError, match="uses the op WriteFile"):
        check_saved_model(_pb(tmp_path / "sm"), "crafted")
    assert not (tmp_path / "canary").exists()


def test_a_write_inside_a_library_function_is_refused_naming_the_function(tmp_path):
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
        def __call__(self, x):
            tf.io.write_file(str(tmp_path / "canary"), "x")
            return x

    module = Module()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures=module.__call__)
    (tmp_path / "canary").unlink(missing_ok=True)  # tracing for the save ran the function once
    with pytest.raises(DataError, match=r"uses the op WriteFile \(node '[^']+' in function __inference"):
        check_saved_model(_pb(tmp_path / "sm"), "crafted")


def test_not_a_saved_model_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a readable SavedModel"):
        check_saved_model(b"\xff\xff\xff\xff", "broken")


def test_packages_and_zips_with_such_graphs_are_refused_before_anything_opens_them(tmp_path):
    bundle = saved_model_zip(tmp_path / "tf.zip", write_file_graph(tmp_path / "canary"))
    with pytest.raises(DataError, match="uses the op WriteFile"):
        inspect_package(bundle, require_rdf=False)
    package = bioimageio_zip_with_bundle(tmp_path / "package.zip", bundle)
    with pytest.raises(DataError, match=r"tf\.zip: saved_model\.pb\): the TensorFlow graph uses the op WriteFile"):
        inspect_package(package, trust_code=True, trust_graphs=False)
    assert inspect_package(package, trust_code=True)["name"] == "crafted model"  # --trust-code trusts the graphs too
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    with pytest.raises(DataError, match="uses the op WriteFile"):
        inspect_package(folder, require_rdf=False)
    assert not (tmp_path / "canary").exists()


def test_the_package_layer_reads_graphs_without_tensorflow(tmp_path):
    """fijiport.package.graphs imports no TensorFlow (its protobuf classes would import all of it)."""
    code = "import sys; import fijiport.package.graphs as g, fijiport.package.untrusted; g.tf_inference_ops(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    assert {"Conv2D", "Conv2DBackpropInput", "ResizeNearestNeighbor", "StatefulPartitionedCall"} <= tf_inference_ops()
    assert not {"ReadFile", "WriteFile", "PyFunc", "ImmutableConst", "PrintV2", "SaveV2", "RestoreV2"} & tf_inference_ops()


def test_onnx_with_a_custom_operator_domain_is_refused(tmp_path):
    ok = onnx_model(tmp_path / "ok.onnx")
    check_onnx(ok.read_bytes(), "ok", ["ok.onnx"], "ok.onnx")
    custom = onnx_model(tmp_path / "custom.onnx", domain="org.example.customops")
    with pytest.raises(DataError, match="operator Mul of the custom domain 'org.example.customops' \\(node 'mul'\\)"):
        check_onnx(custom.read_bytes(), "custom", ["custom.onnx"], "custom.onnx")


@pytest.mark.parametrize(
    "location,ok",
    [("w.bin", True), ("../../../etc/passwd", False), ("/etc/passwd", False), ("missing.bin", False)],
    ids=["inside", "dotdot", "absolute", "not in the package"],
)
def test_onnx_external_data_must_be_a_file_of_the_package(location, ok, tmp_path):
    model = onnx_model(tmp_path / "m.onnx", external=location)
    names = ["weights/m.onnx", "weights/w.bin"]
    if ok:
        check_onnx(model.read_bytes(), "m", names, "weights/m.onnx")
        return
    with pytest.raises(DataError, match=f"keeps its data in '{location}', (outside the package|which the package does not hold)"):
        check_onnx(model.read_bytes(), "m", names, "weights/m.onnx")
