"""``fijiport convert``: repair models others exported so that Fiji's and KNIME's old runtimes load them.

- A CSBDeep/StarDist ``TF_SavedModel.zip`` (e.g. from csbdeep's ``export_TF`` under TensorFlow 2)
  becomes the same zip with a frozen, TF-1.x-compatible graph and the original ``meta.json``.
- A bioimage.io package (spec 0.4 or 0.5) with TensorFlow or Keras weights becomes a spec 0.5
  package with the original metadata, test tensors and Keras weights, a frozen
  ``tensorflow_saved_model_bundle`` and ONNX weights.

The original graph is loaded with TensorFlow's v1 loader in graph mode, its variables are folded
into constants, and every rewrite is proven by running old and new graph on the same input.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import DataError, ExportError
from ..files import atomic_file, check_output
from ..package.read import load_description, network_test_io
from ..package.tolerance import agree, strict
from ..package.untrusted import inspect_package, safe_extract
from .exporter import AGREEMENT_ATOL
from .onnx import frozen_graph_to_onnx, run_onnx
from .rdf import TF_BUNDLE_VERSION, write_package
from .tf_graph import FrozenGraph, check_equivalent, freeze_keras_model, make_tf1_compatible, run_graph, write_saved_model, zip_folder

log = logging.getLogger(__name__)


@dataclass
class ConvertResult:
    path: Path
    kind: str
    rewrites: list[str] = field(default_factory=list)
    max_diffs: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def freeze_saved_model(
    saved_model_dir: Path, input_key: Optional[str] = None, output_key: Optional[str] = None, tag: str = "serve"
) -> tuple[FrozenGraph, str, str]:
    """Load a SavedModel with the v1 loader and fold its variables; returns the graph and the signature keys."""
    import tensorflow as tf

    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as sess:
        try:
            meta = tf.compat.v1.saved_model.loader.load(sess, [tag], str(saved_model_dir))
        except Exception as e:
            raise DataError(
                f"TensorFlow {tf.__version__} cannot load the SavedModel in {saved_model_dir.name}: "
                f"{type(e).__name__}: {str(e).splitlines()[0]}"
            ) from None
        sigs = meta.signature_def
        sig_key = "serving_default" if "serving_default" in sigs else next(iter(sigs), "")
        sig = sigs[sig_key] if sig_key else None
        if sig is None:
            raise DataError("the SavedModel has no signature; cannot tell its input and output")
        if len(sig.inputs) != 1 or len(sig.outputs) != 1:
            raise DataError(
                f"the SavedModel has {len(sig.inputs)} inputs and {len(sig.outputs)} outputs; "
                "Fiji's plugins and fijiport convert handle one of each"
            )
        in_key = input_key if input_key is not None and input_key in sig.inputs else next(iter(sig.inputs))
        out_key = output_key if output_key is not None and output_key in sig.outputs else next(iter(sig.outputs))
        in_tensor, out_tensor = sig.inputs[in_key].name, sig.outputs[out_key].name
        out_op = out_tensor.split(":")[0]
        gd = tf.compat.v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), [out_op])
    in_op = in_tensor.split(":")[0]
    if in_tensor.split(":")[1:] not in ([], ["0"]) or out_tensor.split(":")[1:] not in ([], ["0"]):
        raise DataError(f"signature tensors {in_tensor} -> {out_tensor} are not the first outputs of their ops")
    gd = tf.compat.v1.graph_util.extract_sub_graph(gd, [out_op])
    if any(n.op in FUNCTION_CALLS for n in gd.node):  # Keras' TF-format SavedModels (n2v's export_TF) call functions
        return _inlined(saved_model_dir, tag, sig_key, in_key, out_key, in_op, out_op), in_key, out_key
    return FrozenGraph(gd, in_op, out_op, rewrites=[]), in_key, out_key


FUNCTION_CALLS = ("StatefulPartitionedCall", "PartitionedCall")


def _inlined(saved_model_dir: Path, tag: str, sig_key: str, in_key: str, out_key: str, in_op: str, out_op: str) -> FrozenGraph:
    """The signature's graph with its function calls inlined (TF 1.13 runs no functions, and the graph rewrites must
    reach the ops inside them), variables folded, input and output under the signature's op names."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    loaded = tf.saved_model.load(str(saved_model_dir), tags=[tag])  # kept alive: the function reads its variables
    fn = loaded.signatures[sig_key]
    frozen = convert_variables_to_constants_v2(fn)
    del loaded
    gd = frozen.graph.as_graph_def()
    if any(n.op in FUNCTION_CALLS for n in gd.node):
        raise DataError(f"the SavedModel in {saved_model_dir.name} keeps function calls after inlining; Fiji's TF 1.x cannot run it")
    placeholders = [n for n in gd.node if n.op == "Placeholder"]
    if len(placeholders) != 1:
        raise DataError(f"the SavedModel's signature has {len(placeholders)} inputs after freezing; fijiport convert handles one")
    placeholders[0].name = in_op
    for n in gd.node:  # the placeholder's consumers follow its new name
        n.input[:] = [in_op + i[len(fn.inputs[0].name.split(":")[0]) :] if i.split(":")[0] == fn.inputs[0].name.split(":")[0] else i
                      for i in n.input]  # fmt: skip
    out = frozen.structured_outputs[out_key] if isinstance(frozen.structured_outputs, dict) else frozen.outputs[0]
    node = gd.node.add()
    node.name, node.op = out_op, "Identity"
    node.input.append(out.name.split(":")[0] if out.name.endswith(":0") else out.name)
    node.attr["T"].type = out.dtype.as_datatype_enum
    gd = tf.compat.v1.graph_util.extract_sub_graph(gd, [out_op])
    return FrozenGraph(gd, in_op, out_op, rewrites=["function calls inlined"])


