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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import DataError
from .registry import BY_NAME, default_cache_dir
from .run import RunOutcome, run_onnx_model, run_saved_model

log = logging.getLogger(__name__)

TF113, TF115, TF210, ORT113 = "tensorflow-1.13.1", "tensorflow-1.15.0", "tensorflow-2.10.1", "onnxruntime-1.13.1"
CONSUMERS: tuple[tuple[str, str, str], ...] = (
    # consumer, runtime, weights it loads
    ("CSBDeep-Fiji", TF115, "tensorflow_saved_model_bundle"),
    ("StarDist-Fiji", TF115, "tensorflow_saved_model_bundle"),
    ("deepImageJ (TF1)", TF115, "tensorflow_saved_model_bundle"),
    ("deepImageJ (TF2)", TF210, "tensorflow_saved_model_bundle"),
    ("deepImageJ (ONNX)", ORT113, "onnx"),
    ("KNIME", TF113, "tensorflow_saved_model_bundle"),
)


@dataclass
class RuntimeRun:
    runtime: str
    weights: str
    status: str  # passed | failed | missing
    reported_version: str = ""
    max_abs_diff: Optional[float] = None
    error: str = ""


@dataclass
class ConsumerRow:
    consumer: str
    runtime: str
    weights: str
    status: str  # passed | failed | n/a | missing
    max_abs_diff: Optional[float] = None
    detail: str = ""


