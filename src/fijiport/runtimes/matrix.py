"""The compatibility matrix: each consumer (Fiji plugin, deepImageJ engine, KNIME) against the
runtime it embeds, measured by running the package's weights on that runtime.

What a row measures is the runtime, not the plugin (:data:`MEASURES`): the weights a consumer loads, run on
the runtime library it embeds (TensorFlow's C library, onnxruntime-node) in a child process. Consumers that embed
the same runtime share one run: CSBDeep-Fiji, StarDist-Fiji and deepImageJ's TF1 engine are one TensorFlow 1.15.0
run. The reference:

- bioimage.io packages (zip, folder or rdf.yaml): the package's test input through the rdf's preprocessing, and its
  test output, compared after the rdf's postprocessing as bioimageio.core applies it (StarDist labels come from
  bioimageio.core's Python ``stardist_postprocessing``, not from StarDist-Fiji's Java NMS).
- CSBDeep/StarDist/KNIME SavedModel zips (or their unpacked folders): the trained model's test input and output
  that fijiport records in its Fiji zips (``test_input.npy``/``test_output.npy``); else the Keras model of
  ``reference`` (a model folder) on a seeded input; else nothing trained: the runtimes are compared with each
  other and the rows are warnings, "consistent across runtimes (no trained reference)", never passed.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import numpy as np

from ..errors import DataError
from ..export.convert import probe_input
from ..export.fiji_zip import TEST_INPUT, TEST_OUTPUT
from ..kinds import CARE, N2V, STARDIST, ModelKind, kind_of_fiji_meta, kind_of_package
from ..package.graphs import SignatureIO, serving_signature
from ..package.read import config_dict, load_description, network_test_io
from ..package.report import Check, Report, Status
from ..package.tolerance import Tolerance, agree, tolerance_for
from ..package.untrusted import RDF_NAMES, PackageFiles, inspect_package, safe_extract
from .registry import BY_NAME, default_cache_dir
from .run import RunOutcome, run_onnx_model, run_saved_model

log = logging.getLogger(__name__)

TF113, TF115, TF210, ORT113 = "tensorflow-1.13.1", "tensorflow-1.15.0", "tensorflow-2.10.1", "onnxruntime-1.13.1"


@dataclass(frozen=True)
class Consumer:
    name: str
    runtime: str
    weights: str
    """The weight format it loads."""
    embeds: str
    """The runtime inside it, as it ships."""


CONSUMERS: tuple[Consumer, ...] = (
    Consumer("CSBDeep-Fiji", TF115, "tensorflow_saved_model_bundle", "TensorFlow Java 1.15.0"),
    Consumer("StarDist-Fiji", TF115, "tensorflow_saved_model_bundle", "TensorFlow Java 1.15.0 (through CSBDeep-Fiji)"),
    Consumer("N2V-Fiji", TF115, "tensorflow_saved_model_bundle", "TensorFlow Java 1.15.0 (through imagej-tensorflow)"),
    Consumer("deepImageJ (TF1)", TF115, "tensorflow_saved_model_bundle", "JDLL's TensorFlow 1.15 engine"),
    Consumer("deepImageJ (TF2)", TF210, "tensorflow_saved_model_bundle", "JDLL's TensorFlow 2.10.1 engine"),
    Consumer("deepImageJ (ONNX)", ORT113, "onnx", "JDLL's onnxruntime 1.13.1 engine"),
    Consumer("KNIME", TF113, "tensorflow_saved_model_bundle", "TensorFlow Java 1.13.1"),
)
MEASURES = (
    "Runtime level, not plugin level: each row runs the weights that consumer loads on the runtime library it embeds "
    "(TensorFlow's C library from the official wheel through the TF C API, or onnxruntime-node), in a child process, on "
    "the whole test input; the plugins themselves (their Java tiling, normalisation and tensor conversion, "
    "StarDist-Fiji's non-maximum suppression) do not run here. Rows that name the same runtime share one run: "
    "CSBDeep-Fiji, StarDist-Fiji, N2V-Fiji and deepImageJ (TF1) are one TensorFlow 1.15.0 run."
)
NO_REFERENCE = "consistent across runtimes (no trained reference)"

RuntimeMatrix = Report
"""A runtime matrix is a :class:`~fijiport.package.report.Report`: one check per consumer (``name`` the consumer,
``runtime`` and ``weight_format`` what it loads), one measurement per runtime run, and in ``context`` the package
kind, the model kind, the reference the outputs were compared with, the tolerance, what the rows measure
(``measures``, and per consumer ``rows``) and which consumers share a run (``shared_runs``)."""
TITLE = "Runtime matrix"


def _matrix(
    package: Path, package_kind: str, reference: str, tolerance: Tolerance, rows: dict[str, str], kind: Optional[ModelKind]
) -> Report:
    shared: dict[str, list[str]] = {}
    for c in CONSUMERS:
        shared.setdefault(c.runtime, []).append(c.name)
    return Report(
        str(package),
        TITLE,
        context={
            "package_kind": package_kind,
            "kind": kind.name if kind else None,
            "reference": reference,
            "tolerance": tolerance.to_dict(),
            "measures": MEASURES,
            "rows": rows,
            "shared_runs": {rt: names for rt, names in shared.items() if len(names) > 1},
        },
    )


def matrix_tolerance(matrix: Report) -> Tolerance:
    return Tolerance.from_dict(matrix.context.get("tolerance", {}))


def _row_texts(kind: Optional[ModelKind], *, bare_zip: bool, labels: bool) -> dict[str, str]:
    """What each consumer's row measures, in a sentence."""
    out = {}
    for c in CONSUMERS:
        what = "the SavedModel zip" if bare_zip else f"the package's {c.weights} weights"
        text = f"{what} on {c.runtime.replace('tensorflow-', 'TensorFlow ').replace('onnxruntime-', 'onnxruntime-node ')} ({c.embeds})"
        if c.runtime == TF115 and c.name != "CSBDeep-Fiji":
            text += ", the same run as CSBDeep-Fiji's"
        if labels:
            text += "; labels from bioimageio.core's Python stardist_postprocessing on that run's prob/dist, not StarDist-Fiji's Java NMS"
        elif bare_zip and kind is STARDIST:
            text += "; the network's prob/dist only (StarDist-Fiji's NMS is not run)"
        out[c.name] = text
    return out