def convert_package(
    source: Path,
    output: Path,
    *,
    overwrite: bool = False,
    opset: int = 17,
    progress: Optional[Callable[[str], None]] = None,
    trust_code: bool = False,
) -> ConvertResult:
    """Repair a CSBDeep/StarDist SavedModel zip or a bioimage.io package (see module docstring)."""
    from .._tf import legacy_tensorflow

    step = progress or (lambda _m: None)
    source, output = Path(source), Path(output)
    if not source.is_file():
        raise DataError(f"{source} does not exist")
    if output.suffix.lower() != ".zip":
        raise ExportError(f"output {output} must end in .zip")
    if source.resolve() == output.resolve():
        raise ExportError(
            f"-o {output} is the input package; write the converted model to a new file, e.g. "
            f"-o {output.with_name(output.stem + '_converted.zip')} (the input is never replaced)"
        )
    check_output(output, overwrite)
    inspect_package(source, trust_code=trust_code, require_rdf=False)
    try:
        names = zipfile.ZipFile(source).namelist()
    except zipfile.BadZipFile:
        raise DataError(f"{source} is not a zip file") from None
    legacy_tensorflow()

    with tempfile.TemporaryDirectory(prefix="fijiport-convert-") as tmp_str:
        tmp = Path(tmp_str)
        if "saved_model.pb" in names:
            step("freezing the SavedModel")
            safe_extract(source, tmp / "in")
            return _convert_saved_model_zip(tmp / "in", output, tmp, overwrite)
        if any(n == "rdf.yaml" or n.endswith("bioimageio.yaml") for n in names):
            return _convert_bioimageio(source, output, tmp, overwrite, opset, step)
    raise DataError(f"{source} holds neither saved_model.pb at its root (CSBDeep/KNIME zip) nor rdf.yaml (bioimage.io)")


def _probe_input(frozen: FrozenGraph, meta: dict) -> np.ndarray:
    """A valid input for the graph: its own placeholder shape with free sizes from csbdeep's meta.json."""
    shape = None
    for node in frozen.graph_def.node:
        if node.name == frozen.input_name and "shape" in node.attr:
            dims = node.attr["shape"].shape.dim
            shape = [None if d.size < 0 else int(d.size) for d in dims]
    if not shape:
        raise DataError("the SavedModel's input placeholder has no known rank; cannot build a probe input")
    return probe_input(shape, meta)


def _convert_saved_model_zip(in_dir: Path, output: Path, tmp: Path, overwrite: bool) -> ConvertResult:
    meta = {}
    if (in_dir / "meta.json").is_file():
        try:
            meta = json.loads((in_dir / "meta.json").read_text())
        except json.JSONDecodeError:
            log.warning("meta.json is not valid JSON; it is copied unchanged")
    frozen, in_key, out_key = freeze_saved_model(in_dir)
    compatible = make_tf1_compatible(frozen)
    x = _probe_input(frozen, meta)
    diff = check_equivalent(frozen, compatible, x)
    sm = write_saved_model(compatible, tmp / "out", in_key, out_key)
    extra = {"meta.json": (in_dir / "meta.json").read_bytes()} if (in_dir / "meta.json").is_file() else {}
    with atomic_file(output, overwrite=overwrite) as partial:
        zip_folder(sm, partial, extra=extra)
    notes = [f"frozen graph checked on a probe input of shape {list(x.shape)}"]
    if not meta and (in_dir / "keras_metadata.pb").is_file():
        notes.append(
            "no meta.json: a Keras SavedModel (n2v's export_TF writes such a tf_model.zip) whose network expects normalised "
            "input; for CSBDeep-Fiji, KNIME and the N2V plugin run `fijiport export MODEL_FOLDER -o model.zip --fiji-zip "
            "model_fiji.zip` on the model folder it came from"
        )
    return ConvertResult(output, "SavedModel zip", compatible.rewrites, {"tensorflow_saved_model_bundle": diff}, notes)


