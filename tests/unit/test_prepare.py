import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fijiport.config import PrepareCareConfig, PrepareStardistConfig
from fijiport.data import MANIFEST_NAME, load_manifest, prepare_care
from fijiport.errors import DataError, OutputExistsError
from fijiport.files import sha256_file
from helpers import related_pair, tree_hashes


def _pairs(root, n=5, shape=(16, 16), gt_shape=None):
    rng = np.random.default_rng(0)
    for sub in ("low", "GT"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        low, gt = related_pair(rng, shape)
        tifffile.imwrite(root / "low" / f"im{i}.tif", low)
        tifffile.imwrite(root / "GT" / f"im{i}.tif", gt if gt_shape is None else related_pair(rng, gt_shape)[1])
    return root / "low", root / "GT"


def test_prepare_splits_copies_and_records_hashes(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=5)
    before = tree_hashes(tmp_path / "raw")
    manifest = prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(test_fraction=0.4, seed=3))
    assert tree_hashes(tmp_path / "raw") == before  # originals untouched
    assert manifest.axes == "YX"
    assert len(manifest.names("test")) == 2 and len(manifest.names("train")) == 3
    for rec in manifest.pairs:
        for sub, frec in (("low", rec.low), ("GT", rec.gt)):
            copy = tmp_path / "data" / rec.split / sub / rec.name
            assert sha256_file(copy) == frec.sha256 == sha256_file(frec.source)
            assert copy.stat().st_nlink == 1  # a copy, not a link to the original
    on_disk = json.loads((tmp_path / "data" / MANIFEST_NAME).read_text())
    assert on_disk["pairs"][0]["low"]["sha256"] == manifest.pairs[0].low.sha256
    assert load_manifest(tmp_path / "data").names("test") == manifest.names("test")


def test_same_seed_same_split(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=8)
    a = prepare_care(low, gt, tmp_path / "a", PrepareCareConfig(seed=7))
    b = prepare_care(low, gt, tmp_path / "b", PrepareCareConfig(seed=7))
    assert a.names("test") == b.names("test")


def test_hardlink_mode_links(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=2)
    manifest = prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(link="hardlink"))
    rec = manifest.pairs[0]
    assert (tmp_path / "data" / rec.split / "low" / rec.name).stat().st_ino == (low / rec.name).stat().st_ino


def test_unpaired_files_stop_with_their_names(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=3)
    tifffile.imwrite(low / "extra.tif", np.zeros((16, 16), np.uint16))
    with pytest.raises(DataError, match=r"only in .*low: extra\.tif.*--allow-unpaired"):
        prepare_care(low, gt, tmp_path / "data")
    assert not (tmp_path / "data").exists()
    manifest = prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(allow_unpaired=True))
    assert manifest.skipped_unpaired == ["extra.tif"] and len(manifest.pairs) == 3


def test_shape_mismatch_names_both_files(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=2, shape=(16, 16), gt_shape=(16, 18))
    with pytest.raises(DataError, match=r"shape mismatch for im0\.tif.*\(16, 16\).*\(16, 18\)"):
        prepare_care(low, gt, tmp_path / "data")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("axes,ok", [("ZYX", True), ("YX", False), ("yxc", True)], ids=["right-axes", "too-few-axes", "lowercase-ok"])
def test_axes_must_match_dimensions(tmp_path, axes, ok):
    low, gt = _pairs(tmp_path / "raw", n=2, shape=(4, 16, 16))
    if ok:
        assert prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(axes=axes)).axes == axes.upper()
    else:
        with pytest.raises(DataError, match="has 2 letters but the image has 3 dimensions"):
            prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(axes=axes))


def test_existing_output_is_refused_without_overwrite(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=2)
    prepare_care(low, gt, tmp_path / "data")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        prepare_care(low, gt, tmp_path / "data")
    prepare_care(low, gt, tmp_path / "data", overwrite=True)


def test_corrupt_tiff_is_named(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=2)
    (low / "im1.tif").write_bytes(b"this is not a TIFF")
    with pytest.raises(DataError, match=r"im1\.tif.*TIFF"):
        prepare_care(low, gt, tmp_path / "data")


