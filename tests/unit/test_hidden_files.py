"""Hidden files next to the images (issue 21, item 8): macOS leaves a ``._NAME.tif`` of resource-fork data next to
every file it copies to a USB stick or a network share. They are skipped, with one warning saying how many, wherever
fijiport lists TIFFs (prepare care, prepare stardist, predict) and ROI sets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tifffile

from fijiport.data import prepare_care, prepare_stardist
from fijiport.data.synthetic import write_care_pairs

# what macOS writes: the AppleDouble magic and version, "Mac OS X", then the Finder info and resource fork
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + bytes(4000)


def _hide_files_in(folder: Path) -> None:
    for p in sorted(folder.glob("*.tif"))[:2]:
        (folder / f"._{p.name}").write_bytes(APPLE_DOUBLE)
    tifffile.imwrite(folder / ".thumbnail.tif", np.zeros((8, 8), np.uint8))  # a real TIFF, but hidden


def _skip_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "hidden file" in r.getMessage()]


def test_prepare_care_skips_hidden_files_and_says_how_many(tmp_path, caplog):
    low, gt = write_care_pairs(tmp_path / "raw", dims=2, seed=0)
    _hide_files_in(low)
    _hide_files_in(gt)
    with caplog.at_level(logging.WARNING):
        manifest = prepare_care(low, gt, tmp_path / "data")
    assert len(manifest.pairs) == 9 and not any(p.name.startswith(".") for p in manifest.pairs)
    assert not manifest.skipped_unpaired
    warnings = _skip_warnings(caplog)
    assert len(warnings) == 2  # one per folder
    assert all("skipped 3 hidden file(s)" in w and "._nuclei_00.tif" in w for w in warnings), warnings


def _stardist_folders(root: Path) -> tuple[Path, Path]:
    from stardist.data import test_image_nuclei_2d

    img, lbl = test_image_nuclei_2d(return_mask=True)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(2):
        tifffile.imwrite(root / "images" / f"n{i}.tif", img[:128, i * 128 : (i + 1) * 128])
        tifffile.imwrite(root / "masks" / f"n{i}.tif", lbl[:128, i * 128 : (i + 1) * 128])
    return root / "images", root / "masks"


def test_prepare_stardist_skips_hidden_images_masks_and_roi_sets(tmp_path, caplog):
    from fijiport.data.rois import labels_to_rois, write_rois

    images, masks = _stardist_folders(tmp_path)
    _hide_files_in(images)
    _hide_files_in(masks)
    with caplog.at_level(logging.WARNING):
        manifest = prepare_stardist(images, tmp_path / "data", masks_dir=masks)
    assert sorted(manifest.names("train") + manifest.names("test")) == ["n0.tif", "n1.tif"]
    assert len(_skip_warnings(caplog)) == 2

    rois = tmp_path / "rois"
    rois.mkdir()
    for i in range(2):
        write_rois(labels_to_rois(tifffile.imread(masks / f"n{i}.tif")), rois / f"n{i}.zip")
        (rois / f"._n{i}.zip").write_bytes(APPLE_DOUBLE)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        manifest = prepare_stardist(images, tmp_path / "data_rois", rois_dir=rois)
    assert not manifest.skipped_unpaired and len(manifest.items) == 2
    assert any("skipped 2 hidden file(s)" in w and "._n0.zip" in w for w in _skip_warnings(caplog))


def test_predict_skips_hidden_files_in_a_folder(tmp_path, caplog):
    from fijiport.predict import expand_images

    for i in range(3):
        tifffile.imwrite(tmp_path / f"im{i}.tif", np.zeros((16, 16), np.uint16))
    _hide_files_in(tmp_path)
    with caplog.at_level(logging.WARNING):
        files = expand_images([tmp_path])
    assert [f.name for f in files] == ["im0.tif", "im1.tif", "im2.tif"]
    assert any("skipped 3 hidden file(s)" in w and "._im0.tif" in w for w in _skip_warnings(caplog))