def _convert_bioimageio(source: Path, output: Path, tmp: Path, overwrite: bool, opset: int, step) -> ConvertResult:
    import tensorflow as tf
    from bioimageio.spec.model import v0_5 as bio
    from bioimageio.spec.utils import extract_file_name

    step("reading the bioimage.io package")
    descr = load_description(source)
    if not isinstance(descr, bio.ModelDescr):
        raise DataError(f"{source} could not be read as a bioimage.io model (spec 0.4/0.5): {type(descr).__name__}")
    if len(descr.inputs) != 1 or len(descr.outputs) != 1:
        raise DataError(f"{source} has {len(descr.inputs)} inputs and {len(descr.outputs)} outputs; convert handles one of each")
    in_id, out_id = str(descr.inputs[0].id), str(descr.outputs[0].id)
    x, ref, postprocess = network_test_io(descr)
    notes: list[str] = []
    weights = descr.weights
    if weights.tensorflow_saved_model_bundle is not None:
        step("freezing the TensorFlow weights")
        name = extract_file_name(weights.tensorflow_saved_model_bundle.source)
        safe_extract(source, tmp / "pkg", name)
        bundle = tmp / "pkg" / name
        sm_dir = tmp / "bundle"
        if zipfile.is_zipfile(bundle):
            safe_extract(bundle, sm_dir)
        elif bundle.is_dir():
            sm_dir = bundle
        else:
            raise DataError(f"{source}: tensorflow_saved_model_bundle {name} is neither a zip nor a folder")
        root = sm_dir if (sm_dir / "saved_model.pb").is_file() else next((p.parent for p in sm_dir.rglob("saved_model.pb")), None)
        if root is None:
            raise DataError(f"{source}: no saved_model.pb inside {name}")
        frozen, _, _ = freeze_saved_model(root, in_id, out_id)
        origin = "tensorflow_saved_model_bundle"
    elif weights.keras_hdf5 is not None:
        step("loading the Keras weights")
        name = extract_file_name(weights.keras_hdf5.source)
        safe_extract(source, tmp / "pkg", name)
        try:
            model = tf.keras.models.load_model(str(tmp / "pkg" / name), compile=False)
        except Exception as e:
            raise DataError(
                f"{source}: the Keras weights {name} do not load in tf_keras "
                f"({type(e).__name__}: {str(e).splitlines()[0]}); custom layers cannot be converted"
            ) from None
        frozen = freeze_keras_model(model, "input", "output")
        origin = "keras_hdf5"
    else:
        present = [n for n, e in weights if e is not None]
        raise DataError(f"{source} has no TensorFlow or Keras weights (it has {', '.join(present)}); nothing to convert")

    compatible = make_tf1_compatible(frozen)
    check_equivalent(frozen, compatible, x)
    limit = strict(AGREEMENT_ATOL * max(1.0, float(np.abs(ref).max())))  # the limit grows with the output's range
    results = {"tensorflow_saved_model_bundle": _agreement(postprocess(run_graph(compatible, x)), ref, limit)}
    sm = write_saved_model(compatible, tmp / "frozen", in_id, out_id)
    tf_zip = zip_folder(sm, tmp / "tf_saved_model_bundle.zip")
    step("converting to ONNX")
    onnx_path = frozen_graph_to_onnx(compatible, tmp / "weights.onnx", input_key=in_id, output_key=out_id, opset=opset, probe=x)
    results["onnx"] = _agreement(postprocess(run_onnx(onnx_path, x, in_id)), ref, limit)
    diffs = {k: float(a.max_abs_diff) for k, a in results.items() if a.max_abs_diff is not None}
    bad = {k: diffs[k] for k, a in results.items() if not a.ok}
    if bad:
        raise ExportError(
            f"converted weights do not reproduce the package's test output (max |diff| {bad}); "
            "the original weights may not reproduce it either: check with `fijiport validate`"
        )

    keras = weights.keras_hdf5
    parent: dict[str, Any] = {"parent": "keras_hdf5"} if keras is not None else {}
    new_weights: dict[str, Any] = {}
    if keras is not None:
        new_weights["keras_hdf5"] = keras
    new_weights["tensorflow_saved_model_bundle"] = bio.TensorflowSavedModelBundleWeightsDescr(
        source=tf_zip,
        tensorflow_version=bio.Version(TF_BUNDLE_VERSION),
        **parent,
        comment=f"frozen by fijiport convert from the package's {origin} weights, for TensorFlow 1.13-2.10",
    )
    new_weights["onnx"] = bio.OnnxWeightsDescr(
        source=onnx_path,
        opset_version=opset,
        parent="keras_hdf5" if keras is not None else "tensorflow_saved_model_bundle",
        comment="converted with tf2onnx by fijiport convert; IR version 8 for onnxruntime >= 1.13",
    )
    for other, entry in weights:
        if entry is not None and other not in new_weights and other not in ("tensorflow_saved_model_bundle", "onnx"):
            notes.append(f"dropped {other} weights (not convertible here)")
    update: dict[str, Any] = {"weights": bio.WeightsDescr(**new_weights)}
    inputs, outputs, scalar = _one_channel_scalars(descr)
    if scalar:
        update.update(inputs=inputs, outputs=outputs)
        notes.append(f"{', '.join(scalar)} of one channel written as plain numbers (deepImageJ 3.1's JDLL fails on one-element "
                     "lists along the channel axis)")  # fmt: skip
    new = descr.model_copy(update=update)
    step("writing the converted package")

    write_package(new, output, overwrite=overwrite)
    return ConvertResult(output, "bioimage.io", compatible.rewrites, diffs, notes)


