"""When two outputs count as the same: the one agreement rule of fijiport.

Every comparison of a network output with a reference (a converted weight format against the Keras
model at export, a weight format against another in ``validate``, a consumer runtime against the test
output in ``runtimes check``, a rewritten graph against the original in ``convert``) goes through
:func:`agree`. The tolerance of a package is read as bioimageio.core 0.11 reads it in its own test
(``config.bioimageio.reproducibility_tolerance`` for the weight format and output, legacy
``test_kwargs``, else the spec's defaults), so "passed" means here what it means in ``bioimageio test``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

SPEC_DEFAULT_ATOL = 1e-3
SPEC_DEFAULT_RTOL = 1e-3
SPEC_DEFAULT_PPM = 100.0


@dataclass(frozen=True)
class Tolerance:
    """``|out - ref| <= absolute + relative * |ref|`` everywhere but at most ``mismatched_ppm`` elements per million."""

    absolute: float = SPEC_DEFAULT_ATOL
    relative: float = SPEC_DEFAULT_RTOL
    mismatched_ppm: float = SPEC_DEFAULT_PPM

    def describe(self) -> str:
        text = f"{self.absolute:g} + {self.relative:g}·|ref|"
        return text + (f", {self.mismatched_ppm:g} ppm may differ" if self.mismatched_ppm else "")

    def to_dict(self) -> dict:
        return {"absolute": self.absolute, "relative": self.relative, "mismatched_elements_per_million": self.mismatched_ppm}

    @classmethod
    def from_dict(cls, data: dict) -> Tolerance:
        return cls(
            float(data.get("absolute", SPEC_DEFAULT_ATOL)),
            float(data.get("relative", SPEC_DEFAULT_RTOL)),
            float(data.get("mismatched_elements_per_million", SPEC_DEFAULT_PPM)),
        )


def strict(absolute: float) -> Tolerance:
    """A plain limit on max |diff|: no relative part, no element allowed outside."""
    return Tolerance(absolute, 0.0, 0.0)


def tolerance_for(descr, weight_format: Optional[str] = None, output_id: Optional[str] = None) -> Tolerance:
    """The tolerance bioimageio.core's test applies to ``output_id`` of ``weight_format`` (first output, any
    format when not given): the first matching ``reproducibility_tolerance`` entry, else the weight format's
    legacy ``test_kwargs``, else the spec's defaults."""
    bioimageio = getattr(getattr(descr, "config", None), "bioimageio", None)
    if bioimageio is None:  # not a spec 0.5 description: bioimageio.core's defaults for older ones
        return Tolerance(SPEC_DEFAULT_ATOL, SPEC_DEFAULT_RTOL, 0.0)
    if output_id is None and getattr(descr, "outputs", None):
        output_id = str(descr.outputs[0].id)
    chosen = Tolerance()
    extra = getattr(bioimageio, "model_extra", None) or {}
    for fmt, kwargs in (extra.get("test_kwargs") or {}).items():
        if weight_format is not None and fmt == weight_format:
            chosen = Tolerance(
                float(kwargs.get("absolute_tolerance", SPEC_DEFAULT_ATOL)),
                float(kwargs.get("relative_tolerance", SPEC_DEFAULT_RTOL)),
                SPEC_DEFAULT_PPM,
            )
            break
    for entry in getattr(bioimageio, "reproducibility_tolerance", ()) or ():
        formats = [str(f) for f in entry.weights_formats or ()]
        outputs = [str(o) for o in entry.output_ids or ()]
        if (not formats or weight_format is None or weight_format in formats) and (not outputs or output_id in outputs):
            chosen = Tolerance(
                float(entry.absolute_tolerance), float(entry.relative_tolerance), float(entry.mismatched_elements_per_million)
            )
            break
    return chosen


@dataclass(frozen=True)
class Agreement:
    """What :func:`agree` measured: whether the outputs agree, the largest difference, how many elements differ
    by more than the tolerance, and a one-line reason when they do not agree."""

    ok: bool
    max_abs_diff: Optional[float]
    n_outside: int = 0
    reason: str = ""


def agree(out: np.ndarray, ref: np.ndarray, tolerance: Tolerance) -> Agreement:
    """Compare ``out`` with ``ref``: shapes first, then the tolerance element by element (NaN never agrees)."""
    out, ref = np.asarray(out), np.asarray(ref)
    if out.shape != ref.shape:
        return Agreement(False, None, 0, f"output shape {list(out.shape)} instead of {list(ref.shape)}")
    if out.size == 0:
        return Agreement(True, 0.0)
    a, b = out.astype(np.float64), ref.astype(np.float64)
    diff = np.abs(a - b)
    finite = np.isfinite(diff)
    max_diff = float(diff[finite].max()) if finite.any() else float("nan")
    if not finite.all():
        max_diff = float("nan")
    outside = ~(diff <= tolerance.absolute + tolerance.relative * np.abs(b))  # NaN counts as outside
    n_outside = int(np.count_nonzero(outside))
    ok = n_outside <= tolerance.mismatched_ppm * diff.size / 1e6
    reason = "" if ok else f"{n_outside} of {diff.size} element(s) outside the tolerance {tolerance.describe()}"
    return Agreement(ok, max_diff, n_outside, reason)