def check_runtimes(
    package: Path,
    cache_dir: Optional[Path] = None,
    *,
    reference: Optional[Path] = None,
    progress: Optional[Callable[[str], None]] = None,
    trust_code: bool = False,
) -> Report:
    """Run ``package`` on every consumer runtime.

    Parameters
    ----------
    package
        A bioimage.io package (zip, folder or its rdf.yaml), a CSBDeep-Fiji/KNIME SavedModel zip (or its unpacked
        folder) or an N2V plugin zip.
    cache_dir
        Where the runtimes are installed (default ``~/.cache/fijiport/runtimes`` or ``$FIJIPORT_RUNTIMES_DIR``).
    reference
        A model folder whose Keras model is the reference for a SavedModel zip without recorded test tensors.
    progress
        Called with a short description of each step.
    trust_code
        Load graphs whose ops are outside the inference allow-list (only for models from people you trust).

    Returns
    -------
    Report
        One check per consumer (CSBDeep-Fiji, StarDist-Fiji, N2V-Fiji, deepImageJ's engines, KNIME): passed, failed or
        n/a, with the runtime, what the row measures and the max |diff| to the reference.
    """
    package = Path(package)
    cache_dir = Path(cache_dir or default_cache_dir())
    step = progress or (lambda _m: None)
    if not package.exists():
        raise DataError(f"{package} does not exist")
    layout = _layout(package)
    # before anything opens the package: plain files, and graphs of inference ops only (nothing here runs package code)
    inspect_package(package, trust_code=True, require_rdf=False, trust_graphs=trust_code)
    with tempfile.TemporaryDirectory(prefix="fijiport-matrix-") as tmp_str:
        tmp = Path(tmp_str)
        if layout == "n2v_plugin":
            return _check_n2v_plugin_zip(package, cache_dir, tmp, step)
        if layout == "bioimageio":
            if reference is not None:
                raise DataError(
                    f"--reference is for SavedModel zips; {package} is a bioimage.io package, whose own test output is the reference"
                )
            return _check_bioimageio(package, cache_dir, tmp, step)
        root = package
        if package.is_file():
            root = tmp / "saved_model"
            safe_extract(package, root)
        return _check_saved_model(package, root, cache_dir, step, reference)


