"""The compatibility matrix: each consumer (Fiji plugin, deepImageJ engine, KNIME) against the
runtime it embeds, measured by running the package's weights on that runtime.

Works on bioimage.io packages (reference: the package's test output, through the rdf's own pre-
and postprocessing) and on CSBDeep/StarDist/KNIME SavedModel zips (reference: the SavedModel run
in the installed TensorFlow on a seeded synthetic input of valid size).
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import DataError
from ..export.convert import probe_input
from ..kinds import CARE, N2V, STARDIST, ModelKind, kind_of_package
from ..package.read import config_dict, load_description, network_test_io
from ..package.report import Check, Report, Status
from ..package.tolerance import Tolerance, agree, tolerance_for
from ..package.untrusted import inspect_package, safe_extract
from .registry import BY_NAME, default_cache_dir
from .run import RunOutcome, run_onnx_model, run_saved_model

log = logging.getLogger(__name__)

TF113, TF115, TF210, ORT113 = "tensorflow-1.13.1", "tensorflow-1.15.0", "tensorflow-2.10.1", "onnxruntime-1.13.1"
CONSUMERS: tuple[tuple[str, str, str], ...] = (
    # consumer, runtime, weights it loads
    ("CSBDeep-Fiji", TF115, "tensorflow_saved_model_bundle"),
    ("StarDist-Fiji", TF115, "tensorflow_saved_model_bundle"),
    ("N2V-Fiji", TF115, "tensorflow_saved_model_bundle"),
    ("deepImageJ (TF1)", TF115, "tensorflow_saved_model_bundle"),
    ("deepImageJ (TF2)", TF210, "tensorflow_saved_model_bundle"),
    ("deepImageJ (ONNX)", ORT113, "onnx"),
    ("KNIME", TF113, "tensorflow_saved_model_bundle"),
)


RuntimeMatrix = Report
"""A runtime matrix is a :class:`~fijiport.package.report.Report`: one check per consumer (``name`` the consumer,
``runtime`` and ``weight_format`` what it loads), one measurement per runtime run, and in ``context`` the
package kind, the reference the outputs were compared with and the tolerance."""
TITLE = "Runtime matrix"


def _matrix(package: Path, package_kind: str, reference: str, tolerance: Tolerance) -> Report:
    return Report(str(package), TITLE, context={"package_kind": package_kind, "reference": reference, "tolerance": tolerance.to_dict()})


def matrix_tolerance(matrix: Report) -> Tolerance:
    return Tolerance.from_dict(matrix.context.get("tolerance", {}))


def check_runtimes(package: Path, cache_dir: Optional[Path] = None, *, progress: Optional[Callable[[str], None]] = None) -> Report:
    """Run ``package`` (bioimage.io zip or SavedModel zip) on every consumer runtime.

    Parameters
    ----------
    package
        A bioimage.io package, a CSBDeep-Fiji/KNIME SavedModel zip or an N2V plugin zip.
    cache_dir
        Where the runtimes are installed (default ``~/.cache/fijiport/runtimes`` or ``$FIJIPORT_RUNTIMES_DIR``).
    progress
        Called with a short description of each step.

    Returns
    -------
    Report
        One check per consumer (CSBDeep-Fiji, StarDist-Fiji, N2V-Fiji, deepImageJ's engines, KNIME): passed, failed or
        n/a, with the runtime and the max |diff| to the package's test output.
    """
    package = Path(package)
    cache_dir = Path(cache_dir or default_cache_dir())
    step = progress or (lambda _m: None)
    if not package.is_file():
        raise DataError(f"{package} does not exist")
    try:
        names = zipfile.ZipFile(package).namelist()
    except zipfile.BadZipFile:
        raise DataError(f"{package} is not a zip file; pass a bioimage.io package or a CSBDeep/StarDist TF_SavedModel.zip") from None
    inspect_package(package, trust_code=True, require_rdf=False)  # only TF/ONNX weights run here, never package code
    with tempfile.TemporaryDirectory(prefix="fijiport-matrix-") as tmp_str:
        tmp = Path(tmp_str)
        if "rdf.yaml" in names and _n2v_plugin_rdf(package) is not None:
            return _check_n2v_plugin_zip(package, cache_dir, tmp, step)
        if any(n == "rdf.yaml" or n.endswith("bioimageio.yaml") for n in names):
            return _check_bioimageio(package, cache_dir, tmp, step)
        if "saved_model.pb" in names:
            return _check_saved_model_zip(package, cache_dir, tmp, step)
    raise DataError(f"{package} holds neither rdf.yaml (bioimage.io) nor saved_model.pb at its root (CSBDeep/KNIME zip)")


def _signature_io(saved_model_dir: Path, input_key: Optional[str], output_key: Optional[str]) -> tuple[str, int, str, int]:
    """Operation names and indices of the serving signature's input and output tensors."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    meta = next((m for m in sm.meta_graphs if "serve" in m.meta_info_def.tags), sm.meta_graphs[0])
    sig = meta.signature_def["serving_default"] if "serving_default" in meta.signature_def else next(iter(meta.signature_def.values()))
    inputs, outputs = dict(sig.inputs), dict(sig.outputs)
    t_in = inputs[input_key] if input_key is not None and input_key in inputs else next(iter(inputs.values()))
    t_out = outputs[output_key] if output_key is not None and output_key in outputs else next(iter(outputs.values()))

    def split(name: str) -> tuple[str, int]:
        op, _, idx = name.partition(":")
        return op, int(idx or 0)

    return (*split(t_in.name), *split(t_out.name))


def _record(
    matrix: Report,
    runtime: str,
    weights: str,
    outcome: RunOutcome,
    ref: np.ndarray,
    post: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> Check:
    if not outcome.ok:
        status = Status.MISSING if outcome.stage == "runtime" else Status.FAILED
        run = Check(
            f"{runtime}: {weights}",
            status,
            f"{outcome.stage}: {outcome.error}".strip(": "),
            runtime=runtime,
            weight_format=weights,
            reported_version=outcome.reported_version,
        )
    else:
        assert outcome.output is not None
        y = post(outcome.output) if post else outcome.output
        agreement = agree(y, ref, matrix_tolerance(matrix))
        run = Check(
            f"{runtime}: {weights}",
            Status.PASSED if agreement.ok else Status.FAILED,
            agreement.reason,
            runtime=runtime,
            weight_format=weights,
            reported_version=outcome.reported_version,
            max_abs_diff=agreement.max_abs_diff,
        )
    matrix.measurements.append(run)
    return run


def _fill_rows(matrix: Report, runs: dict[tuple[str, str], Check], applicable: Callable[[str], Optional[str]]) -> None:
    for consumer, runtime, weights in CONSUMERS:
        row = dict(runtime=runtime, weight_format=weights, key=f"runtime:{consumer}")
        reason = applicable(consumer)
        if reason:
            matrix.add(consumer, Status.NOT_APPLICABLE, reason, **row)
            continue
        run = runs.get((runtime, weights))
        if run is None:
            matrix.add(consumer, Status.FAILED, f"the package has no {weights} weights", **row)
        else:
            matrix.add(consumer, run.status, run.details, max_abs_diff=run.max_abs_diff, reported_version=run.reported_version, **row)


def _check_bioimageio(package: Path, cache_dir: Path, tmp: Path, step) -> Report:
    from bioimageio.spec.model import v0_5
    from bioimageio.spec.utils import extract_file_name

    descr = load_description(package)  # spec 0.4 packages are read as 0.5
    if not isinstance(descr, v0_5.ModelDescr):
        raise DataError(f"{package} is not a readable bioimage.io model description; `fijiport validate {package}` says why")
    matrix = _matrix(package, "bioimage.io", "the package's test output", tolerance_for(descr))
    in_id, out_id = descr.inputs[0].id, descr.outputs[0].id
    x, ref, postprocess = network_test_io(descr)

    runs: dict[tuple[str, str], Check] = {}
    weights = {name: entry for name, entry in descr.weights if entry is not None}
    if "tensorflow_saved_model_bundle" in weights:
        entry = weights["tensorflow_saved_model_bundle"]
        bundle_name = extract_file_name(entry.source)
        safe_extract(package, tmp / "pkg", bundle_name)
        bundle_zip = tmp / "pkg" / bundle_name
        sm_dir = tmp / "saved_model"
        if not zipfile.is_zipfile(bundle_zip):
            raise DataError(f"{package}: its tensorflow_saved_model_bundle {bundle_name} is missing or not a zip")
        safe_extract(bundle_zip, sm_dir)
        root = sm_dir if (sm_dir / "saved_model.pb").is_file() else next((p.parent for p in sm_dir.rglob("saved_model.pb")), sm_dir)
        try:
            io_names = _signature_io(root, str(in_id), str(out_id))
        except Exception as e:
            io_names = None
            sig_error = f"cannot read the SavedModel signature: {type(e).__name__}: {e}"
        for rt in (TF113, TF115, TF210):
            step(f"running the SavedModel on {rt}")
            if io_names is None:
                outcome = RunOutcome(False, stage="signature", error=sig_error)
            else:
                outcome = run_saved_model(
                    BY_NAME[rt],
                    cache_dir,
                    root,
                    x,
                    input_op=io_names[0],
                    input_index=io_names[1],
                    output_op=io_names[2],
                    output_index=io_names[3],
                )
            runs[(rt, "tensorflow_saved_model_bundle")] = _record(matrix, rt, "tensorflow_saved_model_bundle", outcome, ref, postprocess)
    if "onnx" in weights:
        entry = weights["onnx"]
        onnx_name = extract_file_name(entry.source)
        safe_extract(package, tmp / "pkg", onnx_name)
        step(f"running the ONNX weights on {ORT113}")
        outcome = run_onnx_model(BY_NAME[ORT113], cache_dir, tmp / "pkg" / onnx_name, x, input_name=str(in_id))
        runs[(ORT113, "onnx")] = _record(matrix, ORT113, "onnx", outcome, ref, postprocess)

    n_space = sum(1 for a in descr.inputs[0].axes if getattr(a, "type", "") == "space")
    _fill_rows(
        matrix, runs, _applicability(kind_of_package(config_dict(descr), str(descr.name), list(descr.tags or [])), n_space, bare_zip=False)
    )
    return matrix


FIJI_PLUGINS = ("CSBDeep-Fiji", "StarDist-Fiji", "N2V-Fiji")


def _applicability(kind: Optional[ModelKind], n_space: int, *, bare_zip: bool) -> Callable[[str], Optional[str]]:
    """Why a consumer does not apply to a model of ``kind`` (None: a package fijiport does not know, run as CARE is)."""
    kind = kind or CARE
    dims = "/".join(f"{d}D" for d in kind.fiji_plugin_dims)

    def why_not(consumer: str) -> Optional[str]:
        if bare_zip and consumer.startswith("deepImageJ"):
            return "deepImageJ loads bioimage.io packages, not bare SavedModel zips"
        if consumer in FIJI_PLUGINS and consumer != kind.fiji_plugin and consumer not in kind.also_runs_in:
            if consumer == STARDIST.fiji_plugin:
                return "StarDist-Fiji runs StarDist models only"
            if consumer == N2V.fiji_plugin:
                return "the N2V plugin runs Noise2Void models only"
        if consumer == N2V.fiji_plugin:  # an N2V model: the plugin opens neither a 0.5 package nor a bare SavedModel zip
            return ("the N2V plugin opens its own zip (rdf 0.3): `fijiport export --fiji-zip` writes it as "
                    "NAME.n2v-plugin.zip; `fijiport runtimes check` that zip")  # fmt: skip
            if n_space in kind.fiji_plugin_dims:
                return f"{kind.title} models run in {kind.fiji_plugin}"
            return f"{consumer} does not run {kind.title} models"
        if consumer == kind.fiji_plugin and n_space not in kind.fiji_plugin_dims:
            return f"{consumer} takes {dims} images only"
        return None

    return why_not


def _n2v_plugin_rdf(package: Path) -> Optional[dict[str, Any]]:
    """The rdf of a zip for the N2V Fiji plugin (format 0.3, ``execution_model: n2v``), None for any other zip."""
    import yaml

    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo("rdf.yaml")
        if info.file_size > 1_000_000:
            return None
        try:
            rdf = yaml.safe_load(zf.read(info))
        except yaml.YAMLError:
            return None
    if isinstance(rdf, dict) and str(rdf.get("format_version", "")).startswith("0.3.") and rdf.get("execution_model") == "n2v":
        return rdf
    return None


def _check_n2v_plugin_zip(package: Path, cache_dir: Path, tmp: Path, step) -> Report:
    """A zip for the N2V Fiji plugin: its rdf against what the plugin's reader needs, then its inner SavedModel on
    the plugin's TensorFlow (1.15) with the rdf's own normalisation, against the zip's test output."""
    from ..kinds.n2v import n2v_plugin_rdf_problems

    rdf = _n2v_plugin_rdf(package)
    assert rdf is not None
    safe_extract(package, tmp / "pkg")
    matrix = _matrix(package, "N2V Fiji plugin zip", "the zip's test output, through its rdf's normalisation", Tolerance(1e-3, 1e-3, 0.0))
    problems = n2v_plugin_rdf_problems(rdf)
    matrix.add("N2V plugin's rdf reader", Status.FAILED if problems else Status.PASSED,
               "; ".join(problems) or "rdf 0.3 keys as imagej-modelzoo 0.9.10 reads them (checked from its sources; the plugin "
               "itself does not run here)", key="n2v-plugin:rdf")  # fmt: skip
    runs: dict[tuple[str, str], Check] = {}
    try:
        x = np.load(tmp / "pkg" / str(rdf["test_inputs"][0]), allow_pickle=False).astype(np.float32)
        ref = np.load(tmp / "pkg" / str(rdf["test_outputs"][0]), allow_pickle=False).astype(np.float32)
        pre = rdf["inputs"][0]["preprocessing"][0]["kwargs"]
        post = rdf["outputs"][0]["postprocessing"][0]["kwargs"]
        mean, std = float(np.ravel(pre["mean"])[0]), float(np.ravel(pre["std"])[0])
        gain, offset = float(np.ravel(post["gain"])[0]), float(np.ravel(post["offset"])[0])
        bundle = tmp / "pkg" / str(rdf["weights"]["tensorflow_saved_model_bundle"]["source"])
    except (KeyError, IndexError, TypeError, ValueError, OSError) as e:
        raise DataError(f"{package}: its rdf.yaml does not name readable test tensors, normalisation and weights ({e})") from None
    safe_extract(bundle, tmp / "saved_model")
    io_names = _signature_io(tmp / "saved_model", "input", None)
    step(f"running the SavedModel on {TF115}")
    outcome = run_saved_model(BY_NAME[TF115], cache_dir, tmp / "saved_model", (x - mean) / std, input_op=io_names[0],
                              input_index=io_names[1], output_op=io_names[2], output_index=io_names[3])  # fmt: skip
    runs[(TF115, "tensorflow_saved_model_bundle")] = _record(matrix, TF115, "tensorflow_saved_model_bundle", outcome, ref,
                                                             lambda y: y * gain + offset)  # fmt: skip

    def why_not(consumer: str) -> Optional[str]:
        if consumer == N2V.fiji_plugin:
            return None
        return "this zip is for the N2V plugin only (CSBDeep-Fiji and KNIME load the Fiji zip, deepImageJ the bioimage.io package)"

    _fill_rows(matrix, runs, why_not)
    return matrix


def _check_saved_model_zip(package: Path, cache_dir: Path, tmp: Path, step) -> Report:
    import tensorflow as tf

    root = tmp / "saved_model"
    safe_extract(package, root)
    meta: dict[str, Any] = {}
    if (root / "meta.json").is_file():
        try:
            meta = json.loads((root / "meta.json").read_text())
        except json.JSONDecodeError:
            log.warning("%s: meta.json is not valid JSON; ignoring it", package)
    in_op, in_idx, out_op, out_idx = _signature_io(root, None, None)
    # reference: the same SavedModel in the installed TensorFlow (v1 loader, own graph)
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as sess:
        tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(root))
        t_in = graph.get_tensor_by_name(f"{in_op}:{in_idx}")
        shape = [d if d is not None else None for d in t_in.shape.as_list()]
        x = probe_input(shape, meta)
        feed: Any = dict([(t_in, x)])  # tf.Tensor keys: hashable at run time, not so typed
        ref = np.asarray(sess.run(graph.get_tensor_by_name(f"{out_op}:{out_idx}"), feed))
    matrix = _matrix(
        package, "SavedModel zip", f"TensorFlow {tf.__version__} on a seeded input {list(x.shape)}", Tolerance(1e-3, 1e-3, 0.0)
    )
    runs: dict[tuple[str, str], Check] = {}
    for rt in (TF113, TF115, TF210):
        step(f"running the SavedModel on {rt}")
        outcome = run_saved_model(
            BY_NAME[rt], cache_dir, root, x, input_op=in_op, input_index=in_idx, output_op=out_op, output_index=out_idx
        )
        runs[(rt, "tensorflow_saved_model_bundle")] = _record(matrix, rt, "tensorflow_saved_model_bundle", outcome, ref)
    model_type = str(meta.get("type", "")).lower()
    kind = STARDIST if "stardist" in model_type or "n_rays" in meta else N2V if model_type == "n2v" else CARE
    n_space = sum(1 for a in str(meta.get("axes", "YX")).upper() if a in "ZYX")
    _fill_rows(matrix, runs, _applicability(kind, n_space, bare_zip=True))
    return matrix
