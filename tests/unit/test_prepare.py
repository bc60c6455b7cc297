import json

import numpy as np
import pytest
import tifffile

from fijiport.config import PrepareCareConfig
from fijiport.data import MANIFEST_NAME, load_manifest, prepare_care
from fijiport.errors import DataError, OutputExistsError
from fijiport.files import sha256_file
from helpers import tree_hashes


def _pairs(root, n=5, shape=(16, 16), gt_shape=None):
    rng = np.random.default_rng(0)
    for sub in ("low", "GT"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        tifffile.imwrite(root / "low" / f"im{i}.tif", rng.integers(0, 1000, shape, dtype=np.uint16))
        tifffile.imwrite(root / "GT" / f"im{i}.tif", rng.integers(0, 1000, gt_shape or shape, dtype=np.uint16))
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
