"""``fijiport predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..predict import predict_images
from ._common import err, out, parse_tiles, progress_bar


def predict(
    model: Path = typer.Argument(
        ..., help="A csbdeep CARE or stardist model folder, or a bioimage.io model zip (or its rdf.yaml).", show_default=False
    ),
    images: list[Path] = typer.Argument(
        ...,
        help="TIFF files, OME-Zarr images (.ome.zarr: read a frame at a time, restored to an OME-Zarr of the same axes and "
        "calibration), or folders of them.",
        show_default=False,
    ),
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
        "one), onnx (packages, through onnxruntime), openvino (a package's ONNX weights on OpenVINO, often faster "
        "on CPUs for 3D; `pip install openvino` first), or auto: keras for folders, onnx for packages.",
    ),
    intensity: str = typer.Option(
        "auto",
        "--intensity",
        help="What restored images hold: input (the input's intensity scale, as csbdeep gives it), normalised (0-1 "
        "between the input's normalisation percentiles, as deepImageJ and CSBDeep-Fiji give it), or auto: input for "
        "model folders and --weights keras, normalised for packages.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace results that exist already."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Leave images whose results all exist: an interrupted batch goes on where it stopped."
    ),
    recursive: bool = typer.Option(
        False,
        "--recursive",
        help="Predict the TIFFs of every sub-folder too; each result goes under the same path below -o as its input "
        "below the folder given, so the folder structure is kept.",
    ),
    pair_by: Optional[str] = typer.Option(
        None,
        "--pair-by",
        help="With --channels: a regular expression whose group named channel finds each file's channel; files whose "
        "other named groups agree are one image (the same expression prepare care took).",
        show_default=False,
    ),
    channels: Optional[str] = typer.Option(
        None,
        "--channels",
        help="For a multi-channel model on channels recorded in separate files, e.g. 0,1: the channel values, in the "
        "order the model takes them. Each restored channel is written under its input file's own path; labels under "
        "the joined name (ch0+1).",
        show_default=False,
    ),
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
      [bold]fijiport predict models/care acq/5pct --recursive -o restored[/]   (restored/<same sub-folders>/<same names>)
      [bold]fijiport predict care_model.zip movie.ome.zarr -o restored[/]   (restored/movie.ome.zarr, NGFF 0.4)
      [bold]fijiport predict models/care_2ch acq/5pct --recursive --pair-by '_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)' --channels 0,1 -o restored[/]
    """

    try:
        with progress_bar() as bar:
            task = bar.add_task("predicting", total=None)
            results = predict_images(
                model,
                images,
                output,
                n_tiles=parse_tiles(tiles),
                weights=weights,
                intensity=intensity,
                pair_by=pair_by,
                channels=None if channels is None else [c.strip() for c in channels.split(",")],
                overwrite=overwrite,
                skip_existing=skip_existing,
                recursive=recursive,
                progress=lambda i, n, name: bar.update(task, completed=i, total=n, description=f"predicting {name}"),
            )
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: the results written so far are whole; go on with the same command and --skip-existing")
        raise typer.Exit(130) from None
    table = Table(title=f"{len(results)} image(s) → {output}")
    for col in ("image", "tiles", "objects", "written"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            r.relative or r.source.name,
            "×".join(map(str, r.n_tiles)),
            "" if r.n_objects is None else str(r.n_objects),
            ("skipped (exists): " if r.skipped else "") + ", ".join(p.name for p in r.outputs),
        )
    out.print(table)
    written = {r.intensity for r in results if r.intensity and not r.skipped}
    if written:
        what = {"input": "the input's intensity scale (as csbdeep's and n2v's predict give them)",
                "normalised": "the network's normalised output (CARE: 0-1 between the input's percentiles, as deepImageJ "
                              "and CSBDeep-Fiji write it)"}  # fmt: skip
        out.print(f"restored images hold {', '.join(what[w] for w in sorted(written))}; --intensity chooses")
    rescale = [r for r in results if r.pixel_size_warning]
    if rescale:
        err.print(f"[yellow]{len(rescale)} image(s) have another pixel size than the training images[/] (see the warnings above)")
    warned = [w for r in results for w in r.warnings]
    if warned:
        err.print(f"[yellow]{len(warned)} image(s) look implausible[/] (see the warnings above)")