def _layout(package: Path) -> str:
    """``bioimageio`` or ``saved_model``, from the files; refuses anything else with what was expected."""
    if package.is_dir():
        if any((package / n).is_file() for n in RDF_NAMES):
            return "bioimageio"
        if (package / "saved_model.pb").is_file():
            return "saved_model"
        raise DataError(f"{package} holds neither rdf.yaml (a bioimage.io package folder) nor saved_model.pb (an unpacked SavedModel)")
    if package.suffix.lower() in (".yaml", ".yml"):
        return "bioimageio"
    try:
        names = zipfile.ZipFile(package).namelist()
    except zipfile.BadZipFile:
        raise DataError(f"{package} is not a zip file; pass a bioimage.io package or a CSBDeep/StarDist TF_SavedModel.zip") from None
    if "rdf.yaml" in names and _n2v_plugin_rdf(package) is not None:
        return "n2v_plugin"
    if any(PurePosixPath(n).name in RDF_NAMES for n in names):
        return "bioimageio"
    if "saved_model.pb" in names:
        return "saved_model"
    raise DataError(f"{package} holds neither rdf.yaml (bioimage.io) nor saved_model.pb at its root (CSBDeep/KNIME zip)")


def _record(
    matrix: Report,
    runtime: str,
    weights: str,
    outcome: RunOutcome,
    ref: Optional[np.ndarray],
    post: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> Check:
    """One runtime run as a measurement: failed, or compared with ``ref`` (None: kept for the consistency check)."""
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
    elif ref is None:
        run = Check(
            f"{runtime}: {weights}",
            Status.WARNING,
            NO_REFERENCE,
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


def _consistency(matrix: Report, runs: dict[str, Check], outputs: dict[str, np.ndarray]) -> None:
    """Without a trained reference: each runtime's output against the first that ran (TF 2.10.1 first). Agreeing runs
    stay warnings (the outputs agree with each other, not with any trained model); disagreeing ones fail."""
    if not outputs:
        return
    anchor = next(rt for rt in (TF210, TF115, TF113) if rt in outputs)
    tolerance = matrix_tolerance(matrix)
    others = [rt for rt in outputs if rt != anchor]
    if not others:
        runs[anchor].details = "ran; no other runtime ran to compare with, and there is no trained reference"
        return
    diffs = []
    for rt in others:
        a = agree(outputs[rt], outputs[anchor], tolerance)
        runs[rt].max_abs_diff = a.max_abs_diff
        diffs.append(a.max_abs_diff if a.max_abs_diff is not None else float("inf"))
        if a.ok:
            runs[
                rt
            ].details = f"{NO_REFERENCE}: agrees with the {anchor} run (max |diff| {a.max_abs_diff:.2g}, tolerance {tolerance.describe()})"
        else:
            runs[rt].status = Status.FAILED
            runs[rt].details = f"disagrees with the {anchor} run: {a.reason}"
    finite = [d for d in diffs if d != float("inf")]
    runs[anchor].max_abs_diff = max(finite) if finite else None
    runs[anchor].details = f"{NO_REFERENCE}: the runs on {', '.join(others)} agree with this one"


def _fill_rows(matrix: Report, runs: dict[tuple[str, str], Check], applicable: Callable[[str], Optional[str]]) -> None:
    for c in CONSUMERS:
        row = dict(runtime=c.runtime, weight_format=c.weights, key=f"runtime:{c.name}")
        reason = applicable(c.name)
        if reason:
            matrix.add(c.name, Status.NOT_APPLICABLE, reason, **row)
            continue
        run = runs.get((c.runtime, c.weights))
        if run is None:
            matrix.add(c.name, Status.FAILED, f"the package has no {c.weights} weights", **row)
        else:
            matrix.add(c.name, run.status, run.details, max_abs_diff=run.max_abs_diff, reported_version=run.reported_version, **row)


def _package_file(package: Path, name: str, tmp: Path) -> Path:
    """A file of a package (zip: unpacked into ``tmp``; folder or rdf.yaml: in place, never outside the folder)."""
    name = name[2:] if name.startswith("./") else name
    files = PackageFiles(package)
    if files.zip is not None:
        safe_extract(package, tmp / "pkg", name)
        return tmp / "pkg" / name
    target = (files.root / name).resolve()
    if files.root.resolve() not in target.parents:
        raise DataError(f"{package}: the rdf refers to {name!r}, outside the package folder; refusing it")
    return target


def _check_bioimageio(package: Path, cache_dir: Path, tmp: Path, step) -> Report:
    from bioimageio.spec.model import v0_5
    from bioimageio.spec.utils import extract_file_name

    descr = load_description(package)  # spec 0.4 packages are read as 0.5
    if not isinstance(descr, v0_5.ModelDescr):
        raise DataError(f"{package} is not a readable bioimage.io model description; `fijiport validate {package}` says why")
    kind = kind_of_package(config_dict(descr), str(descr.name), list(descr.tags or []))
    labels = bool(descr.outputs[0].postprocessing) and any(
        getattr(p, "id", "") == "stardist_postprocessing" for p in descr.outputs[0].postprocessing
    )
    matrix = _matrix(
        package, "bioimage.io", "the package's test output", tolerance_for(descr), _row_texts(kind, bare_zip=False, labels=labels), kind
    )
    in_id, out_id = descr.inputs[0].id, descr.outputs[0].id
    x, ref, postprocess = network_test_io(descr)

    runs: dict[tuple[str, str], Check] = {}
    weights = {name: entry for name, entry in descr.weights if entry is not None}
    if "tensorflow_saved_model_bundle" in weights:
        bundle_name = extract_file_name(weights["tensorflow_saved_model_bundle"].source)
        bundle = _package_file(package, bundle_name, tmp)
        if bundle.is_dir():
            sm_dir = bundle
        elif zipfile.is_zipfile(bundle):
            sm_dir = tmp / "saved_model"
            safe_extract(bundle, sm_dir)
        else:
            raise DataError(f"{package}: its tensorflow_saved_model_bundle {bundle_name} is missing or not a zip")
        root = sm_dir if (sm_dir / "saved_model.pb").is_file() else next((p.parent for p in sm_dir.rglob("saved_model.pb")), sm_dir)
        try:
            io: Optional[SignatureIO] = serving_signature(
                (root / "saved_model.pb").read_bytes(), f"{package} ({bundle_name})", str(in_id), str(out_id)
            )
            sig_error = ""
        except (DataError, OSError) as e:
            io, sig_error = None, f"cannot read the SavedModel signature: {e}"
        for rt in (TF113, TF115, TF210):
            step(f"running the SavedModel on {rt}")
            outcome = RunOutcome(False, stage="signature", error=sig_error) if io is None else _run_tf(rt, cache_dir, root, x, io)
            runs[(rt, "tensorflow_saved_model_bundle")] = _record(matrix, rt, "tensorflow_saved_model_bundle", outcome, ref, postprocess)
    if "onnx" in weights:
        onnx_path = _package_file(package, extract_file_name(weights["onnx"].source), tmp)
        step(f"running the ONNX weights on {ORT113}")
        outcome = run_onnx_model(BY_NAME[ORT113], cache_dir, onnx_path, x, input_name=str(in_id))
        runs[(ORT113, "onnx")] = _record(matrix, ORT113, "onnx", outcome, ref, postprocess)

    n_space = sum(1 for a in descr.inputs[0].axes if getattr(a, "type", "") == "space")
    _fill_rows(matrix, runs, _applicability(kind, n_space, bare_zip=False))
    return matrix


def _run_tf(rt: str, cache_dir: Path, root: Path, x: np.ndarray, io: SignatureIO) -> RunOutcome:
    return run_saved_model(
        BY_NAME[rt],
        cache_dir,
        root,
        x,
        input_op=io.input_op,
        input_index=io.input_index,
        output_op=io.output_op,
        output_index=io.output_index,
    )


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
            if n_space in kind.fiji_plugin_dims:
                return f"{kind.title} models run in {kind.fiji_plugin}"
            return f"{consumer} does not run {kind.title} models"
        if consumer == N2V.fiji_plugin:  # an N2V model: the plugin opens neither a 0.5 package nor a bare SavedModel zip
            return ("the N2V plugin opens its own zip (rdf 0.3): `fijiport export --fiji-zip` writes it as "
                    "NAME.n2v-plugin.zip; `fijiport runtimes check` that zip")  # fmt: skip
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
    rows = {c.name: "this zip's SavedModel on TensorFlow 1.15.0 (TensorFlow Java 1.15.0 through imagej-tensorflow), with the "
                    "rdf's zero_mean_unit_variance before and scale_linear after it" for c in CONSUMERS}  # fmt: skip
    matrix = _matrix(package, "N2V Fiji plugin zip", "the zip's test output, through its rdf's normalisation",
                     Tolerance(1e-3, 1e-3, 0.0), rows, N2V)  # fmt: skip
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
    io = serving_signature((tmp / "saved_model" / "saved_model.pb").read_bytes(), f"{package} (tf_saved_model_bundle.zip)", "input")
    step(f"running the SavedModel on {TF115}")
    outcome = _run_tf(TF115, cache_dir, tmp / "saved_model", (x - mean) / std, io)
    runs[(TF115, "tensorflow_saved_model_bundle")] = _record(matrix, TF115, "tensorflow_saved_model_bundle", outcome, ref,
                                                             lambda y: y * gain + offset)  # fmt: skip

    def why_not(consumer: str) -> Optional[str]:
        if consumer == N2V.fiji_plugin:
            return None
        return "this zip is for the N2V plugin only (CSBDeep-Fiji and KNIME load the Fiji zip, deepImageJ the bioimage.io package)"

    _fill_rows(matrix, runs, why_not)
    return matrix


def _read_meta(package: Path, root: Path) -> dict[str, Any]:
    if not (root / "meta.json").is_file():
        return {}
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("%s: meta.json is not valid JSON; ignoring it", package)
        return {}
    return meta if isinstance(meta, dict) else {}


def _recorded_tensors(package: Path, root: Path) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The test input and output a fijiport Fiji zip records (both, or None)."""
    if not ((root / TEST_INPUT).is_file() and (root / TEST_OUTPUT).is_file()):
        return None
    try:
        x, y = (np.load(root / n, allow_pickle=False) for n in (TEST_INPUT, TEST_OUTPUT))
    except ValueError as e:
        raise DataError(f"{package}: {TEST_INPUT}/{TEST_OUTPUT} are not plain .npy arrays ({e})") from None
    return x.astype(np.float32), y


def _keras_reference(reference: Path, x: np.ndarray, kind: Optional[ModelKind]) -> tuple[np.ndarray, str]:
    """The output of the model folder's Keras network (as fijiport exports it) for ``x``, and where it comes from."""
    from ..artifacts.model_folder import ModelFolder

    folder = ModelFolder.open(reference)
    if kind is not None and folder.kind is not kind:
        raise DataError(f"--reference {reference} is a {folder.kind.title} model folder, but the zip's meta.json says {kind.title}")
    net = folder.kind.exported_network(folder.load_keras())
    return np.asarray(
        net(x, training=False)
    ), f"the Keras model in {reference} ({folder.weights_path.name}) on a seeded input {list(x.shape)}"


def _check_saved_model(package: Path, root: Path, cache_dir: Path, step, reference: Optional[Path]) -> Report:
    meta = _read_meta(package, root)
    io = serving_signature((root / "saved_model.pb").read_bytes(), str(package))
    kind = kind_of_fiji_meta(meta)
    recorded = _recorded_tensors(package, root)
    ref: Optional[np.ndarray]
    if reference is not None:
        x = recorded[0] if recorded else probe_input(list(io.input_shape or (None, None, None, None)), meta)
        ref, ref_text = _keras_reference(reference, x, kind)
    elif recorded is not None:
        (x, ref), ref_text = recorded, f"the trained model's output recorded in the zip ({TEST_OUTPUT}, written by fijiport export)"
    else:
        x, ref = probe_input(list(io.input_shape or (None, None, None, None)), meta), None
        ref_text = f"none: {NO_REFERENCE}, on a seeded input {list(x.shape)}; pass --reference MODEL_DIR to compare with the trained model"
    matrix = _matrix(package, "SavedModel zip", ref_text, Tolerance(1e-3, 1e-3, 0.0), _row_texts(kind, bare_zip=True, labels=False), kind)
    runs: dict[tuple[str, str], Check] = {}
    outputs: dict[str, np.ndarray] = {}
    for rt in (TF113, TF115, TF210):
        step(f"running the SavedModel on {rt}")
        outcome = _run_tf(rt, cache_dir, root, x, io)
        runs[(rt, "tensorflow_saved_model_bundle")] = _record(matrix, rt, "tensorflow_saved_model_bundle", outcome, ref)
        if outcome.ok and ref is None:
            assert outcome.output is not None
            outputs[rt] = outcome.output
    if ref is None:
        _consistency(matrix, {rt: c for (rt, _), c in runs.items()}, outputs)
    axes = str(meta.get("axes", "")).upper()
    n_space = sum(1 for a in axes if a in "ZYX") if axes else max(len(io.input_shape or (0, 0, 0, 0)) - 2, 0)
    _fill_rows(matrix, runs, _applicability(kind, n_space, bare_zip=True))
    return matrix
