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


def _many_nuclei(tiles: int = 4, sequential: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """stardist's nuclei image and its labels tiled 2×2 (or 2×1): 500 (250) real objects, ids 1..N when ``sequential``."""
    from skimage.segmentation import relabel_sequential
    from stardist.data import test_image_nuclei_2d

    img, lbl = test_image_nuclei_2d(return_mask=True)
    lbl = relabel_sequential(lbl.astype(np.int64))[0] if sequential else lbl.astype(np.int64)
    parts = [np.where(lbl > 0, lbl + k * int(lbl.max()), 0) for k in range(tiles)]
    if tiles == 4:
        return np.block([[img, img], [img, img]]), np.block([[parts[0], parts[1]], [parts[2], parts[3]]])
    return np.concatenate([img, img], axis=1), np.concatenate(parts, axis=1)


EIGHT_BIT = {
    "ids wrapped modulo 256": (lambda: _many_nuclei(), lambda lbl: lbl.astype(np.uint8), "uses all 255 label values"),
    "ids clipped at 255": (lambda: _many_nuclei(), lambda lbl: np.minimum(lbl, 255).astype(np.uint8), "uses all 255 label values"),
    "sparse ids wrapped": (lambda: _many_nuclei(2, sequential=False), lambda lbl: lbl.astype(np.uint8), "cover separate parts"),
}


@pytest.mark.parametrize("case", sorted(EIGHT_BIT))
def test_8bit_mask_of_more_than_255_objects_is_refused_naming_the_fix(case, tmp_path):
    from typer.testing import CliRunner

    from fijiport.cli import app

    make, to_8bit, message = EIGHT_BIT[case]
    img, lbl = make()
    assert lbl.max() > 255
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "many.tif", img)
    tifffile.imwrite(tmp_path / "masks" / "many.tif", to_8bit(lbl))
    before = tree_hashes(tmp_path)
    r = CliRunner().invoke(
        app, ["prepare", "stardist", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "-o", str(tmp_path / "d")]
    )
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "many.tif is 8-bit" in text and message in text and "Image > Type > 16-bit" in text and "--rois" in text
    assert "Traceback" not in text and not (tmp_path / "d").exists() and tree_hashes(tmp_path) == before


def test_the_same_objects_pass_in_16_bit_and_fewer_objects_in_8_bit():
    _, lbl = _many_nuclei()
    _, report = check_label_image(lbl.astype(np.uint16), lbl.shape, "many16.tif")
    assert report.n_objects == 500 and report.disconnected == []
    _, one = _many_nuclei(1)  # 125 objects
    _, report = check_label_image(one.astype(np.uint8), one.shape, "few8.tif")
    assert report.n_objects == 125 and report.disconnected == []


def test_labels_made_of_disconnected_parts_are_counted_and_warned(caplog):
    import logging

    from stardist.data import test_image_nuclei_2d

    _, lbl = test_image_nuclei_2d(return_mask=True)
    lbl = lbl[:256, :256].copy()
    _, clean = check_label_image(lbl, lbl.shape, "clean.tif")
    assert clean.disconnected == [] and clean.to_dict()["disconnected_labels"] == 0
    ids = [v for v in np.unique(lbl) if v]
    merged = lbl.copy()
    merged[lbl == ids[-1]] = ids[0]  # two far-apart nuclei under one id
    merged[lbl == ids[-2]] = ids[1]
    with caplog.at_level(logging.WARNING):
        _, report = check_label_image(merged, merged.shape, "merged.tif")
    assert report.disconnected == [int(ids[0]), int(ids[1])] and report.to_dict()["disconnected_labels"] == 2
    assert any("2 label(s) made of disconnected parts (4 parts" in n for n in report.notes), report.notes
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("merged.tif: 2 label(s) are made of disconnected parts" in w for w in warned), warned
