"""Pixel sizes read from ImageJ and OME metadata, written back on outputs, checked within pairs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile

from fijiport.calibration import PixelSize, differences, median_pixel_size, read_pixel_size, write_tiff
from fijiport.config import PrepareCareConfig
from fijiport.data import load_manifest, prepare_care
from fijiport.errors import DataError
from helpers import imagej_calibrated, related_pair, tree_hashes

OME_NM = {"PhysicalSizeX": 162.5, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 162.5, "PhysicalSizeYUnit": "nm"}


@pytest.mark.parametrize(
    "write,expected",
    [
        (lambda p, a: imagej_calibrated(p, a, 0.1625, 1.5), ({"Z": 1.5, "Y": 0.1625, "X": 0.1625}, "ImageJ")),
        (lambda p, a: imagej_calibrated(p, a, 162.5, 1500, unit="nm"), ({"Z": 1.5, "Y": 0.1625, "X": 0.1625}, "ImageJ")),
        (lambda p, a: imagej_calibrated(p, a, 0.1625, 1.5, unit="\\u00B5m"), ({"Z": 1.5, "Y": 0.1625, "X": 0.1625}, "ImageJ")),
        (
            lambda p, a: tifffile.imwrite(
                p, a, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.1625, "PhysicalSizeY": 0.1625, "PhysicalSizeZ": 1.5}
            ),
            ({"Z": 1.5, "Y": 0.1625, "X": 0.1625}, "OME"),
        ),
        (
            lambda p, a: tifffile.imwrite(p, a, ome=True, metadata={"axes": "ZYX", **OME_NM}),
            ({"Y": 0.1625, "X": 0.1625}, "OME"),
        ),
        (lambda p, a: tifffile.imwrite(p, a, imagej=True, metadata={"axes": "ZYX"}), None),
        (lambda p, a: tifffile.imwrite(p, a), None),
        (lambda p, a: tifffile.imwrite(p, a, resolution=(72, 72), resolutionunit="INCH"), None),
    ],
    ids=["imagej-micron", "imagej-nm", "imagej-escaped-mu", "ome", "ome-nm-no-z", "imagej-uncalibrated", "plain", "72-dpi"],
)
def test_pixel_sizes_are_read_from_imagej_and_ome_metadata(tmp_path, write, expected):
    path = tmp_path / "img.tif"
    write(path, np.zeros((3, 16, 16), np.uint16))
    found = read_pixel_size(path)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.source == expected[1]
        assert found.um.keys() == expected[0].keys() and all(found.um[a] == pytest.approx(v, rel=1e-6) for a, v in expected[0].items())


@pytest.mark.parametrize(
    "axes,dtype,source,kind",
    [("TZYX", "float32", "ImageJ", "imagej"), ("TZYX", "float32", "OME", "ome"), ("CYX", "float32", "ImageJ", "imagej"),
     ("YXC", "float32", "ImageJ", "shaped"), ("ZYX", "uint32", "ImageJ", "shaped")],
    ids=["imagej-hyperstack", "ome", "channels-first", "channels-last", "uint32-labels"],
)  # fmt: skip
def test_outputs_keep_the_pixel_size_and_axes(tmp_path, axes, dtype, source, kind):
    shape = {"T": 2, "Z": 3, "C": 2, "Y": 16, "X": 20}
    data = np.arange(np.prod([shape[a] for a in axes])).reshape([shape[a] for a in axes]).astype(dtype)
    size = PixelSize({"Z": 1.5, "Y": 0.1625, "X": 0.2}, source, frame_interval=30.0)
    write_tiff(tmp_path / "out.tif", data, axes, size, overwrite=False)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.series[0].kind == kind and tif.series[0].axes == axes
    back = read_pixel_size(tmp_path / "out.tif")
    assert back is not None
    want = {a: v for a, v in size.um.items() if a in axes or kind == "shaped"}
    want = {a: v for a, v in want.items() if kind != "shaped" or a in "YX"}  # plain TIFFs keep Y and X (resolution tags)
    assert back.um == pytest.approx(want, rel=1e-6)
    if "T" in axes:
        assert back.frame_interval == 30.0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), data)


def test_differences_and_median():
    assert differences({"Y": 0.2, "X": 0.2}, {"Y": 0.1625, "X": 0.1625}) == {
        "Y": pytest.approx(1.2308, rel=1e-3),
        "X": pytest.approx(1.2308, rel=1e-3),
    }
    assert differences({"Y": 0.18, "X": 0.18}, {"Y": 0.1625, "X": 0.1625}) == {}
    assert differences({"Z": 2.0, "Y": 0.1, "X": 0.1}, {"Y": 0.1, "X": 0.1}) == {}  # only axes both declare
    assert median_pixel_size([None, {"Y": 0.1, "X": 0.1}, {"Y": 0.3, "X": 0.3}, {"Y": 0.2, "X": 0.2}]) == {"Y": 0.2, "X": 0.2}
    assert median_pixel_size([None, None]) is None


def _calibrated_pairs(root, n=3, low_um=0.1625, gt_um=0.1625, shape=(32, 32)):
    rng = np.random.default_rng(0)
    for sub in ("low", "GT"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        low, gt = related_pair(rng, shape)
        imagej_calibrated(root / "low" / f"im{i}.tif", low, low_um)
        imagej_calibrated(root / "GT" / f"im{i}.tif", gt, gt_um)
    return root / "low", root / "GT"


@pytest.mark.parametrize("gt_um,ok", [(0.1625, True), (0.325, False)], ids=["same-pixel-size", "gt-at-twice-the-pixel-size"])
def test_inconsistent_pixel_sizes_within_a_pair_are_refused_naming_both(tmp_path, gt_um, ok):
    low, gt = _calibrated_pairs(tmp_path / "raw", gt_um=gt_um)
    before = tree_hashes(tmp_path / "raw")
    if ok:
        manifest = prepare_care(low, gt, tmp_path / "data")
        assert all(r.low.pixel_size_um == r.gt.pixel_size_um == pytest.approx({"Y": 0.1625, "X": 0.1625}) for r in manifest.pairs)
        assert load_manifest(tmp_path / "data").pixel_sizes("train")[0] == pytest.approx({"Y": 0.1625, "X": 0.1625})
    else:
        with pytest.raises(
            DataError,
            match=r"inconsistent pixel sizes within a pair: .*low/im0\.tif is 0\.1625 × 0\.1625 µm .*/GT/im0\.tif is 0\.325 × 0\.325 µm .*Image > Properties",
        ):
            prepare_care(low, gt, tmp_path / "data")
        assert not (tmp_path / "data").exists()
    assert tree_hashes(tmp_path / "raw") == before


def test_pairs_of_different_pixel_sizes_in_one_data_folder_are_warned_about(tmp_path, caplog):
    low, gt = _calibrated_pairs(tmp_path / "raw", n=3)
    rng = np.random.default_rng(5)
    a, b = related_pair(rng, (32, 32))
    imagej_calibrated(low / "odd.tif", a, 0.5)
    imagej_calibrated(gt / "odd.tif", b, 0.5)
    with caplog.at_level(logging.WARNING):
        prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(test_fraction=0.0))
    msgs = [r.getMessage() for r in caplog.records if "differ in pixel size" in r.getMessage()]
    assert len(msgs) == 1 and "odd.tif" in msgs[0] and "0.1625 × 0.1625 µm" in msgs[0]
