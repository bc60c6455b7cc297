"""One report type for everything fijiport checks: ``validate``, the runtime matrix and ``zoo-check``.

A :class:`Report` is a list of :class:`Check` s with one status vocabulary (:class:`Status`), optional
measurements behind them (the runtime matrix keeps every runtime run there) and sub-reports (``validate
--runtimes`` holds the runtime matrix). It round-trips through JSON (:meth:`Report.to_dict` /
:meth:`Report.from_dict`) and renders as Markdown. Checking never raises for a bad package: it reports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from ..files import atomic_file


class Status(str, Enum):
    """How one check ended."""

    PASSED = "passed"
    WARNING = "warning"
    """Works, but something a user or the Zoo would want is missing; fails only ``--strict``."""
    FAILED = "failed"
    NOT_APPLICABLE = "n/a"
    """The check does not apply (a StarDist-only consumer for a CARE model, say)."""
    MISSING = "missing"
    """Could not be measured here (a runtime is not installed); never counts as passed."""

    def __str__(self) -> str:
        return self.value


BAD = (Status.FAILED, Status.MISSING)


@dataclass
class Check:
    """One thing checked: what (``name``, and a stable ``key`` for scripts), how it ended, why, and how to fix it."""

    name: str
    status: Status
    details: str = ""
    fix: str = ""
    key: str = ""
    weight_format: Optional[str] = None
    runtime: Optional[str] = None
    reported_version: Optional[str] = None
    max_abs_diff: Optional[float] = None

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        return cls(**data)


@dataclass
class Report:
    """What was checked on ``subject`` (a package, a zip, a model folder)."""

    subject: str
    title: str
    checks: list[Check] = field(default_factory=list)
    measurements: list[Check] = field(default_factory=list)
    """Raw measurements the checks are made from (e.g. every runtime run of the runtime matrix)."""
    context: dict[str, Any] = field(default_factory=dict)
    """What the reader needs to interpret the checks: the reference compared with, the tolerance, weight formats."""
    parts: dict[str, Report] = field(default_factory=dict)
    """Sub-reports, e.g. ``"runtime_matrix"`` of ``validate --runtimes``."""

    def add(self, name: str, status: Status | str, details: str = "", **kwargs: Any) -> Check:
        check = Check(name, Status(status), details, **kwargs)
        self.checks.append(check)
        return check

    def failures(self, strict: bool = False) -> list[Check]:
        """Checks that fail (with ``strict`` also those that only warn)."""
        bad = (*BAD, Status.WARNING) if strict else BAD
        return [c for c in self.checks if c.status in bad]

    def ok(self, strict: bool = False) -> bool:
        """Nothing failed (with ``strict``, nothing warned either)."""
        return not self.failures(strict)

    @property
    def passed(self) -> bool:
        """Nothing failed or could not be measured, and at least one check passed."""
        return self.ok() and any(c.status == Status.PASSED for c in self.checks)

    @property
    def status(self) -> Status:
        """Passed; warning when nothing failed and nothing passed either but something warned (a runtime matrix
        without a trained reference: the runtimes agree with each other, nothing was compared with a test output);
        else failed."""
        if self.passed:
            return Status.PASSED
        if self.ok() and any(c.status == Status.WARNING for c in self.checks):
            return Status.WARNING
        return Status.FAILED

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "subject": self.subject,
            "title": self.title,
            "status": self.status.value,
            "context": self.context,
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.measurements:
            data["measurements"] = [c.to_dict() for c in self.measurements]
        for name, part in self.parts.items():
            data[name] = part.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        known = {"subject", "title", "status", "context", "checks", "measurements"}
        parts = {k: cls.from_dict(v) for k, v in data.items() if k not in known and isinstance(v, dict) and "checks" in v}
        return cls(
            data["subject"],
            data.get("title", ""),
            [Check.from_dict(c) for c in data.get("checks", [])],
            [Check.from_dict(c) for c in data.get("measurements", [])],
            dict(data.get("context", {})),
            parts,
        )

    def to_markdown(self) -> str:
        lines = [f"# {self.title} of `{Path(self.subject).name}`", "", f"**{self.status.value.upper()}**", ""]
        lines += _markdown_table(self.checks)
        for name, part in self.parts.items():
            lines += ["", f"## {part.title or name}", "", f"**{part.status.value.upper()}**", ""]
            lines += _markdown_table(part.checks)
        return "\n".join(lines) + "\n"

    def save_json(self, path: Path) -> None:
        with atomic_file(Path(path), overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def save_markdown(self, path: Path) -> None:
        with atomic_file(Path(path), overwrite=True) as tmp:
            tmp.write_text(self.to_markdown())


def _markdown_table(checks: list[Check]) -> list[str]:
    with_diff = any(c.max_abs_diff is not None for c in checks)
    with_fix = any(c.fix for c in checks)
    header = (
        ["check", "weights", "runtime", "status"] + (["max \\|diff\\|"] if with_diff else []) + ["details"] + (["fix"] if with_fix else [])
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in checks:
        cells = [c.name, c.weight_format or "", c.runtime or "", c.status.value]
        if with_diff:
            cells.append("" if c.max_abs_diff is None else f"{c.max_abs_diff:.2g}")
        cells.append(c.details)
        if with_fix:
            cells.append(c.fix)
        lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    return lines
