"""``fijiport prepare care``: from two folders of acquisitions to a checked, split data folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional

from .. import __version__
from ..artifacts.data_folder import (
    SOURCE_DIR,
    SPLITS,
    TARGET_DIR,
    ChannelFile,
    DataManifest,
    FileRecord,
    PairChecks,
    PairRecord,
    write_manifest,
)
from ..axes import channel_count, normalize_axes, with_channels
from ..calibration import PAIR_TOLERANCE, TOLERANCE, PixelSize, describe, differences, median_pixel_size, read_pixel_size, write_tiff
from ..config.data import PrepareCareConfig
from ..errors import ConfigError, DataError, UsageError
from ..files import Placer, atomic_dir, read_tiff, sha256_file, tiff_shape
from .checks import ImageChecks
from .file_axes import resolve_axes
from .pair_checks import check_pair
from .pairing import PairingResult, pair_acquisitions
from .split import split_names

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


def check_pair_calibration(low_path: Path, gt_path: Path, low: Optional[PixelSize], gt: Optional[PixelSize]) -> None:
    """Refuse a pair whose two files declare different pixel sizes: they are not two acquisitions of one field at one
    sampling (or one file's calibration is wrong), and CARE would learn to change the scale."""
    if low is None or gt is None:
        return
    differ = differences(low.um, gt.um, PAIR_TOLERANCE)
    if differ:
        raise DataError(
            f"inconsistent pixel sizes within a pair: {low_path} is {low.text()} in its {low.source} metadata but {gt_path} is "
            f"{gt.text()} in its {gt.source} metadata; low and GT must sample the field alike: correct the calibration in Fiji "
            "(Image > Properties...) if it is wrong, or scale one to the other's pixel size (Image > Scale...)"
        )


def warn_mixed_pixel_sizes(sizes: dict[str, Optional[dict[str, float]]]) -> None:
    """One warning when the files of one data folder differ in pixel size by more than
    :data:`~fijiport.calibration.TOLERANCE` from their median: a model learns structures at one size."""
    median = median_pixel_size(list(sizes.values()))
    if median is None:
        return
    odd = [(f, s) for f, s in sizes.items() if s and differences(s, median)]
    if odd:
        log.warning(
            "%d file(s) differ in pixel size from the others' median %s by more than %d%% (e.g. %s: %s); a model learns "
            "structures at one size: prepare images of one pixel size together (Fiji: Image > Scale...)",
            len(odd), describe(median), round(TOLERANCE * 100), odd[0][0], describe(odd[0][1]),
        )  # fmt: skip


def plan_care_pairs(
    low_dir: Optional[Path], gt_dir: Optional[Path], config: PrepareCareConfig, data_dir: Optional[Path] = None
) -> PairingResult:
    """Which low file goes with which GT file, as ``prepare care`` (and its ``--dry-run``) pairs them: by identical
    name, by ``config.pair_by``, or as ``config.pairs_file`` lists them (:mod:`fijiport.data.pairing`). Refuses
    folders that cannot be right (the same folder twice, the output inside an input); the result is not judged here
    (:meth:`PairingResult.refusal`)."""
    pairs_file = Path(config.pairs_file) if config.pairs_file is not None else None
    if pairs_file is not None and (low_dir is not None or gt_dir is not None):
        raise UsageError("--pairs lists the low and GT files itself: drop --low and --gt (or drop --pairs)")
    if pairs_file is None:
        if low_dir is None or gt_dir is None:
            raise UsageError("give --low and --gt folders, or --pairs with a CSV file of low,gt rows")
        low_dir, gt_dir = Path(low_dir), Path(gt_dir)
        if low_dir.resolve() == gt_dir.resolve():
            raise ConfigError(
                f"--low and --gt are the same folder ({low_dir}); CARE learns from two acquisitions of the same "
                "field: low-quality images in --low, high-quality ground truth in --gt (paired by name, --pair-by, or "
                "a --pairs list)"
            )
        if data_dir is not None:
            for inp in (low_dir, gt_dir):
                if Path(data_dir).resolve() == inp.resolve() or inp.resolve() in Path(data_dir).resolve().parents:
                    raise ConfigError(f"output {data_dir} must not be inside the input folder {inp}; choose another -o")
    return pair_acquisitions(
        low_dir,
        gt_dir,
        pair_by=config.pair_by,
        recursive=config.recursive,
        pairs_file=pairs_file,
        channels=config.channels,
        gt_channels=config.gt_channels,
    )


def prepare_care(
    low_dir: Optional[Path],
    gt_dir: Optional[Path],
    data_dir: Path,
    config: Optional[PrepareCareConfig] = None,
    *,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
) -> DataManifest:
    """Pair, check, split and copy low/GT acquisitions into ``data_dir/{train,test}/{low,GT}``.

    Files pair by identical name, by what their names mean (``config.pair_by``) or as a CSV lists them
    (``config.pairs_file``, with ``low_dir`` and ``gt_dir`` None), from nested folders with ``config.recursive``
    (:func:`plan_care_pairs`); a key that stands for two files is refused naming them. Each image is checked
    (readable, finite, grayscale unless the axes have channels), and each pair too unless ``config.check_pairs`` is
    off (:mod:`fijiport.data.pair_checks`: the same field, GT the less noisy, not clipped). The originals are only
    read; the manifest records each one's path. The data folder appears whole or not at all.

    Parameters
    ----------
    low_dir
        The low-quality acquisitions (TIFF), 2D images, stacks or time-lapses (None with ``config.pairs_file``).
    gt_dir
        The ground truth, paired by name, by ``config.pair_by`` or as ``config.pairs_file`` lists them.
    data_dir
        The data folder to write (not inside either input folder).
    config
        Axes, pairing (``pair_by``, ``pairs_file``, ``recursive``), test fraction, seed, unpaired files, copy or hard link, pair checks (defaults: :class:`~fijiport.config.data.PrepareCareConfig`).
    overwrite
        Replace an existing ``data_dir``.
    progress
        Called as ``progress(done, total)`` while files are checked and copied (e.g. :class:`fijiport.notebook.CountBar`).

    Returns
    -------
    DataManifest
        What was written: the sources with their sha256, the split, the axes and each pair's checked figures.
    """
    config = config or PrepareCareConfig()
    data_dir = Path(data_dir)
    pairing = plan_care_pairs(low_dir, gt_dir, config, data_dir)
    refusal = pairing.refusal(config.allow_unpaired)
    if refusal:
        raise DataError(refusal)
    if config.pairs_file is not None:
        config = config.model_copy(update={"pairs_file": str(Path(config.pairs_file).resolve())})

    joined = bool(pairing.pairs) and pairing.pairs[0].joined
    if joined:
        axes = with_channel_axis(
            resolve_axes([p for pair in pairing.pairs for p in pair.sources + pair.targets], config.axes), pairing.pairs[0].sources[0]
        )
        gt_axes = axes if len(config.gt_channels or config.channels or ()) > 1 else axes.replace("C", "")
    else:
        axes = resolve_axes([pair.source for pair in pairing.pairs], config.axes)
        gt_axes = gt_side_axes([pair.target for pair in pairing.pairs], axes, config.axes)
    records: dict[str, tuple[FileRecord, FileRecord]] = {}
    keys = {pair.name: pair.key for pair in pairing.pairs}
    pair_checks: dict[str, PairChecks] = {}
    checks = ImageChecks(low_dir or Path(config.pairs_file or "."), config.axes, "CARE")
    gt_checks = ImageChecks(gt_dir or Path(config.pairs_file or "."), config.axes, "CARE")
    n_channels: dict[tuple[int, int], str] = {}  # (input, GT) channel counts -> the first pair that has them
    for i, pair in enumerate(pairing.pairs):
        if pair.joined:
            s_shape, s_dtype, s_size, low = _join_channels(pair.sources, config.channels or [], axes, checks)
            t_shape, t_dtype, t_size, gt = _join_channels(pair.targets, config.gt_channels or config.channels or [], gt_axes, gt_checks)
        else:
            (s_shape, s_dtype), (t_shape, t_dtype) = tiff_shape(pair.source), tiff_shape(pair.target)
            checks.check_header(pair.source, s_shape)
            gt_checks.check_header(pair.target, t_shape)
        for path, shape, what in ((pair.source, s_shape, axes), (pair.target, t_shape, gt_axes)):
            try:
                normalize_axes(what, len(shape), what=f"axes for {path}")
            except ConfigError as e:
                raise DataError(str(e)) from None
        if _without_channels(s_shape, axes) != _without_channels(t_shape, gt_axes):
            raise DataError(
                f"shape mismatch for {pair.name}: {pair.source} is {s_shape} ({axes}) but {pair.target} is {t_shape} ({gt_axes}); "
                "low and GT must be registered acquisitions of the same size (their numbers of channels may differ)"
            )
        counts = (channel_count(s_shape, axes), channel_count(t_shape, gt_axes))
        n_channels.setdefault(counts, pair.name)
        if len(n_channels) > 1:
            (first, name), (other, _) = next(iter(n_channels.items())), (counts, pair.name)
            raise DataError(
                f"pairs differ in their numbers of channels: {name} has {first[0]} in and {first[1]} in GT, {pair.name} has "
                f"{other[0]} and {other[1]}; one network takes one number of channels: prepare them in separate data folders"
            )
        if not pair.joined:
            s_size, t_size = read_pixel_size(pair.source), read_pixel_size(pair.target)
        check_pair_calibration(pair.source, pair.target, s_size, t_size)
        if not pair.joined:
            low, gt = read_tiff(pair.source), read_tiff(pair.target)
            checks.check(pair.source, s_shape, low)
            gt_checks.check(pair.target, t_shape, gt)
        if config.check_pairs:
            pair_checks[pair.name] = check_pair(pair.source, pair.target, low, gt, axes, gt_axes, _compared_channel(config, counts))
        del low, gt
        records[pair.name] = (
            _record(pair.source, pair.sources, config.channels, s_shape, s_dtype, s_size),
            _record(pair.target, pair.targets, config.gt_channels or config.channels, t_shape, t_dtype, t_size),
        )
        if progress:
            progress(i + 1, 2 * len(pairing.pairs))
    counts = next(iter(n_channels), (1, 1))
    if counts[0] == 1 and counts[1] > 1:
        raise DataError(
            f"{next(iter(n_channels.values()))}: the ground truth has {counts[1]} channels but its input 1; fijiport trains "
            "networks of as many channels out as in or fewer (a network of 1 channel in and several out cannot be QC'd, "
            "exported and run yet): prepare each GT channel against the input in a data folder of its own"
        )
    if counts[0] != counts[1]:
        log.info("%d channel(s) in, %d in the ground truth: `train care` makes a network of %d in and %d out", *counts, *counts)

    warn_mixed_pixel_sizes({records[n][0].source: records[n][0].pixel_size_um or records[n][1].pixel_size_um for n in records})
    train, test = split_names(list(records), config.test_fraction, config.seed)
    split_of: dict[str, Literal["train", "test"]] = {**{n: "train" for n in train}, **{n: "test" for n in test}}
    manifest = DataManifest(
        fijiport_version=__version__,
        axes=axes,
        gt_axes=None if gt_axes == axes and counts[0] == counts[1] else gt_axes,
        config=config.model_copy(update={"axes": axes}),
        pairs=[
            PairRecord(name=n, split=split_of[n], low=records[n][0], gt=records[n][1], checks=pair_checks.get(n), key=keys[n])
            for n in sorted(records)
        ],
        skipped_unpaired=pairing.skipped,
    )
    placer = Placer(config.link)
    with atomic_dir(data_dir, overwrite=overwrite) as tmp:
        for i, rec in enumerate(manifest.pairs):
            for sub, frec in ((SOURCE_DIR, rec.low), (TARGET_DIR, rec.gt)):
                dest = tmp / rec.split / sub / rec.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if frec.channel_files:
                    _write_joined(frec, axes if sub == SOURCE_DIR else gt_axes, dest)
                else:
                    frec.placed = placer.place(Path(frec.source), dest)
            if progress:
                progress(len(pairing.pairs) + i + 1, 2 * len(pairing.pairs))
        for split in SPLITS:
            for sub in (SOURCE_DIR, TARGET_DIR):
                (tmp / split / sub).mkdir(parents=True, exist_ok=True)
        write_manifest(tmp, manifest)
    placer.warn()
    return manifest


def gt_side_axes(paths: list[Path], axes: str, given: Optional[str]) -> str:
    """The GT files' axes: the input's, or the input's without ``C`` (one channel of a multi-channel input) or with
    it (a GT of several channels for a single-channel input); their metadata decide, else ``--axes`` (read without
    its C for files with a dimension fewer), else the guess for their number of dimensions."""
    if not paths:
        return axes
    ndim = len(tiff_shape(paths[0])[0])  # files of other dimensions are refused pair by pair (ImageChecks)
    if given is not None and "C" in given and ndim == len(given) - 1:
        given = given.replace("C", "")
    gt = resolve_axes(paths, given)
    if gt.replace("C", "") != axes.replace("C", "") or ("C" in gt and "C" in axes and gt != axes):
        raise DataError(
            f"{paths[0]} has axes {gt} but its input's are {axes}; GT must have the input's axes (its number of channels "
            f"may differ): save it with the input's axes order in Fiji (Image > Hyperstacks > Re-order Hyperstack), or pass --axes"
        )
    return gt


def _without_channels(shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
    return tuple(n for a, n in zip(axes, shape) if a != "C")


def _compared_channel(config: PrepareCareConfig, counts: tuple[int, int]) -> Optional[int]:
    """The input channel the pair checks compare with GT's first: the first, when GT has the input's channels; the
    input channel of GT's first channel's value with ``--gt-channels``; None (no comparison) when it is unknown."""
    if counts[0] == counts[1] and config.gt_channels is None:
        return 0
    if config.channels and config.gt_channels and config.gt_channels[0] in config.channels:
        return config.channels.index(config.gt_channels[0])
    return None


def with_channel_axis(axes: str, example: Path) -> str:
    """The axes of single-channel files joined into one image: ``C`` where ImageJ puts it, before Y and X
    (``TZYX`` → ``TZCYX``); refused when the files have channels already."""
    if "C" in axes:
        raise DataError(
            f"--channels joins single-channel files, but {example} has channels already (axes {axes}); drop --channels to "
            "train on the channels each file holds, or save one channel per file (Fiji: Image > Color > Split Channels)"
        )
    return with_channels(axes)


def _join_channels(
    files: tuple[Path, ...], channels: list[str], axes: str, checks: ImageChecks
) -> tuple[tuple[int, ...], str, Optional[PixelSize], np.ndarray]:
    """One side of a pair read from one file per channel and stacked along ``axes``'s C: (shape, dtype, pixel size,
    pixels; a single file stays as it is when ``axes`` have no C). The files must agree in shape, dtype and pixel size:
    they are channels of one acquisition."""

    first_shape, first_dtype = tiff_shape(files[0])
    first_size = read_pixel_size(files[0])
    planes = []
    for channel, path in zip(channels, files):
        shape, dtype = tiff_shape(path)
        if (shape, dtype) != (first_shape, first_dtype):
            raise DataError(
                f"channels of one image differ: {files[0]} is {first_shape} {first_dtype} but {path} (channel {channel}) is "
                f"{shape} {dtype}; the files --channels joins must be channels of one acquisition, saved alike"
            )
        size = read_pixel_size(path)
        if size is not None and first_size is not None and differences(size.um, first_size.um, PAIR_TOLERANCE):
            raise DataError(
                f"inconsistent pixel sizes between channels: {files[0]} is {first_size.text()} but {path} (channel {channel}) is "
                f"{size.text()}; correct the calibration in Fiji (Image > Properties...) so the channels of one image agree"
            )
        pixels = read_tiff(path)
        checks.check(path, shape, pixels)
        planes.append(pixels)
    data = _stack_channels(planes, axes)
    return tuple(data.shape), str(data.dtype), first_size, data


def _stack_channels(planes: list, axes: str):
    """Single-channel images stacked along ``axes``'s C; one image as it is when ``axes`` have no C (one GT channel)."""
    import numpy as np

    return np.stack(planes, axis=axes.index("C")) if "C" in axes else planes[0]


def _record(path: Path, files: tuple[Path, ...], channels: Optional[list[str]], shape, dtype: str, size: Optional[PixelSize]) -> FileRecord:
    """The manifest's record of one side of a pair: its file, or (channels joined) each channel's file."""
    um = size.um if size else None
    if not files:
        return FileRecord(source=str(path.resolve()), sha256=sha256_file(path), shape=list(shape), dtype=dtype, pixel_size_um=um)
    parts = [ChannelFile(channel=c, source=str(f.resolve()), sha256=sha256_file(f)) for c, f in zip(channels or [], files)]
    return FileRecord(source=parts[0].source, sha256=parts[0].sha256, shape=list(shape), dtype=dtype, pixel_size_um=um, channel_files=parts)


def _write_joined(record: FileRecord, axes: str, dest: Path) -> None:
    """Write the image joined from ``record``'s channel files (read again: one pair in memory), calibrated as they are;
    each file is checked against the sha256 read when it was prepared."""

    parts = record.channel_files or []
    planes = []
    for part in parts:
        if sha256_file(Path(part.source)) != part.sha256:
            raise DataError(f"{part.source} changed while the data folder was being prepared; run prepare again")
        planes.append(read_tiff(Path(part.source)))
    write_tiff(dest, _stack_channels(planes, axes), axes, read_pixel_size(Path(parts[0].source)), overwrite=False)
    record.placed = "joined"
