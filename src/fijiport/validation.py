"""``fijiport validate``: is a bioimage.io model package valid, does every weight format reproduce
its test output, and do the formats agree with each other?

Validation never raises for a bad package: it returns a :class:`ValidationReport` whose checks say
what passed and what failed. bioimageio.core's tests run in a child process in the Keras 3 world
with a temporary working directory (see :mod:`fijiport._validation_worker`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from ._tf import keras3_env
from .files import atomic_file

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "warning", "skipped"]
REFERENCE_FORMATS = ("keras_hdf5", "keras_v3")
"""Formats whose output is the reference for cross-format agreement (the weights a model was trained as)."""


@dataclass
class Check:
    name: str
    status: Status
    details: str = ""
    weight_format: Optional[str] = None
    max_abs_diff: Optional[float] = None


@dataclass
class ValidationReport:
    source: str
    checks: list[Check] = field(default_factory=list)
    weight_formats: list[str] = field(default_factory=list)
    runtime_matrix: Optional[dict] = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.status in ("passed", "warning", "skipped") for c in self.checks) and any(
            c.status == "passed" for c in self.checks
        )

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    def add(self, *args, **kwargs) -> Check:
        check = Check(*args, **kwargs)
        self.checks.append(check)
        return check

    def to_dict(self) -> dict:
        out = {"source": self.source, "status": self.status, "weight_formats": self.weight_formats,
               "checks": [asdict(c) for c in self.checks]}
        if self.runtime_matrix is not None:
            out["runtime_matrix"] = self.runtime_matrix
        return out

    def to_markdown(self) -> str:
        lines = [f"# Validation of `{Path(self.source).name}`", "", f"**{self.status.upper()}**", "",
                 "| check | weights | status | max \\|diff\\| | details |", "|---|---|---|---|---|"]
        for c in self.checks:
            diff = "" if c.max_abs_diff is None else f"{c.max_abs_diff:.2g}"
            details = c.details.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {c.name} | {c.weight_format or ''} | {c.status} | {diff} | {details} |")
        return "\n".join(lines) + "\n"

    def save_json(self, path: Path) -> None:
        with atomic_file(Path(path), overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def save_markdown(self, path: Path) -> None:
        with atomic_file(Path(path), overwrite=True) as tmp:
            tmp.write_text(self.to_markdown())


def validate_package(package: Path, *, timeout: float = 1800, progress: Optional[Callable[[str], None]] = None,
                     runtimes: bool = False, cache_dir: Optional[Path] = None, trust_code: bool = False) -> ValidationReport:
    """Validate a bioimage.io model package (zip or rdf.yaml), whoever wrote it.

    With ``runtimes``, also run its weights on the runtimes Fiji, deepImageJ and KNIME embed
    (:func:`fijiport.runtimes.matrix.check_runtimes`) and add one check per consumer.
    """
    report = _validate_core(package, timeout=timeout, progress=progress, trust_code=trust_code)
    if runtimes and Path(package).is_file():
        from .errors import FijiportError
        from .runtimes.matrix import check_runtimes

        try:
            matrix = check_runtimes(Path(package), cache_dir, progress=progress)
        except FijiportError as e:
            report.add("runtimes", "failed", str(e))
            return report
        report.runtime_matrix = matrix.to_dict()
        for row in matrix.rows:
            status = {"passed": "passed", "n/a": "skipped"}.get(row.status, "failed")
            report.add(f"runtime: {row.consumer}", status, f"{row.runtime}; {row.detail}".strip("; "),
                       weight_format=row.weights, max_abs_diff=row.max_abs_diff)
    return report


def _validate_core(package: Path, *, timeout: float, progress: Optional[Callable[[str], None]],
                   trust_code: bool = False) -> ValidationReport:
    step = progress or (lambda _m: None)
    package = Path(package)
    report = ValidationReport(str(package))
    if not package.exists():
        report.add("package exists", "failed", f"{package} does not exist")
        return report

    step("checking the package is safe to open")
    from .errors import FijiportError
    from .untrusted import inspect_package

    try:
        inspect_package(package, trust_code=trust_code)
    except FijiportError as e:
        report.add("safe to open", "failed", str(e))
        return report
    report.add("safe to open", "passed", "plain files inside the package, plain YAML, no pickles, sizes and sha256 as declared")

    # the package is safe to open: start bioimageio.core's tests in their own process now, and check the rdf
    # against the spec here meanwhile (the two overlap; the spec check does not need the test's result)
    with tempfile.TemporaryDirectory(prefix="fijiport-validate-") as tmp_str:
        tmp = Path(tmp_str)
        out_dir, work_dir = tmp / "out", tmp / "work"
        out_dir.mkdir()
        work_dir.mkdir()
        cmd = [sys.executable, "-m", "fijiport._validation_worker", str(package.resolve()), str(out_dir)]
        log_path = tmp / "worker.log"  # a file, not a pipe: the worker never waits for the parent to read
        started = time.monotonic()
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(cmd, cwd=work_dir, env=keras3_env(), stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            step("validating the rdf against the bioimage.io spec")
            descr = _spec_validation(package, report)
            if descr is None:
                return report
            report.weight_formats = [name for name, entry in descr.weights if entry is not None]
            step(f"running bioimageio.core tests ({', '.join(report.weight_formats)})")
            try:
                proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                report.add("bioimageio.core test", "failed", f"did not finish within {timeout:.0f} s")
                return report
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        results_path = out_dir / "results.json"
        if proc.returncode != 0 or not results_path.is_file():
            tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-5:])
            report.add("bioimageio.core test", "failed", f"the test process failed (exit {proc.returncode}): {tail}")
            return report
        results = json.loads(results_path.read_text())
        outputs = {}
        for fmt, rec in results["formats"].items():
            _format_check(report, fmt, rec)
            if rec.get("output"):
                outputs[fmt] = np.load(out_dir / rec["output"])
        _agreement_checks(report, descr, outputs)
    return report


def _spec_validation(package: Path, report: ValidationReport):
    from bioimageio.spec import load_model_description
    from bioimageio.spec.model import v0_4, v0_5

    from ._bioimageio_compat import offline_tolerant_github_check

    try:
        with offline_tolerant_github_check():
            descr = load_model_description(package, perform_io_checks=True)
    except Exception as e:
        msg = str(e).strip().splitlines()
        report.add("bioimage.io spec", "failed", f"{type(e).__name__}: {' '.join(msg[:6])}")
        return None
    if not isinstance(descr, (v0_4.ModelDescr, v0_5.ModelDescr)):
        report.add("bioimage.io spec", "failed", f"{package} is not a model description ({type(descr).__name__})")
        return None
    fmt = getattr(descr, "format_version", "?")
    warnings = []
    for d in descr.validation_summary.details:
        warnings += [w.msg for w in d.warnings]
    report.add("bioimage.io spec", "passed", f"model format {fmt}")
    for w in dict.fromkeys(warnings):
        report.add("bioimage.io spec warning", "warning", w)
    if isinstance(descr, v0_4.ModelDescr):  # the rest works on the 0.5 form of older packages
        with offline_tolerant_github_check():
            descr = load_model_description(package, perform_io_checks=False, format_version="latest")
    return descr


def _format_check(report: ValidationReport, fmt: str, rec: dict) -> None:
    if rec.get("error"):
        report.add("bioimageio.core test", "failed", rec["error"], weight_format=fmt)
        return
    failed = [d for d in rec.get("details", []) if d["status"] == "failed"]
    if rec["status"] in ("passed", "valid-format") and not failed:
        n = len(rec.get("details", []))
        report.add("bioimageio.core test", "passed", f"{n} checks passed", weight_format=fmt)
    else:
        msgs = []
        for d in failed:
            msgs.append(f"{d['name']}: " + "; ".join(e for e in d["errors"])[:400])
        report.add("bioimageio.core test", "failed", " | ".join(msgs) or f"status {rec['status']}", weight_format=fmt)


def _agreement_checks(report: ValidationReport, descr, outputs: dict[str, np.ndarray]) -> None:
    """Max |diff| of each weight format's output against the Keras reference (else the test output)."""
    atol, rtol = _tolerance(descr)
    reference_fmt = next((f for f in REFERENCE_FORMATS if f in outputs), None)
    if reference_fmt is not None:
        reference, ref_name = outputs[reference_fmt], reference_fmt
    else:
        from bioimageio.core.digest_spec import get_test_output_sample

        sample = get_test_output_sample(descr)
        reference = sample.members[descr.outputs[0].id].data.to_numpy()
        ref_name = "the package's test output"
    for fmt in report.weight_formats:
        if fmt == reference_fmt:
            continue
        if fmt not in outputs:
            report.add("agreement", "failed", "no output: this format did not run", weight_format=fmt)
            continue
        out = outputs[fmt]
        if out.shape != reference.shape:
            report.add("agreement", "failed", f"output shape {out.shape} differs from {ref_name} {reference.shape}", weight_format=fmt)
            continue
        diff = np.abs(out.astype(np.float64) - reference.astype(np.float64))
        max_diff = float(diff.max()) if diff.size else 0.0
        ok, n_bad = within_tolerance(out, reference, atol, rtol, mismatch_allowance(descr))
        detail = f"vs {ref_name}, tolerance {atol:g} + {rtol:g}·|ref|" + (f"; {n_bad} element(s) outside" if n_bad else "")
        report.add("agreement", "passed" if ok else "failed", detail, weight_format=fmt, max_abs_diff=max_diff)


def _tolerance(descr) -> tuple[float, float]:
    atol, rtol = 1e-3, 1e-3
    try:
        tols = descr.config.bioimageio.reproducibility_tolerance  # spec 0.5 only
        if tols:
            atol, rtol = float(tols[0].absolute_tolerance), float(tols[0].relative_tolerance)
    except AttributeError:
        pass
    return atol, rtol


def mismatch_allowance(descr) -> float:
    """Mismatched elements per million the rdf tolerates (spec default 100), as `bioimageio test` applies it."""
    try:
        tols = descr.config.bioimageio.reproducibility_tolerance
        if tols:
            return float(tols[0].mismatched_elements_per_million)
    except AttributeError:
        pass
    return 100.0


def within_tolerance(out: np.ndarray, ref: np.ndarray, atol: float, rtol: float, ppm: float) -> tuple[bool, int]:
    """The spec's reproducibility rule: |out - ref| <= atol + rtol·|ref| except for at most ``ppm`` per million elements."""
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    bad = int(np.count_nonzero(diff > atol + rtol * np.abs(ref.astype(np.float64))))
    return bad <= ppm * diff.size / 1e6, bad
