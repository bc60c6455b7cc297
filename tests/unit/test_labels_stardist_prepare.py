import numpy as np
import pytest
import tifffile

from fijiport.config.data import PrepareStardistConfig
from fijiport.data import prepare_stardist
from fijiport.data.labels import check_label_image
from fijiport.errors import ConfigError, DataError
from helpers import tree_hashes


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def test_label_image_is_relabelled_and_reported():
    lbl = np.zeros((64, 64), np.uint16)
    lbl[_disk(lbl.shape, 16, 16, 8)] = 7
    lbl[_disk(lbl.shape, 45, 45, 9)] = 300
    lbl[2, 60] = 12  # a one-pixel object
    out, report = check_label_image(lbl, (64, 64), "m.tif", min_area=5)
    assert sorted(np.unique(out)) == [0, 1, 2, 3]
    assert report.n_objects == 3 and len(report.tiny) == 1 and report.relabelled
    assert report.not_star_convex == []


def test_binary_mask_of_separate_objects_is_labelled():
    b = np.zeros((64, 64), np.uint8)
    b[_disk(b.shape, 16, 16, 8)] = 255
    b[_disk(b.shape, 45, 45, 9)] = 255
    _out, report = check_label_image(b, (64, 64), "b.tif")
    assert report.from_binary and report.n_objects == 2


@pytest.mark.parametrize(
    "mask,shape,message",
    [
        (np.zeros((64, 64), np.float32), (64, 64), "floating-point"),
        (np.full((64, 64), -1, np.int16), (64, 64), "negative"),
        (np.zeros((64, 60), np.uint16), (64, 64), "shape"),
    ],
    ids=["float-mask", "negative-labels", "shape-mismatch"],
)
def test_not_a_label_image_is_refused_naming_the_file(mask, shape, message):
    with pytest.raises(DataError, match=f"m_bad.tif.*{message}|{message}.*m_bad.tif"):
        check_label_image(mask, shape, "m_bad.tif")


def test_binary_mask_with_touching_objects_is_refused():
    b = np.zeros((64, 96), np.uint8)
    for cx in (20, 34, 48, 62, 76):  # a chain of touching disks: one region, far from star-convex
        b[_disk(b.shape, 32 + (8 if cx % 28 else -8), cx, 8)] = 1
    with pytest.raises(DataError, match="touching objects"):
        check_label_image(b, b.shape, "touch.tif")


def test_empty_mask_is_allowed_with_a_note():
    _out, report = check_label_image(np.zeros((32, 32), np.uint16), (32, 32), "e.tif")
    assert report.n_objects == 0 and "empty" in report.notes[0]


def _folder(tmp_path, n=4):
    from stardist.data import test_image_nuclei_2d

    img, lbl = test_image_nuclei_2d(return_mask=True)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(n):
        sl = np.s_[(i // 2) * 256 : (i // 2) * 256 + 256, (i % 2) * 256 : (i % 2) * 256 + 256]
        tifffile.imwrite(tmp_path / "images" / f"n{i}.tif", img[sl])
        tifffile.imwrite(tmp_path / "masks" / f"n{i}.tif", lbl[sl])
    return tmp_path / "images", tmp_path / "masks"


def test_prepare_stardist_writes_relabelled_masks_and_keeps_inputs(tmp_path):
    images, masks = _folder(tmp_path)
    before = tree_hashes(tmp_path)
    manifest = prepare_stardist(images, tmp_path / "data", masks_dir=masks, config=PrepareStardistConfig(test_fraction=0.25))
    assert tree_hashes(tmp_path / "images") == {k.split("/", 1)[1]: v for k, v in before.items() if k.startswith("images/")}
    assert tree_hashes(tmp_path / "masks") == {k.split("/", 1)[1]: v for k, v in before.items() if k.startswith("masks/")}
    assert len(manifest.names("test")) == 1 and len(manifest.names("train")) == 3
    for item in manifest.items:
        written = tifffile.imread(tmp_path / "data" / item.split / "masks" / item.name)
        labels = np.unique(written)[1:]
        assert list(labels) == list(range(1, len(labels) + 1)) == list(range(1, item.report["n_objects"] + 1))


def test_prepare_stardist_unpaired_and_option_errors(tmp_path):
    images, masks = _folder(tmp_path, n=2)
    (masks / "n1.tif").unlink()
    with pytest.raises(DataError, match="images without mask: n1.tif.*--allow-unpaired"):
        prepare_stardist(images, tmp_path / "data", masks_dir=masks)
    with pytest.raises(ConfigError, match="exactly one of --masks"):
        prepare_stardist(images, tmp_path / "data", masks_dir=masks, rois_dir=masks)
    manifest = prepare_stardist(images, tmp_path / "data", masks_dir=masks, config=PrepareStardistConfig(allow_unpaired=True))
    assert manifest.names("train") + manifest.names("test") == ["n0.tif"]


def test_care_training_refuses_a_stardist_folder(tmp_path):
    from fijiport.data import load_manifest

    images, masks = _folder(tmp_path, n=2)
    prepare_stardist(images, tmp_path / "data", masks_dir=masks)
    with pytest.raises(DataError, match="StarDist data folder"):
        load_manifest(tmp_path / "data")
