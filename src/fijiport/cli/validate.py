"""``fijiport validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..errors import DataError
from ..verify.validate import validate_package
from ._common import EXIT_FAILURE, out, spinner, styled
from .runtimes import print_matrix


def validate(
    package: Path = typer.Argument(
        ..., help="bioimage.io model package (a .zip, a package folder or its rdf.yaml), from fijiport or anyone else.", show_default=False
    ),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON to this file."),
    md_path: Optional[Path] = typer.Option(None, "--md", help="Also write the report as Markdown to this file."),
    runtimes: bool = typer.Option(
        False,
        "--runtimes",
        help="Also run the weights on TF 1.13.1/1.15.0/2.10.1 and onnxruntime 1.13.1 (what Fiji, deepImageJ and KNIME embed; install them with `fijiport runtimes install`).",
    ),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Runtimes folder (default ~/.cache/fijiport/runtimes)."),
    trust_code: bool = typer.Option(
        False,
        "--trust-code",
        help="Allow a package that asks to run its own Python code (e.g. a PyTorch architecture file) or whose TensorFlow/ONNX graphs use ops outside fijiport's inference allow-list (file or Python ops, custom ONNX domains); only for packages from people you trust.",
    ),
) -> None:
    """Check a bioimage.io model package: spec, official tests per weight format, cross-format agreement.

    Runs the spec validation, bioimageio.core's test of every weight format (in a child process with
    Keras 3 and a temporary working directory), compares each format's output with the Keras
    reference (max |diff|), and checks the rdf against the rules of deepImageJ 3.x's own reader (JDLL).
    With --runtimes, also runs the weights on the runtimes Fiji, deepImageJ and KNIME embed (the
    runtimes, not the plugins; see `fijiport runtimes check --help`).

    Exit code 0 only if everything passed.

    Example: [bold]fijiport validate care_nuclei.zip --json validation.json[/]
    """

    if not package.exists():
        raise DataError(f"{package} does not exist; pass a bioimage.io model zip (e.g. one written by `fijiport export`)")
    with spinner("validating") as update:
        report = validate_package(package, progress=update, runtimes=runtimes, cache_dir=cache_dir, trust_code=trust_code)
    refused = next((c for c in report.checks if c.key in ("package", "safe") and c.status == "failed"), None)
    if refused is not None:  # not a package, or not safe to open: nothing else ran, one line says why
        if json_path:
            report.save_json(json_path)
        raise DataError(refused.details)
    table = Table(title=f"{package}: {report.status.value.upper()}")
    for col in ("check", "weights", "status", "max |diff|", "details"):
        table.add_column(col, overflow="fold")
    for c in report.checks:
        if c.name.startswith("runtime: "):
            continue  # shown in the matrix below
        diff = "" if c.max_abs_diff is None else f"{c.max_abs_diff:.2g}"
        table.add_row(c.name, c.weight_format or "", styled(c.status), diff, c.details)
    out.print(table)
    if "runtime_matrix" in report.parts:
        print_matrix(report.parts["runtime_matrix"])
    if json_path:
        report.save_json(json_path)
        out.print(f"report: {json_path}")
    if md_path:
        report.save_markdown(md_path)
        out.print(f"report: {md_path}")
    if not report.passed:
        raise typer.Exit(EXIT_FAILURE)
