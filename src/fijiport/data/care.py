"""``fijiport prepare care``: from two folders of acquisitions to a checked, split data folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Optional

from .. import __version__
from ..artifacts.data_folder import SOURCE_DIR, SPLITS, TARGET_DIR, DataManifest, FileRecord, PairChecks, PairRecord, write_manifest
from ..axes import normalize_axes
from ..calibration import PAIR_TOLERANCE, TOLERANCE, PixelSize, describe, differences, median_pixel_size, read_pixel_size
from ..config.data import PrepareCareConfig
from ..errors import ConfigError, DataError, UsageError
from ..files import Placer, atomic_dir, read_tiff, sha256_file, tiff_shape
from .checks import ImageChecks
from .file_axes import resolve_axes
from .pair_checks import check_pair
from .pairing import PairingResult, pair_acquisitions
from .split import split_names

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
    return pair_acquisitions(low_dir, gt_dir, pair_by=config.pair_by, recursive=config.recursive, pairs_file=pairs_file)


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

    axes = resolve_axes([p for pair in pairing.pairs for p in (pair.source, pair.target)], config.axes)
    records: dict[str, tuple[FileRecord, FileRecord]] = {}
    keys = {pair.name: pair.key for pair in pairing.pairs}
    pair_checks: dict[str, PairChecks] = {}
    checks = ImageChecks(low_dir or Path(config.pairs_file or "."), config.axes, "CARE")
    for i, pair in enumerate(pairing.pairs):
        (s_shape, s_dtype), (t_shape, t_dtype) = tiff_shape(pair.source), tiff_shape(pair.target)
        if s_shape != t_shape:
            raise DataError(
                f"shape mismatch for {pair.name}: {pair.source} is {s_shape} but {pair.target} is {t_shape}; "
                "low and GT must be registered acquisitions of the same size"
            )
        s_size, t_size = read_pixel_size(pair.source), read_pixel_size(pair.target)
        check_pair_calibration(pair.source, pair.target, s_size, t_size)
        low, gt = read_tiff(pair.source), read_tiff(pair.target)
        checks.check(pair.source, s_shape, low)
        checks.check(pair.target, t_shape, gt)
        try:
            normalize_axes(axes, len(s_shape), what=f"axes for {pair.source}")
        except ConfigError as e:
            raise DataError(str(e)) from None
        if config.check_pairs:
            pair_checks[pair.name] = check_pair(pair.source, pair.target, low, gt, axes)
        del low, gt
        records[pair.name] = (
            FileRecord(
                source=str(pair.source.resolve()), sha256=sha256_file(pair.source), shape=list(s_shape), dtype=s_dtype,
                pixel_size_um=s_size.um if s_size else None,
            ),
            FileRecord(
                source=str(pair.target.resolve()), sha256=sha256_file(pair.target), shape=list(t_shape), dtype=t_dtype,
                pixel_size_um=t_size.um if t_size else None,
            ),
        )  # fmt: skip
        if progress:
            progress(i + 1, 2 * len(pairing.pairs))

    warn_mixed_pixel_sizes({records[n][0].source: records[n][0].pixel_size_um or records[n][1].pixel_size_um for n in records})
    train, test = split_names(list(records), config.test_fraction, config.seed)
    split_of: dict[str, Literal["train", "test"]] = {**{n: "train" for n in train}, **{n: "test" for n in test}}
    manifest = DataManifest(
        fijiport_version=__version__,
        axes=axes,
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
                frec.placed = placer.place(Path(frec.source), dest)
            if progress:
                progress(len(pairing.pairs) + i + 1, 2 * len(pairing.pairs))
        for split in SPLITS:
            for sub in (SOURCE_DIR, TARGET_DIR):
                (tmp / split / sub).mkdir(parents=True, exist_ok=True)
        write_manifest(tmp, manifest)
    placer.warn()
    return manifest
