"""``fijiport predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..predict import predict_images
from ._common import out, parse_tiles, progress_bar


def predict(
    model: Path = typer.Argument(
        ..., help="A csbdeep CARE or stardist model folder, or a bioimage.io model zip (or its rdf.yaml).", show_default=False
    ),
    images: list[Path] = typer.Argument(..., help="TIFF files or folders of TIFFs.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the results (never the folder of the inputs).", show_default=False),
    tiles: Optional[str] = typer.Option(
        None,
        "--tiles",
        help="Tiles per image axis, e.g. 1,4,4; by default chosen so no tile exceeds about a million pixels (1024×1024, 64×128×128).",
    ),
    weights: str = typer.Option(
        "auto",
        "--weights",
        help="Which weights run: keras (model folders, and packages that carry "
        "one), onnx (packages, through onnxruntime), or auto: keras for folders, onnx for packages.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace results that exist already."),
) -> None:
    """Apply a model to images: restored TIFFs (CARE), or label TIFFs + ImageJ ROI sets + a CSV of
    per-object area, centroid and mean intensity (StarDist).

    A bioimage.io zip runs as the Model Zoo runs it: its own normalisation and postprocessing (StarDist's
    non-maximum suppression included), ONNX weights, blocks with the package's halo. ROI sets of label
    outputs hold StarDist's polygons for model folders and traced outlines for packages.

    \b
    Examples:
      [bold]fijiport predict models/stardist_nuclei raw/ -o segmented[/]
      [bold]fijiport predict care_model.zip stack.tif -o restored --tiles 1,4,4[/]
    """

    with progress_bar() as bar:
        task = bar.add_task("predicting", total=None)
        results = predict_images(
            model,
            images,
            output,
            n_tiles=parse_tiles(tiles),
            weights=weights,
            overwrite=overwrite,
            progress=lambda i, n, name: bar.update(task, completed=i, total=n, description=f"predicting {name}"),
        )
    table = Table(title=f"{len(results)} image(s) → {output}")
    for col in ("image", "tiles", "objects", "written"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            r.source.name,
            "×".join(map(str, r.n_tiles)),
            "" if r.n_objects is None else str(r.n_objects),
            ", ".join(p.name for p in r.outputs),
        )
    out.print(table)
