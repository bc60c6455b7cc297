"""Calibration as real ImageJ writes and reads it (ImageJ 1.53t under Xvfb): fijiport reads the pixel sizes, axes
and frame interval of files ImageJ saved, and ImageJ opens fijiport's outputs with the input's calibration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fijiport.calibration import read_pixel_size
from fijiport.files import tiff_declared_axes
from fijiport.predict import predict_images
from helpers import run_imagej_macro

pytestmark = pytest.mark.slow
MACRO = Path(__file__).parents[1] / "data" / "imagej" / "calibration.ijm"


def imagej_reads(path: Path) -> dict[str, str]:
    """What ImageJ reports for a file: dims (w,h,c,z,t), voxel (w,h,d,unit), frame interval and bit depth."""
    proc = run_imagej_macro(MACRO, f"mode=read path=[{path}]")
    return dict(re.findall(r"^(\w+)=(.*)$", proc.stdout, re.M))


@pytest.fixture(scope="module")
def imagej_files(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("imagej_cal")
    proc = run_imagej_macro(MACRO, f"mode=write dir=[{out}]")
    assert (out / "cal2d.tif").is_file() and (out / "hyperstack.tif").is_file(), proc.stdout + proc.stderr
    return out


def test_fijiport_reads_what_imagej_writes(imagej_files):
    assert tiff_declared_axes(imagej_files / "cal2d.tif") == ("YX", "ImageJ")
    found = read_pixel_size(imagej_files / "cal2d.tif")
    assert found is not None and found.um == pytest.approx({"Y": 0.1625, "X": 0.1625}, rel=1e-6)
    assert tiff_declared_axes(imagej_files / "hyperstack.tif") == ("TZYX", "ImageJ")
    found = read_pixel_size(imagej_files / "hyperstack.tif")
    assert found is not None and found.um == pytest.approx({"Z": 1.5, "Y": 0.1625, "X": 0.1625}, rel=1e-6)
    assert found.frame_interval == 2.0


def test_imagej_opens_predict_outputs_with_the_inputs_calibration(imagej_files, care2d_model, tmp_path):
    [result] = predict_images(care2d_model, [imagej_files / "cal2d.tif"], tmp_path / "out")
    assert imagej_reads(imagej_files / "cal2d.tif")["voxel"].startswith("0.162500,0.162500,")
    seen = imagej_reads(result.outputs[0])
    assert seen["dims"] == "48,40,1,1,1" and seen["bitdepth"] == "32"
    assert seen["voxel"].startswith("0.162500,0.162500,") and seen["voxel"].endswith("microns")


def test_a_4d_hyperstack_saved_by_imagej_is_restored_frame_by_frame_and_opens_in_imagej_as_one(imagej_files, plain_care3d, tmp_path):
    [result] = predict_images(plain_care3d, [imagej_files / "hyperstack.tif"], tmp_path / "out")
    seen = imagej_reads(result.outputs[0])
    assert seen["dims"] == "48,40,1,3,4"  # 3 slices × 4 frames, as ImageJ saved the input
    assert seen["voxel"] == "0.162500,0.162500,1.500000,microns" and seen["interval"] == "2" and seen["bitdepth"] == "32"
