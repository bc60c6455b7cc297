"""``fijiport prepare care``, ``prepare stardist`` and ``prepare n2v``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..artifacts.data_folder import MANIFEST_NAME
from ..config.data import PrepareCareConfig, PrepareStardistConfig
from ..config.loading import validate_config
from ..config.n2v import PrepareN2vConfig
from ..data import prepare_care, prepare_n2v, prepare_stardist
from ._common import FijiportCommand, HelpGroup, out, progress_bar

app = typer.Typer(
    cls=HelpGroup,
    no_args_is_help=True,
    help="Turn folders of acquisitions (CARE), images with masks (StarDist) or noisy images (N2V) into a checked, split data folder.",
)


@app.command("care", cls=FijiportCommand)
def care(
    low: Path = typer.Option(..., "--low", help="Folder of low-SNR acquisitions (the network's input), TIFF files.", show_default=False),
    gt: Path = typer.Option(..., "--gt", help="Folder of high-SNR ground truth with the same file names as --low.", show_default=False),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Data folder to create; gets train/ and test/ with low/ and GT/ each, and a manifest.",
        show_default=False,
    ),
    axes: Optional[str] = typer.Option(
        None,
        "--axes",
        help="Axes of every image, e.g. YX, ZYX, YXC; guessed from the number of dimensions when not given (2 → YX, 3 → ZYX).",
    ),
    test_fraction: float = typer.Option(
        0.3, "--test-fraction", help="Fraction of the image pairs held out for `fijiport qc` and never used in training."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/test split; the same seed and names give the same split."),
    allow_unpaired: bool = typer.Option(False, "--allow-unpaired", help="Skip files present in only one folder instead of stopping."),
    link: str = typer.Option(
        "copy",
        "--link",
        help="How files reach the data folder: copy (safe default) or hardlink (no extra space; edits in the data folder would change the originals; copied, with a warning, where the data folder is on another file system).",
    ),
    skip_pair_checks: bool = typer.Option(
        False,
        "--skip-pair-checks",
        help="Do not check that each low/GT pair shows the same field, unshifted, with GT the less noisy and neither "
        "clipped; for pairs meant to differ in ways these checks refuse.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the data folder if it exists."),
) -> None:
    """Pair low/GT TIFFs by file name, check them and each pair, and split them reproducibly.

    Refuses pairs that are not pairs (folders swapped, GT names shuffled, GT shifted against its input, inputs
    clipped), naming the file and the figure; warns on borderline figures.

    The originals are only read: the data folder gets copies (or hard links) and a manifest with
    each source's sha256.

    Example: [bold]fijiport prepare care --low raw/low --gt raw/GT -o data --axes ZYX[/]
    """

    config = validate_config(
        PrepareCareConfig,
        {
            "axes": axes,
            "test_fraction": test_fraction,
            "seed": seed,
            "allow_unpaired": allow_unpaired,
            "link": link,
            "check_pairs": not skip_pair_checks,
        },
        source="options",
    )
    with progress_bar(transient=True) as bar:
        task = bar.add_task("checking and copying", total=None)
        manifest = prepare_care(
            low, gt, output, config, overwrite=overwrite, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    table = Table(title=f"{output} (axes {manifest.axes})")
    table.add_column("split")
    table.add_column("pairs", justify="right")
    table.add_column("files")
    for split in ("train", "test"):
        names = manifest.names(split)
        table.add_row(split, str(len(names)), ", ".join(names[:6]) + (" …" if len(names) > 6 else ""))
    out.print(table)
    if manifest.skipped_unpaired:
        out.print(f"skipped unpaired: {', '.join(manifest.skipped_unpaired)}")
    out.print(f"manifest: {output / MANIFEST_NAME}")


@app.command("stardist", cls=FijiportCommand)
def stardist(
    images: Path = typer.Option(..., "--images", help="Folder of images (TIFF) to segment.", show_default=False),
    masks: Optional[Path] = typer.Option(
        None, "--masks", help="Folder of label images with the same file names as --images (background 0, one integer per object)."
    ),
    rois: Optional[Path] = typer.Option(
        None,
        "--rois",
        help="Folder of ImageJ ROI sets from the ROI Manager, one <image base name>.zip per image; rendered exactly as ImageJ fills them.",
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Data folder to create: train/ and test/ with images/ and masks/ each, and a manifest.",
        show_default=False,
    ),
    axes: Optional[str] = typer.Option(
        None, "--axes", help="Axes of every image, e.g. YX, ZYX, YXC; guessed from the number of dimensions when not given."
    ),
    test_fraction: float = typer.Option(
        0.3, "--test-fraction", help="Fraction of the images held out for `fijiport qc` and never used in training."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/test split."),
    min_area: int = typer.Option(10, "--min-area", help="Objects smaller than this many pixels are reported as tiny."),
    allow_unpaired: bool = typer.Option(
        False, "--allow-unpaired", help="Skip images without a mask (and masks without an image) instead of stopping."
    ),
    link: str = typer.Option(
        "copy", "--link", help="How images reach the data folder: copy (default) or hardlink; masks are always written anew."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the data folder if it exists."),
) -> None:
    """Check label masks (or ImageJ ROI sets) against their images, relabel them 1..N and split.

    Refuses masks that are not label images (float, negative, binary with touching objects, another
    size than the image) naming the file; reports per image the objects, tiny objects and objects
    far from star-convex (what StarDist cannot represent well). Originals are only read.

    Example: [bold]fijiport prepare stardist --images data/images --masks data/masks -o sd_data[/]
    """

    config = validate_config(
        PrepareStardistConfig,
        {"axes": axes, "test_fraction": test_fraction, "seed": seed, "allow_unpaired": allow_unpaired, "link": link, "min_area": min_area},
        source="options",
    )
    with progress_bar(transient=True) as bar:
        task = bar.add_task("checking masks", total=None)
        manifest = prepare_stardist(
            images,
            output,
            masks_dir=masks,
            rois_dir=rois,
            config=config,
            overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    table = Table(title=f"{output} (axes {manifest.axes})")
    for col in ("image", "split", "objects", "tiny", "not star-convex", "notes"):
        table.add_column(col, overflow="fold")
    for item in manifest.items:
        r = item.report
        table.add_row(item.name, item.split, str(r["n_objects"]), str(r["tiny_objects"]), str(r["not_star_convex"]), "; ".join(r["notes"]))
    out.print(table)
    if manifest.skipped_unpaired:
        out.print(f"skipped unpaired: {', '.join(manifest.skipped_unpaired)}")
    out.print(f"manifest: {output / MANIFEST_NAME}")


@app.command("n2v", cls=FijiportCommand)
def n2v(
    images: list[Path] = typer.Option(
        ..., "--images", help="Folder of noisy images (TIFF); repeat for more folders (file names must be unique).", show_default=False
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Data folder to create: train/, validation/ and test/ with images/ (and GT/ with --gt), and a manifest.",
        show_default=False,
    ),
    gt: Optional[Path] = typer.Option(
        None, "--gt", help="Clean images with the same file names, for `fijiport qc` only (N2V never trains on them)."
    ),
    axes: Optional[str] = typer.Option(
        None,
        "--axes",
        help="Axes of every image, e.g. YX, ZYX, TYX, YXC; read from ImageJ/OME metadata or guessed from the dimensions.",
    ),
    validation_fraction: float = typer.Option(
        0.1, "--validation-fraction", help="Fraction of the files (of the frames, for one time-lapse) that monitor training."
    ),
    test_fraction: float = typer.Option(
        0.1, "--test-fraction", help="Fraction of the files (or frames) held out for `fijiport qc` and never used in training."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the split; the same seed and names give the same split."),
    allow_unpaired: bool = typer.Option(False, "--allow-unpaired", help="With --gt: keep images without a clean version."),
    link: str = typer.Option("copy", "--link", help="How files reach the data folder: copy (default) or hardlink."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the data folder if it exists."),
) -> None:
    """Check noisy images (no ground truth needed) and split them for Noise2Void.

    Files are split into training, validation and test; a single time-lapse is split by frames
    instead, in contiguous blocks (neighbouring frames share structure and must not leak into the
    test frames). Refuses constant images, RGB images and axes N2V cannot take, naming the file.
    Originals are only read.

    Example: [bold]fijiport prepare n2v --images raw/noisy -o n2v_data[/]
    """

    config = validate_config(
        PrepareN2vConfig,
        {"axes": axes, "validation_fraction": validation_fraction, "test_fraction": test_fraction, "seed": seed,
         "allow_unpaired": allow_unpaired, "link": link},
        source="options",
    )  # fmt: skip
    with progress_bar(transient=True) as bar:
        task = bar.add_task("checking and copying", total=None)
        manifest = prepare_n2v(
            images, output, gt_dir=gt, config=config, overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    table = Table(title=f"{output} (axes {manifest.axes})")
    for col in ("split", "files", "frames", "with GT"):
        table.add_column(col, overflow="fold")
    for split in ("train", "validation", "test"):
        items = [r for r in manifest.items if r.split == split]
        frames = ", ".join(f"{r.frames[0]}-{r.frames[-1]}" for r in items if r.frames) or "all"
        names = ", ".join(r.name for r in items[:6]) + (" …" if len(items) > 6 else "")
        table.add_row(split, names or "-", frames if items else "-", str(sum(r.gt is not None for r in items)))
    out.print(table)
    if not manifest.names("validation"):
        out.print("[dim]no validation images: training holds back a share of its patches to validate[/]")
    out.print(f"manifest: {output / MANIFEST_NAME}")