@dataclass
class RuntimeMatrix:
    source: str
    package_kind: str
    reference: str
    tolerance: tuple[float, float]
    runs: list[RuntimeRun] = field(default_factory=list)
    mismatch_ppm: float = 0.0
    """Elements per million allowed outside the tolerance (the rdf's ``mismatched_elements_per_million``)."""
    rows: list[ConsumerRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        applicable = [r for r in self.rows if r.status != "n/a"]
        return bool(applicable) and all(r.status == "passed" for r in applicable)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "package_kind": self.package_kind, "reference": self.reference,
                "tolerance": {"absolute": self.tolerance[0], "relative": self.tolerance[1],
                              "mismatched_elements_per_million": self.mismatch_ppm},
                "passed": self.passed, "runs": [asdict(r) for r in self.runs], "consumers": [asdict(r) for r in self.rows]}

    def to_markdown(self) -> str:
        lines = ["| consumer | runtime | weights | status | max \\|diff\\| | detail |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            diff = "" if r.max_abs_diff is None else f"{r.max_abs_diff:.2g}"
            lines.append(f"| {r.consumer} | {r.runtime} | {r.weights} | {r.status} | {diff} | {r.detail.replace('|', '/')} |")
        return "\n".join(lines) + "\n"


def matrix_from_dict(data: dict[str, Any]) -> RuntimeMatrix:
    """Rebuild a :class:`RuntimeMatrix` from :meth:`RuntimeMatrix.to_dict` (e.g. from a JSON report)."""
    tol = data.get("tolerance", {})
    return RuntimeMatrix(data["source"], data["package_kind"], data["reference"],
                         (tol.get("absolute", 1e-3), tol.get("relative", 1e-3)),
                         runs=[RuntimeRun(**r) for r in data.get("runs", [])],
                         rows=[ConsumerRow(**r) for r in data.get("consumers", [])],
                         mismatch_ppm=tol.get("mismatched_elements_per_million", 0.0))


def check_runtimes(package: Path, cache_dir: Optional[Path] = None, *,
                   progress: Optional[Callable[[str], None]] = None) -> RuntimeMatrix:
    """Run ``package`` (bioimage.io zip or SavedModel zip) on every consumer runtime."""
    package = Path(package)
    cache_dir = Path(cache_dir or default_cache_dir())
    step = progress or (lambda _m: None)
    if not package.is_file():
        raise DataError(f"{package} does not exist")
    try:
        names = zipfile.ZipFile(package).namelist()
    except zipfile.BadZipFile:
        raise DataError(f"{package} is not a zip file; pass a bioimage.io package or a CSBDeep/StarDist TF_SavedModel.zip") from None
    from ..untrusted import inspect_package

    inspect_package(package, trust_code=True, require_rdf=False)  # only TF/ONNX weights run here, never package code
    with tempfile.TemporaryDirectory(prefix="fijiport-matrix-") as tmp_str:
        tmp = Path(tmp_str)
        if any(n == "rdf.yaml" or n.endswith("bioimageio.yaml") for n in names):
            return _check_bioimageio(package, cache_dir, tmp, step)
        if "saved_model.pb" in names:
            return _check_saved_model_zip(package, cache_dir, tmp, step)
    raise DataError(f"{package} holds neither rdf.yaml (bioimage.io) nor saved_model.pb at its root (CSBDeep/KNIME zip)")


def _safe_extract(zip_path: Path, dest: Path, member: Optional[str] = None) -> None:
    dest = dest.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if member is not None and info.filename != member:
                continue
            target = (dest / info.filename).resolve()
            if dest not in target.parents and target != dest:
                raise DataError(f"{zip_path}: entry {info.filename!r} points outside the archive; refusing to unpack it")
            zf.extract(info, dest)


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


def _compare(y: np.ndarray, ref: np.ndarray, atol: float, rtol: float, ppm: float = 0.0) -> tuple[bool, float, str]:
    from ..validation import within_tolerance

    if y.shape != ref.shape:
        return False, float("nan"), f"output shape {list(y.shape)} instead of {list(ref.shape)}"
    diff = np.abs(y.astype(np.float64) - ref.astype(np.float64))
    ok, n_bad = within_tolerance(y, ref, atol, rtol, ppm)
    return ok, float(diff.max()) if diff.size else 0.0, (f"{n_bad} element(s) outside the tolerance" if n_bad else "")


def _record(matrix: RuntimeMatrix, runtime: str, weights: str, outcome: RunOutcome, ref: np.ndarray,
            post: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> RuntimeRun:
    if not outcome.ok:
        status = "missing" if outcome.stage == "runtime" else "failed"
        run = RuntimeRun(runtime, weights, status, outcome.reported_version, None, f"{outcome.stage}: {outcome.error}".strip(": "))
    else:
        y = post(outcome.output) if post else outcome.output
        ok, diff, why = _compare(y, ref, *matrix.tolerance, matrix.mismatch_ppm)
        run = RuntimeRun(runtime, weights, "passed" if ok else "failed", outcome.reported_version, diff,
                         why or ("" if ok else f"max |diff| {diff:.3g} exceeds the tolerance"))
    matrix.runs.append(run)
    return run


def _fill_rows(matrix: RuntimeMatrix, runs: dict[tuple[str, str], RuntimeRun], applicable: Callable[[str], Optional[str]]) -> None:
    for consumer, runtime, weights in CONSUMERS:
        reason = applicable(consumer)
        if reason:
            matrix.rows.append(ConsumerRow(consumer, runtime, weights, "n/a", None, reason))
            continue
        run = runs.get((runtime, weights))
        if run is None:
            matrix.rows.append(ConsumerRow(consumer, runtime, weights, "failed", None, f"the package has no {weights} weights"))
        else:
            matrix.rows.append(ConsumerRow(consumer, runtime, weights, run.status, run.max_abs_diff, run.error))


def _check_bioimageio(package: Path, cache_dir: Path, tmp: Path, step) -> RuntimeMatrix:
    from bioimageio.spec import load_model_description
    from bioimageio.spec.utils import extract_file_name

    from .._bioimageio_compat import offline_tolerant_github_check
    from ..validation import _tolerance, mismatch_allowance

    with offline_tolerant_github_check():  # spec 0.4 packages are read as 0.5 ("latest")
        descr = load_model_description(package, perform_io_checks=False, format_version="latest")
    matrix = RuntimeMatrix(str(package), "bioimage.io", "the package's test output", _tolerance(descr),
                           mismatch_ppm=mismatch_allowance(descr))
    in_id, out_id = descr.inputs[0].id, descr.outputs[0].id
    x, ref, postprocess = network_test_io(descr)

    runs: dict[tuple[str, str], RuntimeRun] = {}
    weights = {name: entry for name, entry in descr.weights if entry is not None}
    if "tensorflow_saved_model_bundle" in weights:
        entry = weights["tensorflow_saved_model_bundle"]
        bundle_name = extract_file_name(entry.source)
        _safe_extract(package, tmp / "pkg", bundle_name)
        bundle_zip = tmp / "pkg" / bundle_name
        sm_dir = tmp / "saved_model"
        if not zipfile.is_zipfile(bundle_zip):
            raise DataError(f"{package}: its tensorflow_saved_model_bundle {bundle_name} is missing or not a zip")
        _safe_extract(bundle_zip, sm_dir)
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
                outcome = run_saved_model(BY_NAME[rt], cache_dir, root, x, input_op=io_names[0], input_index=io_names[1],
                                          output_op=io_names[2], output_index=io_names[3])
            runs[(rt, "tensorflow_saved_model_bundle")] = _record(matrix, rt, "tensorflow_saved_model_bundle", outcome, ref, postprocess)
    if "onnx" in weights:
        entry = weights["onnx"]
        onnx_name = extract_file_name(entry.source)
        _safe_extract(package, tmp / "pkg", onnx_name)
        step(f"running the ONNX weights on {ORT113}")
        outcome = run_onnx_model(BY_NAME[ORT113], cache_dir, tmp / "pkg" / onnx_name, x, input_name=str(in_id))
        runs[(ORT113, "onnx")] = _record(matrix, ORT113, "onnx", outcome, ref, postprocess)

    n_space = sum(1 for a in descr.inputs[0].axes if a.type == "space")
    _fill_rows(matrix, runs, _applicability(_is_stardist(descr), n_space, bare_zip=False))
    return matrix


def _applicability(is_stardist: bool, n_space: int, *, bare_zip: bool) -> Callable[[str], Optional[str]]:
    """Why a consumer does not apply to a model (None when it does)."""

    def why_not(consumer: str) -> Optional[str]:
        if bare_zip and consumer.startswith("deepImageJ"):
            return "deepImageJ loads bioimage.io packages, not bare SavedModel zips"
        if consumer == "StarDist-Fiji" and not is_stardist:
            return "StarDist-Fiji runs StarDist models only"
        if consumer == "StarDist-Fiji" and n_space != 2:
            return "StarDist-Fiji segments 2D images only"
        if consumer == "CSBDeep-Fiji" and is_stardist:
            return "StarDist models run in StarDist-Fiji" if n_space == 2 else "CSBDeep-Fiji does not run StarDist models"
        return None

    return why_not


def network_test_io(descr) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The network's input for the package's test input (after the rdf's preprocessing), the
    package's test output, and the rdf's postprocessing as a function on raw network output."""
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.digest_spec import get_test_input_sample, get_test_output_sample
    from bioimageio.core.proc_setup import setup_pre_and_postprocessing

    in_id, out_id = descr.inputs[0].id, descr.outputs[0].id
    sample = get_test_input_sample(descr)
    pre, post = setup_pre_and_postprocessing(descr, [sample])
    for op in pre:
        op(sample)
    in_dims = tuple(str(a.id) for a in descr.inputs[0].axes)
    out_dims = tuple(str(a.id) for a in descr.outputs[0].axes)
    x = sample.members[in_id].data.transpose(*in_dims).to_numpy().astype(np.float32)
    ref = get_test_output_sample(descr).members[out_id].data.transpose(*out_dims).to_numpy()

    def postprocess(y: np.ndarray) -> np.ndarray:
        if not post:
            return y
        out = Sample(members={out_id: Tensor.from_numpy(y, dims=out_dims)}, stat=sample.stat, id="fijiport")
        for op in post:
            op(out)
        return out.members[out_id].data.transpose(*out_dims).to_numpy()

    return x, ref, postprocess


def _is_stardist(descr) -> bool:
    config = getattr(descr, "config", None) or {}
    cfg = config if isinstance(config, dict) else getattr(config, "model_extra", None) or {}
    kind = (cfg.get("fijiport") or {}).get("kind") if isinstance(cfg.get("fijiport"), dict) else None
    return kind == "stardist" or "stardist" in cfg or "stardist" in str(getattr(descr, "name", "")).lower()


def _check_saved_model_zip(package: Path, cache_dir: Path, tmp: Path, step) -> RuntimeMatrix:
    import tensorflow as tf

    root = tmp / "saved_model"
    _safe_extract(package, root)
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
        x = _synthetic_input(shape, meta)
        ref = sess.run(graph.get_tensor_by_name(f"{out_op}:{out_idx}"), {t_in: x})
    matrix = RuntimeMatrix(str(package), "SavedModel zip", f"TensorFlow {tf.__version__} on a seeded input {list(x.shape)}", (1e-3, 1e-3))
    runs: dict[tuple[str, str], RuntimeRun] = {}
    for rt in (TF113, TF115, TF210):
        step(f"running the SavedModel on {rt}")
        outcome = run_saved_model(BY_NAME[rt], cache_dir, root, x, input_op=in_op, input_index=in_idx, output_op=out_op, output_index=out_idx)
        runs[(rt, "tensorflow_saved_model_bundle")] = _record(matrix, rt, "tensorflow_saved_model_bundle", outcome, ref)
    is_stardist = "stardist" in str(meta.get("type", "")).lower() or "n_rays" in meta
    n_space = sum(1 for a in str(meta.get("axes", "YX")).upper() if a in "ZYX")
    _fill_rows(matrix, runs, _applicability(is_stardist, n_space, bare_zip=True))
    return matrix


def _synthetic_input(shape: list[Optional[int]], meta: dict[str, Any]) -> np.ndarray:
    """A seeded, smooth, image-like input of a size every axis accepts (csbdeep's axes_div_by)."""
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
