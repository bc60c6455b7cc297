"""`fijiport predict` on model folders: restored images (CARE), labels + ROI sets + CSV (StarDist)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from helpers import tree_hashes
from fijiport.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()
IJ_JAR = Path("/usr/share/java/ij.jar")
COUNT_MACRO = Path(__file__).parents[1] / "data" / "imagej" / "count_rois.ijm"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_predict_care_folder_and_tiling(care2d_model, care2d_raw, tmp_path):
    before = tree_hashes(care2d_raw)
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (care2d_raw / "low").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    whole = tifffile.imread(tmp_path / "out" / names[0])
    assert whole.dtype == np.float32 and whole.shape == tifffile.imread(care2d_raw / "low" / names[0]).shape
    r = invoke("predict", care2d_model, care2d_raw / "low" / names[0], "-o", tmp_path / "tiled", "--tiles", "2,2")
    assert r.exit_code == 0, r.output
    tiled = tifffile.imread(tmp_path / "tiled" / names[0])
    assert np.abs(tiled - whole).max() < 1e-3 * max(1.0, np.abs(whole).max())
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", care2d_raw / "low")
    assert r.exit_code == 1 and "never overwritten" in r.output
    assert tree_hashes(care2d_raw) == before


def test_predict_stardist_writes_labels_rois_and_measurements(stardist_model, tmp_path):
    images = stardist_model.parent / "images"
    r = invoke("predict", stardist_model, images, "-o", tmp_path / "seg")
    assert r.exit_code == 0, r.output
    for img in sorted(images.glob("*.tif")):
        labels = tifffile.imread(tmp_path / "seg" / img.name)
        n = len(np.unique(labels)) - 1
        assert n > 0 and labels.shape == tifffile.imread(img).shape
        with open(tmp_path / "seg" / f"{img.stem}.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == n and set(rows[0]) == {"label", "area", "centroid_y", "centroid_x", "mean_intensity"}
        assert sum(int(r["area"]) for r in rows) == int((labels > 0).sum())
        assert (tmp_path / "seg" / f"{img.stem}.zip").is_file()


def test_roi_sets_open_in_real_imagej(stardist_model, tmp_path):
    if not IJ_JAR.is_file() or shutil.which("xvfb-run") is None:
        pytest.fail("ImageJ (Debian package imagej) and xvfb are needed: run `make runtimes`")
    image = sorted((stardist_model.parent / "images").glob("*.tif"))[0]
    r = invoke("predict", stardist_model, image, "-o", tmp_path / "seg")
    assert r.exit_code == 0, r.output
    labels = tifffile.imread(tmp_path / "seg" / image.name)
    proc = subprocess.run(["xvfb-run", "-a", "java", "-jar", str(IJ_JAR), "-batch", str(COUNT_MACRO),
                           str(tmp_path / "seg" / f"{image.stem}.zip")], capture_output=True, text=True, timeout=300)
    found = re.search(r"rois=(\d+)", proc.stdout + proc.stderr)
    assert found, proc.stdout + proc.stderr
    assert int(found.group(1)) == len(np.unique(labels)) - 1
