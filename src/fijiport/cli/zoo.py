"""``fijiport zoo-check`` and ``fijiport upload``: ready a package for the BioImage Model Zoo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..verify.zoo import check_zoo, upload_package
from ._common import EXIT_FAILURE, out, spinner, styled


def _print_report(report) -> None:
    table = Table(title=f"BioImage Model Zoo pre-flight: {report.subject}")
    table.add_column("expectation", overflow="fold")
    table.add_column("", no_wrap=True)
    table.add_column("found", overflow="fold")
    table.add_column("fix", overflow="fold")
    for c in report.checks:
        table.add_row(c.name, styled(c.status), c.details, c.fix)
    out.print(table)


def zoo_check(
    package: Path = typer.Argument(
        ..., help="bioimage.io model zip (or rdf.yaml), written by fijiport or anything else.", show_default=False
    ),
    strict: bool = typer.Option(False, "--strict", help="Count warnings as failures (what `fijiport upload` requires)."),
    run_test: bool = typer.Option(True, "--test/--no-test", help="Run the official bioimage.io test (the slow part)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the checks to this JSON file."),
) -> None:
    """Check what the BioImage Model Zoo expects beyond a valid rdf: pass / warn / fail, and the fix.

    Checks the official test, a README with a Validation section, covers, a maintainer with a GitHub
    user, an SPDX license, citations with DOI, tags from the Zoo's categories, test and sample
    tensors, training data and a version; each line names the option or file that fixes it.

    Exit code 1 when something fails (with --strict also when something warns).

    Example: [bold]fijiport zoo-check care_nuclei.zip --strict[/]
    """

    with spinner("checking") as update:
        report = check_zoo(package, run_test=run_test, progress=update)
    _print_report(report)
    if json_path:
        report.save_json(json_path)
    bad = report.failures(strict)
    if bad:
        out.print(
            f"[red]not ready[/]: {len(bad)} expectation(s) to fix" + ("" if strict else " (warnings allowed; --strict to require them too)")
        )
        raise typer.Exit(EXIT_FAILURE)
    out.print("[green]ready for the Zoo[/]" + ("" if strict else " (run with --strict before uploading)"))


def upload(
    package: Path = typer.Argument(..., help="bioimage.io model zip to share on bioimage.io.", show_default=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and print exactly what would be sent, send nothing."),
) -> None:
    """Upload a package to the BioImage Model Zoo for review, after `zoo-check --strict` passes.

    Uses bioimageio.spec's upload API with the token in $BIOIMAGEIO_HYPHA_UPLOAD_TOKEN (log in at
    https://bioimage.io and create one under API). Nothing is sent when a check fails, the token is
    missing or --dry-run is given. The web uploader (https://bioimage.io/#/upload) takes the same zip.

    Example: [bold]fijiport upload care_nuclei.zip --dry-run[/]
    """

    with spinner("checking") as update:
        report, plan, url = upload_package(package, dry_run=dry_run, progress=update)
    _print_report(report)
    table = Table(title=("would send" if dry_run else "sent") + f" to {plan.endpoint}")
    for col in ("file", "bytes", "sha256"):
        table.add_column(col, overflow="fold")
    for name, size, digest in plan.files:
        table.add_row(name, str(size), digest)
    out.print(table)
    if dry_run:
        out.print("manifest (rdf) that would be sent:")
        out.print_json(json.dumps(plan.manifest, default=str))
        out.print("dry run: nothing was sent")
    else:
        out.print(f"uploaded for review: {url}")
