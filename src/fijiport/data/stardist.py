"""``fijiport prepare stardist``: images plus label masks (or ImageJ ROI sets) → a checked, split data folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from .. import __version__
from ..artifacts.data_folder import IMAGES_DIR, MASKS_DIR, SPLITS, FileRecord, StardistManifest, StardistRecord, write_manifest
from ..axes import normalize_axes
from ..calibration import pixel_size_um
from ..config.data import PrepareStardistConfig
from ..errors import ConfigError, DataError, UsageError
from ..files import Placer, atomic_dir, list_files, list_tiffs, read_tiff, sha256_file
from .checks import ImageChecks
from .file_axes import resolve_axes
from .labels import LabelReport, check_label_frames, check_label_image
from .rois import rois_to_label_frames, rois_to_labels
from .split import split_names

log = logging.getLogger(__name__)


def _pair(images_dir: Path, masks_dir: Optional[Path], rois_dir: Optional[Path]) -> tuple[dict, list[str], list[str]]:
    images = {p.name: p for p in list_tiffs(images_dir, what="--images folder")}
    if not images:
        raise DataError(
            f"--images folder {images_dir} holds no .tif/.tiff files; put the images there "
            "(Fiji: File > Save As > Tiff...) or point --images at the folder that holds them"
        )
    if (masks_dir is None) == (rois_dir is None):
        raise UsageError("pass exactly one of --masks DIR (label images) or --rois DIR (ImageJ ROI set zips)")
    if masks_dir is not None:
        masks = {p.name: p for p in list_tiffs(masks_dir, what="--masks folder")}
        if not masks:
            raise DataError(
                f"--masks folder {masks_dir} holds no .tif/.tiff files; save the label images there with the "
                "images' file names, or use --rois DIR with ImageJ ROI sets"
            )
        common = sorted(images.keys() & masks.keys())
        return ({n: (images[n], masks[n]) for n in common}, sorted(images.keys() - masks.keys()), sorted(masks.keys() - images.keys()))
    assert rois_dir is not None
    if not Path(rois_dir).is_dir():
        raise DataError(f"--rois folder {rois_dir} does not exist")
    zips = {p.stem: p for p in list_files(rois_dir, (".zip",), what="--rois folder")}
    if not zips:
        raise DataError(f"--rois folder {rois_dir} holds no .zip ROI sets (save them from the ROI Manager as <image name>.zip)")
    pairs, only_images = {}, []
    used = set()
    for name, path in images.items():
        stem = Path(name).stem
        key = stem if stem in zips else (name if name in zips else None)
        if key is None:
            only_images.append(name)
        else:
            pairs[name] = (path, zips[key])
            used.add(key)
    return pairs, sorted(only_images), sorted(f"{k}.zip" for k in zips.keys() - used)


def prepare_stardist(
    images_dir: Path,
    data_dir: Path,
    *,
    masks_dir: Optional[Path] = None,
    rois_dir: Optional[Path] = None,
    config: Optional[PrepareStardistConfig] = None,
    overwrite: bool = False,
    progress: Optional[Callable[[int, int], None]] = None,
) -> StardistManifest:
    """Check every mask against its image, relabel 1..N, report objects, split and write
    ``data_dir/{train,test}/{images,masks}``. Inputs are only read.

    Parameters
    ----------
    images_dir
        The images (TIFF), 2D or 3D.
    data_dir
        The data folder to write (not inside an input folder).
    masks_dir
        Label masks with the images' file names (integer labels, background 0); or give ``rois_dir``.
    rois_dir
        ImageJ ROI sets ``<image name>.zip`` (from the ROI Manager), filled as ImageJ paints them.
    config
        Axes, test fraction, seed, unpaired files, copy or hard link, the smallest object kept.
    overwrite
        Replace an existing ``data_dir``.
    progress
        Called as ``progress(done, total)`` while files are checked and copied (e.g. :class:`fijiport.notebook.CountBar`).

    Returns
    -------
    StardistManifest
        What was written: the sources with their sha256, the split, the axes and each mask's object report.
    """

    config = config or PrepareStardistConfig()
    images_dir, data_dir = Path(images_dir), Path(data_dir)
    pairs, only_images, only_masks = _pair(images_dir, masks_dir, rois_dir)
    mask_kind = "mask" if masks_dir is not None else "rois"
    if (only_images or only_masks) and not config.allow_unpaired:
        parts = []
        if only_images:
            parts.append(f"images without {'mask' if mask_kind == 'mask' else 'ROI set'}: {', '.join(only_images)}")
        if only_masks:
            parts.append(f"{'masks' if mask_kind == 'mask' else 'ROI sets'} without image: {', '.join(only_masks)}")
        raise DataError(
            "; ".join(parts)
            + (
                ". Masks pair with images by identical file name"
                if mask_kind == "mask"
                else ". ROI sets pair with images as <image base name>.zip"
            )
            + "; rename or remove them, or pass --allow-unpaired"
        )
    if not pairs:
        raise DataError(f"no image in {images_dir} has a {'mask' if mask_kind == 'mask' else 'ROI set'}")

    axes = resolve_axes([img_path for _, (img_path, _) in sorted(pairs.items())], config.axes)
    masks: dict[str, np.ndarray] = {}
    reports: dict[str, LabelReport] = {}
    records: dict[str, tuple[FileRecord, FileRecord]] = {}
    checks = ImageChecks(images_dir, config.axes, "StarDist")
    for i, (name, (img_path, mask_path)) in enumerate(sorted(pairs.items())):
        image = read_tiff(img_path)
        checks.check(img_path, image.shape, image)
        try:
            normalize_axes(axes, image.ndim, what=f"axes for {img_path}")
        except ConfigError as e:
            raise DataError(str(e)) from None
        spatial_shape = tuple(s for s, a in zip(image.shape, axes) if a in "ZYX")
        if "T" in axes:
            n_frames = image.shape[axes.index("T")]
            raw_mask = read_tiff(mask_path) if mask_kind == "mask" else rois_to_label_frames(mask_path, n_frames, spatial_shape)
            masks[name], reports[name] = check_label_frames(raw_mask, n_frames, spatial_shape, mask_path, min_area=config.min_area)
        else:
            raw_mask = read_tiff(mask_path) if mask_kind == "mask" else rois_to_labels(mask_path, spatial_shape)
            masks[name], reports[name] = check_label_image(raw_mask, spatial_shape, mask_path, min_area=config.min_area)
        records[name] = (
            FileRecord(
                source=str(img_path.resolve()),
                sha256=sha256_file(img_path),
                shape=list(image.shape),
                dtype=str(image.dtype),
                pixel_size_um=pixel_size_um(img_path),
            ),
            FileRecord(
                source=str(Path(mask_path).resolve()),
                sha256=sha256_file(mask_path),
                shape=list(masks[name].shape),
                dtype=str(masks[name].dtype),
            ),
        )
        if progress:
            progress(i + 1, len(pairs))
    train, test = split_names(list(records), config.test_fraction, config.seed)
    split_of: dict[str, Literal["train", "test"]] = {**{n: "train" for n in train}, **{n: "test" for n in test}}
    manifest = StardistManifest(
        fijiport_version=__version__,
        axes=axes,
        config=config.model_copy(update={"axes": axes}),
        items=[
            StardistRecord(
                name=n, split=split_of[n], image=records[n][0], mask=records[n][1], mask_source=mask_kind, report=reports[n].to_dict()
            )
            for n in sorted(records)
        ],
        skipped_unpaired=only_images + only_masks,
    )
    import tifffile

    placer = Placer(config.link)
    with atomic_dir(data_dir, overwrite=overwrite) as tmp:
        for split in SPLITS:
            for sub in (IMAGES_DIR, MASKS_DIR):
                (tmp / split / sub).mkdir(parents=True, exist_ok=True)
        for rec in manifest.items:
            rec.image.placed = placer.place(Path(rec.image.source), tmp / rec.split / IMAGES_DIR / rec.name)
            tifffile.imwrite(tmp / rec.split / MASKS_DIR / rec.name, masks[rec.name], compression="zlib")
        write_manifest(tmp, manifest)
    placer.warn()
    return manifest
