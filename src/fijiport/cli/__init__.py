"""The ``fijiport`` command line: thin commands over the library.

Results go to stdout; progress, logs and errors to stderr. Exit codes: 0 ok, 1 failure or invalid
model, 2 usage error.
"""

from __future__ import annotations

import typer

from .. import __version__
from ._common import FijiportCommand, FijiportGroup, setup_logging

app = typer.Typer(
    name="fijiport",
    cls=FijiportGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Train CARE and StarDist models in Python and ship them, verified, to Fiji, KNIME and the BioImage Model Zoo.\n\n"
        "A typical session: [bold]prepare care[/] or [bold]prepare stardist[/] (check and split TIFFs, with masks or "
        "ImageJ ROI sets for StarDist) → [bold]train care[/] or [bold]train stardist[/] → [bold]qc[/] (PSNR/SSIM, or "
        "F1 of the objects, on held-out images) → [bold]export[/] (bioimage.io zip, optionally the Fiji zip and macro) → "
        "[bold]validate[/] (official tests; --runtimes adds the Fiji/KNIME runtimes) → [bold]predict[/]. "
        "[bold]demo[/] runs all of it on bundled data."
    ),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fijiport {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        help="Print what each step does; twice (-vv) also shows TensorFlow's and other libraries' messages.",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only warnings, errors and results."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback (and native library messages) when a command fails."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print fijiport's version and exit."),
) -> None:
    setup_logging(verbose, quiet)


from . import convert, demo, export, macros, predict, prepare, qc, runtimes, train, validate, zoo  # noqa: E402  (commands register on `app`)

# in the order of a user's journey
app.add_typer(prepare.app, name="prepare", rich_help_panel="Train and ship")
app.add_typer(train.app, name="train", rich_help_panel="Train and ship")
app.command("qc", cls=FijiportCommand, rich_help_panel="Train and ship")(qc.qc)
app.command("export", cls=FijiportCommand, rich_help_panel="Train and ship")(export.export)
app.command("validate", cls=FijiportCommand, rich_help_panel="Train and ship")(validate.validate)
app.command("predict", cls=FijiportCommand, rich_help_panel="Train and ship")(predict.predict)
app.add_typer(runtimes.app, name="runtimes", rich_help_panel="Fiji, deepImageJ, KNIME")
app.command("convert", cls=FijiportCommand, rich_help_panel="Fiji, deepImageJ, KNIME")(convert.convert)
app.add_typer(macros.app, name="macros", rich_help_panel="Fiji, deepImageJ, KNIME")
app.command("zoo-check", cls=FijiportCommand, rich_help_panel="BioImage Model Zoo")(zoo.zoo_check)
app.command("upload", cls=FijiportCommand, rich_help_panel="BioImage Model Zoo")(zoo.upload)
app.command("demo", cls=FijiportCommand, rich_help_panel="Try it")(demo.demo)


def main() -> None:
    app()
