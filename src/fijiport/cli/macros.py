"""``fijiport macros``: the ImageJ macros for mask making and batch prediction in Fiji."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..export.macros import install_macros, list_macros
from ._common import FijiportCommand, HelpGroup, out

app = typer.Typer(
    cls=HelpGroup,
    no_args_is_help=True,
    help=(
        "ImageJ macros for Fiji: StarDist masks, and batch prediction with CSBDeep-Fiji, StarDist-Fiji and deepImageJ.\n\n"
        "Masks come from thresholding or from ROI sets. Each macro runs from the menu (a dialog asks) or headless "
        "with key=value arguments."
    ),
)


@app.command("list", cls=FijiportCommand)
def list_() -> None:
    """Show the macros, what each does and which plugins it needs."""

    table = Table(title="fijiport macros (install with `fijiport macros install --fiji PATH/Fiji.app`)")
    table.add_column("macro", no_wrap=True)
    for col in ("what it does", "plugins", "export fills in"):
        table.add_column(col, overflow="fold")
    for m in list_macros():
        table.add_row(m.name, m.purpose, m.plugins, ", ".join(m.fill_keys))
    out.print(table)


@app.command("install", cls=FijiportCommand)
def install(
    fiji: Path = typer.Option(..., "--fiji", help="Your Fiji installation (the Fiji.app folder).", show_default=False),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace macros installed earlier."),
) -> None:
    """Copy the macros to Fiji.app/scripts/Plugins/fijiport/, so Fiji lists them under Plugins > fijiport
    (restart Fiji or use Help > Refresh Menus).

    Example: [bold]fijiport macros install --fiji ~/Fiji.app[/]
    """

    for path in install_macros(fiji, overwrite=overwrite):
        out.print(str(path))
    out.print("Restart Fiji (or Help > Refresh Menus): the macros are under Plugins > fijiport.")