@contextlib.contextmanager
def _folder_on_another_file_system(tmp_path: Path):
    """A folder on another file system than ``tmp_path``: /dev/shm (tmpfs) where it is one, else a tmpfs mounted as root."""
    here = tmp_path.stat().st_dev
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != here:
        other = Path(tempfile.mkdtemp(prefix="fijiport-test-", dir=shm))
        try:
            yield other
        finally:
            shutil.rmtree(other, ignore_errors=True)
    elif os.geteuid() == 0:
        other = tmp_path / "tmpfs"
        other.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(other)], check=True)
        try:
            yield other
        finally:
            subprocess.run(["umount", "-l", str(other)], check=False)
    else:
        pytest.skip("needs a second file system: /dev/shm on tmpfs, or root to mount one")


def test_hardlink_across_file_systems_copies_records_it_and_warns_once(tmp_path, caplog):
    from fijiport.data import prepare_stardist
    from fijiport.data.synthetic import write_care_pairs

    with _folder_on_another_file_system(tmp_path) as other:
        low, gt = write_care_pairs(other / "raw", dims=2, seed=0)
        assert low.stat().st_dev != tmp_path.stat().st_dev
        with caplog.at_level(logging.WARNING):
            manifest = prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(link="hardlink"))
        on_disk = load_manifest(tmp_path / "data")
        for rec in on_disk.pairs:
            for sub, frec in (("low", rec.low), ("GT", rec.gt)):
                assert frec.placed == "copy"
                placed = tmp_path / "data" / rec.split / sub / rec.name
                assert placed.stat().st_ino != Path(frec.source).stat().st_ino and sha256_file(placed) == frec.sha256
        assert [r.model_dump() for r in manifest.pairs] == [r.model_dump() for r in on_disk.pairs]
        warnings = [r.getMessage() for r in caplog.records if "--link hardlink" in r.getMessage()]
        assert len(warnings) == 1 and "18 of 18 file(s) were copied" in warnings[0] and "another file system" in warnings[0]

        # prepare stardist: images the same way; masks are written anew (no placement)
        images, masks = other / "sd" / "images", other / "sd" / "masks"
        images.mkdir(parents=True)
        masks.mkdir()
        lbl = np.zeros((64, 64), np.uint16)
        lbl[10:30, 10:30], lbl[40:60, 35:55] = 1, 2
        tifffile.imwrite(images / "a.tif", np.random.default_rng(0).random((64, 64)).astype(np.float32))
        tifffile.imwrite(masks / "a.tif", lbl)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            sd = prepare_stardist(images, tmp_path / "sd_data", masks_dir=masks, config=PrepareStardistConfig(link="hardlink"))
        assert sd.items[0].image.placed == "copy" and sd.items[0].mask.placed is None
        assert any("1 of 1 file(s) were copied" in r.getMessage() for r in caplog.records)


def test_placement_is_recorded_on_one_file_system(tmp_path, caplog):
    low, gt = _pairs(tmp_path / "raw", n=2)
    with caplog.at_level(logging.WARNING):
        linked = prepare_care(low, gt, tmp_path / "linked", PrepareCareConfig(link="hardlink"))
        copied = prepare_care(low, gt, tmp_path / "copied")
    assert {f.placed for r in linked.pairs for f in (r.low, r.gt)} == {"hardlink"}
    assert {f.placed for r in copied.pairs for f in (r.low, r.gt)} == {"copy"}
    assert not [r for r in caplog.records if "--link hardlink" in r.getMessage()]


def test_manifests_written_before_placement_was_recorded_still_read(tmp_path):
    low, gt = _pairs(tmp_path / "raw", n=2)
    prepare_care(low, gt, tmp_path / "data")
    path = tmp_path / "data" / MANIFEST_NAME
    old = json.loads(path.read_text())
    for rec in old["pairs"]:
        for side in ("low", "gt"):
            del rec[side]["placed"]
    path.write_text(json.dumps(old))
    assert load_manifest(tmp_path / "data").pairs[0].low.placed is None
