"""Issue 15's "done means", end to end through the command line: a light-sheet lab's microscope tree (two laser powers,
two channels, several stacks and positions, folders by date / sample / position / channel, calibrated ImageJ
time-lapses whose names differ by laser power and time stamps) goes to a trained CARE model and restored time-lapses
in the same folder structure, calibration intact, without renaming or splitting a file by hand."""

from __future__ import annotations

import json

import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.calibration import read_pixel_size
from fijiport.cli import app
from helpers import LIGHTSHEET_PAIR_BY, lightsheet_tree, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


def test_microscope_folders_to_restored_time_lapses_in_the_same_structure(tmp_path):
    calibrated = dict(imagej=True, resolution=(1 / 0.406, 1 / 0.406), metadata={"axes": "TYX", "unit": "micron", "finterval": 30.0})
    low_dir, gt_dir, pairs = lightsheet_tree(tmp_path / "acq", shape=(3, 64, 64), stacks=2, positions=2, channels=2, **calibrated)
    before = tree_hashes(tmp_path / "acq")

    data = tmp_path / "data"
    invoke(
        "prepare",
        "care",
        "--low",
        low_dir,
        "--gt",
        gt_dir,
        "-o",
        data,
        "--pair-by",
        LIGHTSHEET_PAIR_BY,
        "--recursive",
        "--test-fraction",
        "0.25",
    )
    manifest = json.loads((data / "fijiport_data.json").read_text())
    assert manifest["axes"] == "TYX" and len(manifest["pairs"]) == len(pairs) == 8
    assert {p["low"]["source"] for p in manifest["pairs"]} == {str(lo.resolve()) for lo, _ in pairs}, "every file paired, none renamed"

    model = tmp_path / "model"
    invoke("train", "care", data, "-o", model, "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "32,32",
           "--patches-per-image", "2", "--batch-size", "4", "--unet-first-filters", "8", "--no-tensorboard")  # fmt: skip
    record = json.loads((model / "fijiport_training.json").read_text())
    assert record["pixel_size_um"] == {"Y": pytest.approx(0.406), "X": pytest.approx(0.406)}

    restored = tmp_path / "restored"
    r = invoke("predict", model, low_dir, "--recursive", "-o", restored)
    assert "pixel size" not in r.stderr, "same calibration as the training images: no warning"
    for low, _ in pairs:
        rel = low.relative_to(low_dir)
        out = restored / rel
        assert out.is_file(), f"{rel} restored under the same path"
        img = tifffile.imread(out)
        assert img.shape == (3, 64, 64), "T kept"
        size = read_pixel_size(out)
        assert size is not None and size.um == {"Y": pytest.approx(0.406), "X": pytest.approx(0.406)}
        assert size.frame_interval == pytest.approx(30.0)
    assert len(list(restored.rglob("*.tif"))) == len(pairs)
    assert tree_hashes(tmp_path / "acq") == before, "the acquisitions are only read"
