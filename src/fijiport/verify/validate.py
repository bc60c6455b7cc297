"""``fijiport validate``: is a bioimage.io model package valid, does every weight format reproduce
its test output, and do the formats agree with each other?

Validation never raises for a bad package: it returns a :class:`~fijiport.package.report.Report` whose
checks say what passed and what failed. bioimageio.core's tests run in a child process in the Keras 3
world with a temporary working directory (see :mod:`fijiport.verify.worker`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from .._tf import keras3_env
from ..artifacts.model_folder import CONFIG_JSON
from ..errors import FijiportError
from ..package.jdll import READER, RULES, jdll_problems
from ..package.read import load_description, weight_formats
from ..package.report import Report, Status
from ..package.tolerance import agree, tolerance_for
from ..package.untrusted import RDF_NAMES, inspect_package
from ..runtimes.matrix import check_runtimes

log = logging.getLogger(__name__)

TITLE = "Validation"
REFERENCE_FORMATS = ("keras_hdf5", "keras_v3")
"""Formats whose output is the reference for cross-format agreement (the weights a model was trained as)."""
ValidationReport = Report


def validate_package(
    package: Path,
    *,
    timeout: float = 1800,
    progress: Optional[Callable[[str], None]] = None,
    runtimes: bool = False,
    cache_dir: Optional[Path] = None,
    trust_code: bool = False,
) -> Report:
    """Validate a bioimage.io model package (zip or rdf.yaml), whoever wrote it: untrusted-content checks, the spec,
    bioimageio.core's test of every weight format (in a child process) and the formats' agreement.

    With ``runtimes``, also run its weights on the runtimes Fiji, deepImageJ and KNIME embed
    (:func:`fijiport.runtimes.matrix.check_runtimes`): the matrix is kept as ``parts["runtime_matrix"]`` and
    each consumer that applies adds a check.

    Parameters
    ----------
    package
        The package (zip, rdf.yaml or its folder).
    timeout
        Seconds the official test may take.
    progress
        Called with a short description of each step (e.g. :class:`fijiport.notebook.StepBar`).
    runtimes
        Also run the runtime matrix (the runtimes must be installed: ``fijiport runtimes install``).
    cache_dir
        Where the runtimes are installed (default ``~/.cache/fijiport/runtimes`` or ``$FIJIPORT_RUNTIMES_DIR``).
    trust_code
        Accept packages whose weights need their own Python code (refused by default).

    Returns
    -------
    Report
        Every check with its status; ``passed`` only if nothing failed (``to_markdown()``, ``save_json()``).
    """
    report = _validate_core(package, timeout=timeout, progress=progress, trust_code=trust_code)
    if runtimes:
        if any(c.key in ("package", "safe") and c.status == Status.FAILED for c in report.checks) or not Path(package).exists():
            report.add("runtimes", Status.FAILED, "not run: the package was refused before anything opened it", key="runtimes")
            return report
        try:
            matrix = check_runtimes(Path(package), cache_dir, progress=progress, trust_code=trust_code)
        except FijiportError as e:
            report.add("runtimes", Status.FAILED, str(e))
            return report
        report.parts["runtime_matrix"] = matrix
        for row in matrix.checks:
            report.add(
                f"runtime: {row.name}",
                row.status,
                f"{row.runtime}; {row.details}".strip("; "),
                key=row.key,
                weight_format=row.weight_format,
                runtime=row.runtime,
                max_abs_diff=row.max_abs_diff,
            )
    return report


def _validate_core(package: Path, *, timeout: float, progress: Optional[Callable[[str], None]], trust_code: bool = False) -> Report:
    step = progress or (lambda _m: None)
    package = Path(package)
    report = Report(str(package), TITLE)
    if not package.exists():
        report.add("package exists", Status.FAILED, f"{package} does not exist")
        return report
    if package.is_dir() and (package / CONFIG_JSON).is_file() and not any((package / n).is_file() for n in RDF_NAMES):
        details = f"{package} is a model folder, not a package; export it first with `fijiport export {package} -o model.zip`"
        report.add("a bioimage.io package", Status.FAILED, details, key="package")
        return report

    step("checking the package is safe to open")
    try:
        rdf = inspect_package(package, trust_code=trust_code)
    except FijiportError as e:
        report.add("safe to open", Status.FAILED, str(e), key="safe")
        return report
    report.add(
        "safe to open",
        Status.PASSED,
        "plain files inside the package, plain YAML, no pickles, sizes and sha256 as declared"
        + ("" if trust_code else ", TensorFlow/ONNX graphs of inference ops only"),
        key="safe",
    )
    deepimagej_reader_check(report, rdf)

    # the package is safe to open: start bioimageio.core's tests in their own process now, and check the rdf
    # against the spec here meanwhile (the two overlap; the spec check does not need the test's result)
    with tempfile.TemporaryDirectory(prefix="fijiport-validate-") as tmp_str:
        tmp = Path(tmp_str)
        out_dir, work_dir = tmp / "out", tmp / "work"
        out_dir.mkdir()
        work_dir.mkdir()
        cmd = [sys.executable, "-m", "fijiport.verify.worker", str(package.resolve()), str(out_dir)]
        log_path = tmp / "worker.log"  # a file, not a pipe: the worker never waits for the parent to read
        started = time.monotonic()
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(cmd, cwd=work_dir, env=keras3_env(), stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            step("validating the rdf against the bioimage.io spec")
            descr = _spec_validation(package, report)
            if descr is None:
                return report
            report.context["weight_formats"] = weight_formats(descr)
            step(f"running bioimageio.core tests ({', '.join(report.context['weight_formats'])})")
            try:
                proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                report.add("bioimageio.core test", Status.FAILED, f"did not finish within {timeout:.0f} s")
                return report
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        results_path = out_dir / "results.json"
        if proc.returncode != 0 or not results_path.is_file():
            tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-5:])
            report.add("bioimageio.core test", Status.FAILED, f"the test process failed (exit {proc.returncode}): {tail}")
            return report
        results = json.loads(results_path.read_text())
        outputs, errors = {}, {}
        for fmt, rec in results["formats"].items():
            _format_check(report, fmt, rec)
            if rec.get("output"):
                outputs[fmt] = np.load(out_dir / rec["output"])
            elif rec.get("prediction_error"):
                errors[fmt] = f"predicting the test input failed: {rec['prediction_error']}"
        _agreement_checks(report, descr, outputs, errors)
    return report


def deepimagej_reader_check(report: Report, rdf: dict) -> None:
    """Whether deepImageJ 3.x's own rdf reader (JDLL) takes the rdf, rule by rule (:mod:`fijiport.package.jdll`). A
    warning, not a failure: the package is valid and runs elsewhere; deepImageJ would throw on opening it."""
    problems = jdll_problems(rdf)
    name = f"{READER} can read this rdf"
    if not problems:
        report.add(name, Status.PASSED, f"every one of the {len(RULES)} rules of JDLL's rdf reader holds", key="deepimagej-reader")
        return
    rules = list(dict.fromkeys(rule for rule, _ in problems))
    details = "; ".join(f"{text} ({RULES[rule].where})" for rule, text in problems[:4]) + (
        f"; {len(problems) - 4} more" if len(problems) > 4 else ""
    )
    fix = "write it so: " + "; ".join(RULES[r].rule for r in rules) + " (`fijiport convert` writes packages in these forms)"
    report.add(name, Status.WARNING, details, fix=fix, key="deepimagej-reader")


def weight_formats_of(report: Report) -> list[str]:
    """The weight formats a validation report covers."""
    return list(report.context.get("weight_formats", []))


def _spec_validation(package: Path, report: Report):
    from bioimageio.spec.model import v0_4, v0_5

    try:
        descr = load_description(package, io_checks=True)
    except Exception as e:
        msg = str(e).strip().splitlines()
        report.add("bioimage.io spec", Status.FAILED, f"{type(e).__name__}: {' '.join(msg[:6])}", key="spec")
        return None
    if not isinstance(descr, (v0_4.ModelDescr, v0_5.ModelDescr)):
        report.add("bioimage.io spec", Status.FAILED, f"{package} is not a model description ({type(descr).__name__})", key="spec")
        return None
    fmt = getattr(descr, "format_version", "?")
    warnings = []
    for d in descr.validation_summary.details:
        warnings += [w.msg for w in d.warnings]
    report.add("bioimage.io spec", Status.PASSED, f"model format {fmt}", key="spec")
    for w in dict.fromkeys(warnings):
        report.add("bioimage.io spec warning", Status.WARNING, w, key="spec-warning")
    if isinstance(descr, v0_4.ModelDescr):  # the rest works on the 0.5 form of older packages
        descr = load_description(package)
    return descr


def _format_check(report: Report, fmt: str, rec: dict) -> None:
    if rec.get("error"):
        report.add("bioimageio.core test", Status.FAILED, rec["error"], weight_format=fmt, key="core-test")
        return
    failed = [d for d in rec.get("details", []) if d["status"] == "failed"]
    if rec["status"] in ("passed", "valid-format") and not failed:
        n = len(rec.get("details", []))
        report.add("bioimageio.core test", Status.PASSED, f"{n} checks passed", weight_format=fmt, key="core-test")
    else:
        msgs = []
        for d in failed:
            msgs.append(f"{d['name']}: " + "; ".join(e for e in d["errors"])[:400])
        report.add("bioimageio.core test", Status.FAILED, " | ".join(msgs) or f"status {rec['status']}", weight_format=fmt, key="core-test")


def _agreement_checks(report: Report, descr, outputs: dict[str, np.ndarray], errors: Optional[dict[str, str]] = None) -> None:
    """Each weight format's output against the Keras reference (else the test output), with the package's tolerance;
    ``errors``: why a format gave no output (the worker's ``prediction_error``)."""
    errors = errors or {}
    reference_fmt = next((f for f in REFERENCE_FORMATS if f in outputs), None)
    if reference_fmt is not None:
        reference, ref_name = outputs[reference_fmt], reference_fmt
    else:
        from bioimageio.core.digest_spec import get_test_output_sample

        sample = get_test_output_sample(descr)
        reference = sample.members[descr.outputs[0].id].data.to_numpy()
        ref_name = "the package's test output"
    for fmt in weight_formats_of(report):
        if fmt == reference_fmt:
            continue
        if fmt not in outputs:
            why = errors.get(fmt) or "this format did not run"
            report.add("agreement", Status.FAILED, f"no output: {why}", weight_format=fmt, key="agreement")
            continue
        tolerance = tolerance_for(descr, fmt)
        a = agree(outputs[fmt], reference, tolerance)
        if a.max_abs_diff is None:
            report.add("agreement", Status.FAILED, f"{a.reason} ({ref_name})", weight_format=fmt, key="agreement")
            continue
        detail = f"vs {ref_name}, tolerance {tolerance.describe()}" + (f"; {a.n_outside} element(s) outside" if a.n_outside else "")
        report.add(
            "agreement", Status.PASSED if a.ok else Status.FAILED, detail, weight_format=fmt, max_abs_diff=a.max_abs_diff, key="agreement"
        )