def _one_channel_scalars(descr) -> tuple[list, list, list[str]]:
    """The inputs and outputs with one-element per-channel ``fixed_zero_mean_unit_variance`` / ``scale_linear`` kwargs
    (what converting n2v's spec-0.4 packages gives) as scalar kwargs, the same maths; and which steps changed."""
    from bioimageio.spec.model import v0_5 as bio

    changed: list[str] = []

    def fix(steps):
        out = []
        for p in steps:
            kw = p.kwargs
            if isinstance(kw, bio.FixedZeroMeanUnitVarianceAlongAxisKwargs) and len(kw.mean) == 1:
                p = p.model_copy(update={"kwargs": bio.FixedZeroMeanUnitVarianceKwargs(mean=kw.mean[0], std=kw.std[0])})
                changed.append("fixed_zero_mean_unit_variance")
            elif isinstance(kw, bio.ScaleLinearAlongAxisKwargs):
                gain, offset = np.atleast_1d(np.asarray(kw.gain, float)), np.atleast_1d(np.asarray(kw.offset, float))
                if gain.size == 1 and offset.size == 1:
                    p = p.model_copy(update={"kwargs": bio.ScaleLinearKwargs(gain=float(gain[0]), offset=float(offset[0]))})
                    changed.append("scale_linear")
            out.append(p)
        return out

    inputs = [t.model_copy(update={"preprocessing": fix(t.preprocessing)}) for t in descr.inputs]
    outputs = [t.model_copy(update={"postprocessing": fix(t.postprocessing)}) for t in descr.outputs]
    return inputs, outputs, changed


def _agreement(y: np.ndarray, ref: np.ndarray, limit):
    """A converted format's output against the package's test output (shapes must match)."""
    agreement = agree(y, ref, limit)
    if agreement.max_abs_diff is None:
        raise ExportError(f"converted weights give {agreement.reason}, as the test output")
    return agreement


def probe_input(shape: list[Optional[int]], meta: dict) -> np.ndarray:
    """A seeded, smooth, image-like input of a size every axis accepts (csbdeep's ``axes_div_by`` in ``meta.json``),
    for a SavedModel that comes without test tensors."""
    from scipy.ndimage import gaussian_filter

    axes = str(meta.get("axes", "")).upper()
    div_by = list(meta.get("axes_div_by", []))
    n_spatial = len(shape) - 2
    spatial_axes = [a for a in axes if a in "ZYX"] or ["Y", "X"][-n_spatial:] if n_spatial <= 2 else ["Z", "Y", "X"]
    dims = [1]
    for i in range(n_spatial):
        a = spatial_axes[i] if i < len(spatial_axes) else "X"
        known = shape[1 + i]
        div = div_by[axes.index(a)] if a in axes and axes.index(a) < len(div_by) else 16
        target = 16 if a == "Z" else 64
        dims.append(known if known else int(div * max(1, -(-target // div))))
    dims.append(shape[-1] or 1)
    rng = np.random.default_rng(0)
    x = gaussian_filter(rng.random(dims), sigma=[0] + [1.5] * n_spatial + [0])
    x = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
    return x.astype(np.float32)
