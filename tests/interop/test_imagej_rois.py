"""Masks fijiport builds from ImageJ ROI sets equal the masks ImageJ paints from the same ROIs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fijiport.data.rois import read_rois, rois_to_labels

IJ_JAR = Path("/usr/share/java/ij.jar")
MACRO = Path(__file__).parents[1] / "data" / "imagej" / "paint_rois.ijm"


@pytest.fixture(scope="module")
def imagej_rois(tmp_path_factory):
    if not IJ_JAR.is_file() or shutil.which("xvfb-run") is None:
        pytest.fail("ImageJ (Debian package imagej) and xvfb are needed: run `make runtimes` (packaging/ensure_system_deps.sh)")
    from stardist.data import test_image_nuclei_2d

    out = tmp_path_factory.mktemp("imagej")
    tifffile.imwrite(out / "img.tif", np.asarray(test_image_nuclei_2d())[100:300, 150:350])
    proc = subprocess.run(
        ["xvfb-run", "-a", "java", "-jar", str(IJ_JAR), "-batch", str(MACRO), f"{out / 'img.tif'}|{out}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (out / "rois.zip").is_file() and (out / "painted.tif").is_file(), proc.stdout + proc.stderr
    return out


def test_rendered_rois_equal_imagej_painting(imagej_rois):
    painted = tifffile.imread(imagej_rois / "painted.tif")
    rois = read_rois(imagej_rois / "rois.zip")
    kinds = {r.roitype.name for r in rois}
    assert {"TRACED", "POLYGON", "OVAL", "RECT"} <= kinds and len(rois) >= 8
    ours = rois_to_labels(imagej_rois / "rois.zip", painted.shape)
    assert ours.dtype == np.uint16
    mismatched = int((ours != painted).sum())
    assert mismatched == 0, f"{mismatched} pixels differ from ImageJ's painting"


def test_prepare_stardist_with_rois_gives_imagej_masks(imagej_rois, tmp_path):
    from fijiport.config.data import PrepareStardistConfig
    from fijiport.data import prepare_stardist

    (tmp_path / "images").mkdir()
    (tmp_path / "rois").mkdir()
    shutil.copy(imagej_rois / "img.tif", tmp_path / "images" / "nuclei.tif")
    shutil.copy(imagej_rois / "rois.zip", tmp_path / "rois" / "nuclei.zip")
    manifest = prepare_stardist(
        tmp_path / "images", tmp_path / "data", rois_dir=tmp_path / "rois", config=PrepareStardistConfig(test_fraction=0.0)
    )
    mask = tifffile.imread(tmp_path / "data" / "train" / "masks" / "nuclei.tif")
    painted = tifffile.imread(imagej_rois / "painted.tif")
    # same partition of the image into objects (label values are renumbered 1..N)
    from stardist.matching import matching

    m = matching(painted, mask, thresh=0.999)
    assert m.tp == len(np.unique(painted)) - 1 and m.fp == 0 and m.fn == 0
    assert manifest.items[0].mask_source == "rois"
