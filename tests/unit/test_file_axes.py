"""ImageJ/OME hyperstack axes (issue 21, item 7): a two-channel ``CYX`` file saved from Fiji was taken as ``ZYX``.
Without --axes the files' metadata decide; with --axes they must agree; and the files of one run must agree."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.axes import axes_from_tifffile
from fijiport.cli import app
from fijiport.config import PrepareCareConfig, PrepareStardistConfig
from fijiport.data import load_manifest, load_stardist_manifest, prepare_care, prepare_stardist
from fijiport.errors import ConfigError, DataError
from helpers import tree_hashes, two_channel_pairs

runner = CliRunner()


@pytest.mark.parametrize(
    "letters,axes",
    [("CYX", "CYX"), ("TZCYX", "TZCYX"), ("YXS", "YXC"), ("ZYX", "ZYX"), ("YX", "YX"), ("QYX", None), ("IYX", None)],
    ids=["imagej-channels", "imagej-hyperstack", "rgb-samples-are-channels", "z-stack", "2d", "unknown", "image-sequence"],
)
def test_tifffile_axes_map_to_fijiports(letters, axes):
    assert axes_from_tifffile(letters) == axes


@pytest.mark.parametrize("letters,message", [("EYX", "lambda"), ("CYXS", "both channels")], ids=["spectral", "channels-and-samples"])
def test_tifffile_axes_fijiport_cannot_express_are_refused(letters, message):
    with pytest.raises(ConfigError, match=message):
        axes_from_tifffile(letters)


def test_imagej_two_channel_pairs_are_prepared_as_cyx(tmp_path):
    low, gt = two_channel_pairs(tmp_path)
    manifest = prepare_care(low, gt, tmp_path / "data")
    assert manifest.axes == "CYX" and load_manifest(tmp_path / "data").axes == "CYX"
    assert manifest.pairs[0].low.shape == [2, 160, 160]
    # the same files, explicitly: agreed
    assert prepare_care(low, gt, tmp_path / "data2", PrepareCareConfig(axes="CYX")).axes == "CYX"


def test_ome_axes_are_read_too(tmp_path):
    low, gt = two_channel_pairs(tmp_path, ome=True, metadata={"axes": "CYX"})
    assert prepare_care(low, gt, tmp_path / "data").axes == "CYX"


def test_files_without_axes_metadata_are_guessed_as_before(tmp_path):
    low, gt = two_channel_pairs(tmp_path, metadata=None)  # tifffile's plain pages: no axes anywhere
    assert prepare_care(low, gt, tmp_path / "data").axes == "ZYX"


def test_axes_option_that_disagrees_with_the_metadata_is_refused_naming_both(tmp_path):
    low, gt = two_channel_pairs(tmp_path)
    before = tree_hashes(tmp_path)
    r = runner.invoke(app, ["prepare", "care", "--low", str(low), "--gt", str(gt), "-o", str(tmp_path / "data"), "--axes", "ZYX"])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "--axes ZYX but" in text and "f0.tif declares CYX in its ImageJ metadata" in text and "Image > Properties" in text
    assert "Traceback" not in text and not (tmp_path / "data").exists() and tree_hashes(tmp_path) == before


def test_files_whose_metadata_disagree_are_refused_naming_two(tmp_path):
    low, gt = two_channel_pairs(tmp_path)
    stack = tifffile.imread(gt / "f1.tif")
    tifffile.imwrite(gt / "f1.tif", stack, imagej=True, metadata={"axes": "ZYX"})  # a GT saved as slices
    with pytest.raises(DataError, match=r"f0.tif declares CYX in its ImageJ metadata .* but .*f1.tif declares ZYX .*separate runs"):
        prepare_care(low, gt, tmp_path / "data")
    # one file without metadata among hyperstacks: read as ZYX, so refused too; --axes settles it
    tifffile.imwrite(gt / "f1.tif", stack, metadata=None)
    with pytest.raises(DataError, match=r"f0.tif declares CYX .* but .*f1.tif has no axes in its metadata .*read as ZYX.*--axes CYX"):
        prepare_care(low, gt, tmp_path / "data")
    assert prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(axes="CYX")).axes == "CYX"
    assert not (tmp_path / "data.partial").exists()


def test_metadata_axes_fijiport_cannot_express_need_the_axes_option(tmp_path):
    low, gt = two_channel_pairs(tmp_path, metadata={"axes": "EYX"})  # a spectral dimension (tifffile's own metadata)
    with pytest.raises(DataError, match=r"f0.tif: its tifffile metadata declares axes 'EYX' hold 'E' \(lambda \(spectral\)\).*--axes"):
        prepare_care(low, gt, tmp_path / "data")
    assert prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(axes="CYX")).axes == "CYX"


def test_prepare_stardist_reads_image_axes_from_metadata(tmp_path):
    from stardist.data import test_image_nuclei_2d

    img, lbl = test_image_nuclei_2d(return_mask=True)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(2):
        crop = np.s_[:128, i * 128 : (i + 1) * 128]
        tifffile.imwrite(tmp_path / "images" / f"n{i}.tif", np.stack([img[crop], img[crop][::-1]]), imagej=True, metadata={"axes": "CYX"})
        tifffile.imwrite(tmp_path / "masks" / f"n{i}.tif", lbl[crop])
    manifest = prepare_stardist(tmp_path / "images", tmp_path / "data", masks_dir=tmp_path / "masks")
    assert manifest.axes == "CYX" and load_stardist_manifest(tmp_path / "data").items[0].mask.shape == [128, 128]
    with pytest.raises(DataError, match="--axes ZYX but .*n0.tif declares CYX"):
        prepare_stardist(tmp_path / "images", tmp_path / "data2", masks_dir=tmp_path / "masks", config=PrepareStardistConfig(axes="ZYX"))
