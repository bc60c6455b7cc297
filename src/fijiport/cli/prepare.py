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
from ..data import PairingResult, plan_care_pairs, prepare_care, prepare_n2v, prepare_stardist
from ..data.pairing import describe_key
from ..errors import DataError
from ._common import FijiportCommand, HelpGroup, out, progress_bar

app = typer.Typer(
    cls=HelpGroup,
    no_args_is_help=True,
    help="Turn folders of acquisitions (CARE), images with masks (StarDist) or noisy images (N2V) into a checked, split data folder.",
)


@app.command("care", cls=FijiportCommand)
def care(
    low: Optional[Path] = typer.Option(
        None, "--low", help="Folder of low-SNR acquisitions (the network's input), TIFF files.", show_default=False
    ),
    gt: Optional[Path] = typer.Option(
        None,
        "--gt",
        help="Folder of high-SNR ground truth: the same file names as --low, or names --pair-by pairs with them.",
        show_default=False,
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Data folder to create; gets train/ and test/ with low/ and GT/ each, and a manifest.",
        show_default=False,
    ),
    pair_by: Optional[str] = typer.Option(
        None,
        "--pair-by",
        help="Pair files by what their names mean: a regular expression whose named groups form the key, searched in "
        "each path below --low/--gt, e.g. '_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)' pairs by channel and stack and "
        "ignores the laser power and time stamps.",
        show_default=False,
    ),
    pairs: Optional[Path] = typer.Option(
        None,
        "--pairs",
        help="A CSV file of low,gt rows (paths relative to its folder) instead of --low and --gt.",
        show_default=False,
    ),
    recursive: bool = typer.Option(
        False, "--recursive", help="Take the TIFFs of sub-folders too, at any depth; names in the data folder keep the path."
    ),
    channels: Optional[str] = typer.Option(
        None,
        "--channels",
        help="Channels recorded in separate files, joined into one multi-channel image per side, e.g. 0,1: the values "
        "of --pair-by's group named channel, in the order the image holds them (the network then learns from all "
        "channels at once). Other channels' files are left out.",
        show_default=False,
    ),
    gt_channels: Optional[str] = typer.Option(
        None,
        "--gt-channels",
        help="With --channels: the channels of the ground truth when they are not the input's, e.g. --channels 0,1 "
        "--gt-channels 0 trains a network of 2 channels in and 1 out. QC scores the input channel of the same value "
        "against each GT channel as the baseline (none when the input has no such channel). A GT whose files hold "
        "other channels than the input's needs no option.",
        show_default=False,
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="List the pairs it would make, the unpaired files and any key matching several files; read no pixels, "
        "write nothing (exit 1 if the pairing would be refused).",
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
    allow_unpaired: bool = typer.Option(
        False, "--allow-unpaired", help="Skip files without a partner (or not matched by --pair-by) instead of stopping."
    ),
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
    """Pair low/GT TIFFs (by file name, by what the names mean, or from a list), check them and each pair, and
    split them reproducibly.

    Refuses pairs that are not pairs (folders swapped, GT names shuffled, GT shifted against its input, inputs
    clipped), naming the file and the figure; warns on borderline figures. A --pair-by key that matches two files
    is refused naming them.

    The originals are only read: the data folder gets copies (or hard links) and a manifest with
    each source's path and sha256.

    \b
    Examples:
      [bold]fijiport prepare care --low raw/low --gt raw/GT -o data --axes ZYX[/]
      [bold]fijiport prepare care --low acq/5pct --gt acq/100pct --recursive --pair-by '_ch(?P<ch>\\d+)_stack(?P<stack>\\d+)' --dry-run[/]
      [bold]fijiport prepare care --low acq/5pct --gt acq/100pct --pair-by '_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)' --channels 0,1 -o data[/]
      [bold]fijiport prepare care --low acq/5pct --gt acq/100pct --pair-by '_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)' --channels 0,1 --gt-channels 0 -o data[/]
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
            "pair_by": pair_by,
            "recursive": recursive,
            "pairs_file": None if pairs is None else str(pairs),
            "channels": None if channels is None else [c.strip() for c in channels.split(",")],
            "gt_channels": None if gt_channels is None else [c.strip() for c in gt_channels.split(",")],
        },
        source="options",
    )
    if dry_run:
        pairing = plan_care_pairs(low, gt, config, output)
        _print_pairing(pairing)
        refusal = pairing.refusal(config.allow_unpaired)
        if refusal:
            raise DataError(refusal)
        out.print(f"{len(pairing.pairs)} pair(s) would go to {output} (dry run: nothing read or written)")
        return
    with progress_bar(transient=True) as bar:
        task = bar.add_task("checking and copying", total=None)
        manifest = prepare_care(
            low, gt, output, config, overwrite=overwrite, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    gt_note = f", GT {manifest.gt_axes}" if manifest.gt_axes and manifest.gt_axes != manifest.axes else ""
    table = Table(title=f"{output} (axes {manifest.axes}{gt_note})")
    table.add_column("split")
    table.add_column("pairs", justify="right")
    table.add_column("files")
    for split in ("train", "test"):
        names = manifest.names(split)
        table.add_row(split, str(len(names)), ", ".join(names[:6]) + (" …" if len(names) > 6 else ""))
    out.print(table)
    if manifest.skipped_unpaired:
        out.print(f"skipped unpaired: {', '.join(manifest.skipped_unpaired)}")
    n_in, n_out = manifest.channel_counts()
    if manifest.gt_axes is not None or manifest.config.gt_channels not in (None, manifest.config.channels):
        base = (
            "no input baseline in QC"
            if manifest.baseline_channels() is None
            else "QC scores the input's channels of GT's values as the baseline"
        )
        out.print(f"{n_in} channel(s) in, {n_out} in the ground truth: `train care` makes a network of {n_in} in and {n_out} out ({base})")
    out.print(f"manifest: {output / MANIFEST_NAME}")


def _print_pairing(pairing: PairingResult) -> None:
    """``prepare care --dry-run``: every pair (key, low, GT, name in the data folder), then every file left out; plain
    lines (paths are long, and they are meant to be read, grepped or copied)."""

    def say(text: str) -> None:
        out.print(text, markup=False, highlight=False)

    say(f"{len(pairing.pairs)} pair(s) by {pairing.how}")
    for pair in pairing.pairs:
        say(f"{describe_key(pair.key) if pair.key else pair.name}")
        for side, files, root in (
            ("low", pair.sources or (pair.source,), pairing.source_label),
            ("GT ", pair.targets or (pair.target,), pairing.target_label),
        ):
            for f in files:
                say(f"  {side}  {_shown(f, root)}")
        say(f"  as   {pair.name}")
    for what, files in (
        (f"only in {pairing.source_label} (no GT)", pairing.only_source),
        (f"only in {pairing.target_label} (no low)", pairing.only_target),
        (f"in {pairing.source_label}, not matched by --pair-by", pairing.unmatched_source),
        (f"in {pairing.target_label}, not matched by --pair-by", pairing.unmatched_target),
        ("without every channel of --channels (on either side)", pairing.incomplete),
        ("left out: a channel --channels does not list", pairing.other_channels),
    ):
        if files:
            say(f"{what}: {len(files)}")
            for f in files:
                say(f"  {f}")
    for a in pairing.ambiguous:
        say(f"ambiguous: {a.headline()}")
        for f in a.files:
            say(f"  {f}")


def _shown(path: Path, root: str) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


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

    Time-lapses (T×Y×X, as Fiji saves a movie) take a label stack with one label image per frame, or an ROI set
    whose ROIs were added on their frames; every frame is checked and relabelled, and StarDist learns from each.

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
