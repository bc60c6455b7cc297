"""``fijiport prepare n2v``: folders of noisy images (no ground truth) → a checked, split N2V data folder.

Images are split by file into training, validation and test. A single time-lapse is split by frame instead: the
first frames train, the next validate, the last are held out (contiguous blocks, so neighbouring frames, which
share their structure, do not leak between the splits); each split's frames are written as one file. With one or
two files and no frames to split, every file trains and validation patches come from them at training time. An
optional ``--gt`` folder of clean images under the same names is copied beside them, for QC only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from .. import __version__
from ..artifacts.data_folder import GT_DIR, IMAGES_DIR, N2V_SPLITS, FileRecord, N2vManifest, N2vRecord, write_manifest
from ..axes import normalize_axes
from ..calibration import pixel_size_um
from ..config.n2v import PrepareN2vConfig
from ..errors import ConfigError, DataError
from ..files import Placer, atomic_dir, list_tiffs, read_tiff, sha256_file, tiff_shape
from .checks import ImageChecks
from .file_axes import resolve_axes
from .split import split_names

log = logging.getLogger(__name__)

Split = Literal["train", "validation", "test"]


def prepare_n2v(
    image_dirs: Sequence[Path],
    data_dir: Path,
    *,
    gt_dir: Optional[Path] = None,
    config: Optional[PrepareN2vConfig] = None,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
) -> N2vManifest:
    """Check, split and copy noisy images (and their optional ground truth) into ``data_dir/{train,validation,test}``.

    Parameters
    ----------
    image_dirs : folders of noisy TIFFs (2D, 3D stacks, time-lapses); their files are pooled (names must be unique).
    data_dir : the data folder to write; appears whole or not at all.
    gt_dir : clean images with the same file names, for QC only (never used in training).
    config : axes, split fractions, seed, copy or hard link.
    overwrite : replace an existing ``data_dir``.
    progress : called as ``progress(done, total)`` while files are checked and copied.

    Returns
    -------
    N2vManifest : what was written (sources with sha256, split, axes).
    """
    config = config or PrepareN2vConfig()
    data_dir = Path(data_dir)
    images: dict[str, Path] = {}
    for folder in map(Path, image_dirs):
        if data_dir.resolve() == folder.resolve() or folder.resolve() in data_dir.resolve().parents:
            raise ConfigError(f"output {data_dir} must not be inside the input folder {folder}; choose another -o")
        found = list_tiffs(folder, what="--images folder")
        if not found:
            raise DataError(
                f"--images folder {folder} holds no .tif/.tiff files; put the noisy images there (Fiji: File > Save As > Tiff...) "
                "or point --images at the folder that holds them"
            )
        for p in found:
            if p.name in images:
                raise DataError(f"two images are named {p.name} ({images[p.name]} and {p}); rename one, the data folder keeps names")
            images[p.name] = p
    gts: dict[str, Path] = {}
    skipped: list[str] = []
    if gt_dir is not None:
        gts = {p.name: p for p in list_tiffs(gt_dir, what="--gt folder")}
        only_images, only_gt = sorted(images.keys() - gts.keys()), sorted(gts.keys() - images.keys())
        if (only_images or only_gt) and not config.allow_unpaired:
            parts = [f"without ground truth: {', '.join(only_images)}"] if only_images else []
            parts += [f"ground truth without image: {', '.join(only_gt)}"] if only_gt else []
            raise DataError(
                f"--gt {gt_dir} does not match --images by file name ({'; '.join(parts)}); the ground truth must carry the "
                "images' names: rename them, or pass --allow-unpaired to keep images without ground truth"
            )
        skipped = only_gt
        gts = {n: p for n, p in gts.items() if n in images}

    names = sorted(images)
    axes = resolve_axes([images[n] for n in names], config.axes)
    if set(axes) - set("TZYXC"):
        raise DataError(f"axes {axes} of {images[names[0]]}: N2V takes T, Z, Y, X and C; pass --axes")
    checks = ImageChecks(Path(image_dirs[0]), axes, "N2V")
    records: dict[str, tuple[FileRecord, Optional[FileRecord]]] = {}
    for i, name in enumerate(names):
        path = images[name]
        shape, dtype = tiff_shape(path)
        pixels = read_tiff(path)
        checks.check(path, shape, pixels)  # first: an RGB image is named as such, not as a wrong number of axes
        try:
            normalize_axes(axes, len(shape), what=f"axes for {path}")
        except ConfigError as e:
            raise DataError(str(e)) from None
        if pixels.size and float(pixels.min()) == float(pixels.max()):
            raise DataError(f"{path} is constant (every pixel {pixels.flat[0]}): it holds no signal to learn from; take it out")
        gt_record = None
        if name in gts:
            gt_shape, gt_dtype = tiff_shape(gts[name])
            if gt_shape != shape:
                raise DataError(f"{gts[name]} is {gt_shape} but its image {path} is {shape}; ground truth must have the image's size")
            gt_record = FileRecord(source=str(gts[name].resolve()), sha256=sha256_file(gts[name]), shape=list(gt_shape), dtype=gt_dtype)
        record = FileRecord(
            source=str(path.resolve()), sha256=sha256_file(path), shape=list(shape), dtype=dtype, pixel_size_um=pixel_size_um(path)
        )
        records[name] = (record, gt_record)
        if progress:
            progress(i + 1, 2 * len(names))

    frames_split = len(names) == 1 and "T" in axes and records[names[0]][0].shape[axes.index("T")] >= 3
    if frames_split:
        items = _split_frames(names[0], records[names[0]], axes, config)
    else:
        items = [N2vRecord(name=n, split=s, image=records[n][0], gt=records[n][1]) for n, s in _split_files(names, config).items()]
    if not any(r.split == "validation" for r in items):
        log.info("no validation images (%d file(s)): validation patches come from the training images", len(names))
    manifest = N2vManifest(
        fijiport_version=__version__, axes=axes, config=config.model_copy(update={"axes": axes}), items=items, skipped_unpaired=skipped
    )
    placer = Placer(config.link)
    with atomic_dir(data_dir, overwrite=overwrite) as tmp:
        for split in N2V_SPLITS:
            (tmp / split / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        for i, rec in enumerate(manifest.items):
            for sub, frec in ((IMAGES_DIR, rec.image), (GT_DIR, rec.gt)):
                if frec is None:
                    continue
                dest = tmp / rec.split / sub / rec.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if rec.frames is not None:
                    _write_frames(Path(frec.source), dest, axes, rec.frames)
                else:
                    frec.placed = placer.place(Path(frec.source), dest)
            if progress:
                progress(len(names) + i + 1, len(names) + len(manifest.items))
        placer.warn()
        write_manifest(tmp, manifest)
    return manifest


def _split_files(names: list[str], config: PrepareN2vConfig) -> dict[str, Split]:
    """train / validation / test by a seeded hash of the names (as ``prepare care``), each split non-empty where the
    number of files allows: test needs 3 files, validation 2 more than test."""
    n = len(names)
    rest, test = split_names(names, config.test_fraction, config.seed) if n >= 3 and config.test_fraction > 0 else (names, [])
    if len(rest) >= 2 and config.validation_fraction > 0:
        train, validation = split_names(rest, config.validation_fraction / max(1e-9, 1 - config.test_fraction), config.seed + 1)
    else:
        train, validation = rest, []
    out: dict[str, Split] = {n: "train" for n in train}
    out.update({n: "validation" for n in validation})
    out.update({n: "test" for n in test})
    return dict(sorted(out.items()))


def _split_frames(name: str, records: tuple[FileRecord, Optional[FileRecord]], axes: str, config: PrepareN2vConfig) -> list[N2vRecord]:
    """A single time-lapse split into contiguous blocks of frames: training first, then validation, then test."""
    n_frames = records[0].shape[axes.index("T")]
    n_test = max(1, round(config.test_fraction * n_frames)) if config.test_fraction > 0 else 0
    n_val = max(1, round(config.validation_fraction * n_frames)) if config.validation_fraction > 0 else 0
    n_train = n_frames - n_val - n_test
    if n_train < 1:
        raise DataError(f"{records[0].source} has {n_frames} frames, too few to split into training, validation and test; "
                        "lower --validation-fraction / --test-fraction")  # fmt: skip
    blocks: list[tuple[Split, list[int]]] = [
        ("train", list(range(n_train))), ("validation", list(range(n_train, n_train + n_val))),
        ("test", list(range(n_train + n_val, n_frames))),
    ]  # fmt: skip
    log.info("one time-lapse: frames 0-%d train, %d validate, %d are held out", n_train - 1, n_val, n_test)
    return [N2vRecord(name=name, split=split, image=records[0], gt=records[1], frames=frames) for split, frames in blocks if frames]


def _write_frames(source: Path, dest: Path, axes: str, frames: list[int]) -> None:
    import tifffile

    data = np.take(read_tiff(source), frames, axis=axes.index("T"))
    imagej = data.dtype in (np.uint8, np.uint16, np.float32) and "".join(a for a in "TZCYX" if a in axes) == axes
    tifffile.imwrite(dest, data, imagej=imagej, metadata={"axes": axes} if imagej else None)
