"""``fijiport runtimes``: the TensorFlow and ONNX runtimes inside Fiji's, deepImageJ's and KNIME's plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..runtimes import default_cache_dir, install_runtimes, runtime_status
from ..runtimes.matrix import check_runtimes, matrix_tolerance
from ._common import EXIT_FAILURE, FijiportCommand, HelpGroup, out, spinner, styled

app = typer.Typer(
    cls=HelpGroup,
    no_args_is_help=True,
    help=(
        "Install the runtimes Fiji, deepImageJ and KNIME embed, and run models on them.\n\n"
        "The runtimes: TensorFlow 1.13.1 (KNIME), 1.15.0 (CSBDeep-Fiji, StarDist-Fiji, N2V-Fiji, deepImageJ), 2.10.1 (deepImageJ) and "
        "onnxruntime 1.13.1 (deepImageJ)."
    ),
)

CACHE_HELP = "Folder holding the runtimes (about 1.1 GB); default $FIJIPORT_RUNTIMES_DIR or ~/.cache/fijiport/runtimes."


@app.command("install", cls=FijiportCommand)
def install(
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP),
    only: Optional[list[str]] = typer.Option(
        None, "--only", help="Install just this runtime (e.g. tensorflow-1.15.0 or 1.15.0); repeatable."
    ),
    force: bool = typer.Option(False, "--force", help="Download and verify again even if already installed."),
) -> None:
    """Fetch, verify and cache the runtimes (TensorFlow wheels via pip, onnxruntime-node via npm).

    Each runtime must load and report its own version before it counts as installed; what cannot be
    installed is reported with what is missing and how to get it.

    Needs the Python package index, the npm registry, Node.js with npm and a C compiler (cc).
    """

    target = cache_dir or default_cache_dir()
    with spinner("installing runtimes") as update:
        results = install_runtimes(target, only, force=force, progress=update)
    table = Table(title=f"runtimes in {target}")
    for col in ("runtime", "used by", "status", "detail"):
        table.add_column(col, overflow="fold")
    for s in results:
        table.add_row(s.name, ", ".join(s.runtime.used_by), "[green]ok[/]" if s.installed else "[red]missing[/]", s.detail)
    out.print(table)
    if not all(s.installed for s in results):
        raise typer.Exit(EXIT_FAILURE)


@app.command("list", cls=FijiportCommand)
def list_(cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP)) -> None:
    """Show which runtimes are installed and which Fiji/KNIME plugin uses each."""

    target = cache_dir or default_cache_dir()
    table = Table(title=f"runtimes in {target}")
    for col in ("runtime", "used by", "status", "detail"):
        table.add_column(col, overflow="fold")
    for s in runtime_status(target):
        table.add_row(s.name, ", ".join(s.runtime.used_by), "[green]ok[/]" if s.installed else "[red]missing[/]", s.detail)
    out.print(table)


def print_matrix(matrix) -> None:
    """The matrix as a table; its caption says what the rows measure (runtime level, shared runs)."""
    table = Table(
        title=f"{Path(matrix.subject).name}: {matrix.status.value.upper()} "
        f"(reference: {matrix.context.get('reference', '?')}; tolerance {matrix_tolerance(matrix).describe()})",
        caption=matrix.context.get("measures") or None,
        caption_justify="left",
    )
    for col in ("consumer", "runtime", "weights", "status", "max |diff|", "detail"):
        table.add_column(col, overflow="fold")
    for r in matrix.checks:
        diff = "" if r.max_abs_diff is None else f"{r.max_abs_diff:.2g}"
        runtime = (r.runtime or "").replace("tensorflow-", "TF ").replace("onnxruntime-", "ORT ")
        weights = {"tensorflow_saved_model_bundle": "SavedModel"}.get(r.weight_format or "", r.weight_format or "")
        table.add_row(r.name, runtime, weights, styled(r.status), diff, _first_sentence(r.details))
    out.print(table)


def _first_sentence(text: str, limit: int = 160) -> str:
    """The runtime's own message, shortened for the table (the JSON keeps all of it)."""
    first = text.split(". ")[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


@app.command("check", cls=FijiportCommand)
def check(
    package: Path = typer.Argument(
        ...,
        help="A bioimage.io model package (zip, folder or its rdf.yaml), a CSBDeep/StarDist/KNIME TF_SavedModel.zip (or its unpacked folder), or an N2V plugin zip (.n2v-plugin.zip).",
        show_default=False,
    ),
    reference: Optional[Path] = typer.Option(
        None,
        "--reference",
        help="Model folder (config.json + weights) whose Keras model is the reference for a SavedModel zip that records no test output.",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Also fail (exit 1) when rows only warn, e.g. a zip compared with no trained reference."
    ),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=CACHE_HELP),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the matrix as JSON to this file."),
) -> None:
    """Run a model on the runtimes Fiji, deepImageJ and KNIME embed, and show which consumers it works in.

    TensorFlow weights run on the TF 1.13.1, 1.15.0 and 2.10.1 C libraries, ONNX weights on onnxruntime-node
    1.13.1: the runtimes, not the plugins (their tiling and normalisation do not run). CSBDeep-Fiji, StarDist-Fiji
    and deepImageJ (TF1) share one TF 1.15.0 run.

    The reference: a bioimage.io package's own test output (after its pre- and postprocessing; StarDist labels
    from bioimageio.core's Python postprocessing). A SavedModel zip: the trained model's test output that
    `fijiport export --fiji-zip` records in it; else the Keras model of --reference MODEL_DIR; else none, and the
    rows only say whether the runtimes agree with each other ("consistent across runtimes (no trained
    reference)", a warning).

    Exit code 0 if no consumer that applies failed (with --strict: all passed).
    """

    with spinner("running on the consumer runtimes") as update:
        matrix = check_runtimes(package, cache_dir, reference=reference, progress=update)
    print_matrix(matrix)
    if json_path:
        matrix.save_json(json_path)
        out.print(f"matrix: {json_path}")
    if not (matrix.passed or (matrix.status == "warning" and not strict)):
        raise typer.Exit(EXIT_FAILURE)
