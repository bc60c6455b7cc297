"""``fijiport prepare care``: from two folders of acquisitions to a checked, split data folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Optional

from .. import __version__
from ..artifacts.data_folder import SOURCE_DIR, SPLITS, TARGET_DIR, DataManifest, FileRecord, PairChecks, PairRecord, write_manifest
from ..axes import normalize_axes
from ..config.data import PrepareCareConfig
from ..errors import ConfigError, DataError
from ..files import Placer, atomic_dir, read_tiff, sha256_file, tiff_shape
from .checks import ImageChecks
from .file_axes import resolve_axes
from .pair_checks import check_pair
from .pairing import pair_images
from .split import split_names

log = logging.getLogger(__name__)


def prepare_care(
    low_dir: Path,
    gt_dir: Path,
    data_dir: Path,
    config: Optional[PrepareCareConfig] = None,
    *,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
) -> DataManifest:
    """Pair, check, split and copy low/GT acquisitions into ``data_dir/{train,test}/{low,GT}``.

    Each image is checked (readable, finite, grayscale unless the axes have channels), and each pair too unless
    ``config.check_pairs`` is off (:mod:`fijiport.data.pair_checks`: the same field, GT the less noisy, not clipped).
    The originals are only read. The data folder appears whole or not at all.

    Parameters
    ----------
    low_dir
        The low-quality acquisitions (TIFF), 2D images or stacks.
    gt_dir
        The ground truth, with the same file names as ``low_dir``.
    data_dir
        The data folder to write (not inside either input folder).
    config
        Axes, test fraction, seed, unpaired files, copy or hard link, pair checks (defaults: :class:`~fijiport.config.data.PrepareCareConfig`).
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
    low_dir, gt_dir, data_dir = Path(low_dir), Path(gt_dir), Path(data_dir)
    if low_dir.resolve() == gt_dir.resolve():
        raise ConfigError(
            f"--low and --gt are the same folder ({low_dir}); CARE learns from two acquisitions of the same "
            "field: low-quality images in --low, high-quality ground truth with the same file names in --gt"
        )
    for inp in (low_dir, gt_dir):
        if data_dir.resolve() == inp.resolve() or inp.resolve() in data_dir.resolve().parents:
            raise ConfigError(f"output {data_dir} must not be inside the input folder {inp}; choose another -o")
    pairing = pair_images(low_dir, gt_dir, source_label="--low", target_label="--gt")
    if pairing.unpaired and not config.allow_unpaired:
        parts = []
        if pairing.only_source:
            parts.append(f"only in {low_dir}: {', '.join(pairing.only_source)}")
        if pairing.only_target:
            parts.append(f"only in {gt_dir}: {', '.join(pairing.only_target)}")
        raise DataError(
            "unpaired files (low and GT are paired by identical file name): "
            + "; ".join(parts)
            + ". Rename them to match, remove them, or pass --allow-unpaired to skip them"
        )
    if not pairing.pairs:
        raise DataError(f"no file name occurs in both {low_dir} and {gt_dir}; low and GT are paired by identical file name")

    axes = resolve_axes([p for pair in pairing.pairs for p in (pair.source, pair.target)], config.axes)
    records: dict[str, tuple[FileRecord, FileRecord]] = {}
    pair_checks: dict[str, PairChecks] = {}
    checks = ImageChecks(low_dir, config.axes, "CARE")
    for i, pair in enumerate(pairing.pairs):
        (s_shape, s_dtype), (t_shape, t_dtype) = tiff_shape(pair.source), tiff_shape(pair.target)
        if s_shape != t_shape:
            raise DataError(
                f"shape mismatch for {pair.name}: {pair.source} is {s_shape} but {pair.target} is {t_shape}; "
                "low and GT must be registered acquisitions of the same size"
            )
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
            FileRecord(source=str(pair.source.resolve()), sha256=sha256_file(pair.source), shape=list(s_shape), dtype=s_dtype),
            FileRecord(source=str(pair.target.resolve()), sha256=sha256_file(pair.target), shape=list(t_shape), dtype=t_dtype),
        )
        if progress:
            progress(i + 1, 2 * len(pairing.pairs))

    train, test = split_names(list(records), config.test_fraction, config.seed)
    split_of: dict[str, Literal["train", "test"]] = {**{n: "train" for n in train}, **{n: "test" for n in test}}
    manifest = DataManifest(
        fijiport_version=__version__,
        axes=axes,
        config=config.model_copy(update={"axes": axes}),
        pairs=[
            PairRecord(name=n, split=split_of[n], low=records[n][0], gt=records[n][1], checks=pair_checks.get(n)) for n in sorted(records)
        ],
        skipped_unpaired=pairing.only_source + pairing.only_target,
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
