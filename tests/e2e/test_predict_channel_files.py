"""Channels recorded in separate files, end to end through the command line: a light-sheet tree with one calibrated
time-lapse per channel and stack is prepared with ``--channels 0,1`` into two-channel images, a two-channel CARE
model is trained on them, and ``predict --channels 0,1`` restores every channel file under its own path, equal to
predicting the same channels joined in one file by tifffile, for the model folder and its package (ONNX)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.calibration import read_pixel_size
from fijiport.cli import app
from helpers import LIGHTSHEET_PAIR_BY, LIGHTSHEET_TIME_LAPSE, lightsheet_tree, read_rdf, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


@pytest.fixture(scope="module")
def two_channel(tmp_path_factory):
    root = tmp_path_factory.mktemp("channels")
    low, gt, pairs = lightsheet_tree(root / "acq", shape=(3, 64, 64), stacks=2, positions=1, channels=2, **LIGHTSHEET_TIME_LAPSE)
    invoke("prepare", "care", "--low", low, "--gt", gt, "-o", root / "data", "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY,
           "--channels", "0,1", "--test-fraction", "0.5")  # fmt: skip
    invoke("train", "care", root / "data", "-o", root / "model", "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "32,32",
           "--patches-per-image", "2", "--batch-size", "4", "--unet-first-filters", "8", "--no-tensorboard")  # fmt: skip
    return root, low, pairs


def _joined_by_tifffile(low_files, dest):
    """The reference input: the channel files stacked by tifffile into one ImageJ hyperstack (T, C, Y, X)."""
    stack = np.stack([tifffile.imread(f) for f in low_files], axis=1)
    tifffile.imwrite(dest, stack, imagej=True, resolution=(1 / 0.406, 1 / 0.406), metadata={"axes": "TCYX", "unit": "micron"})
    return dest


@pytest.mark.parametrize("packaged", [False, True], ids=["model folder", "package"])
def test_each_channel_file_is_restored_under_its_own_path_as_the_joined_image_is(two_channel, tmp_path, packaged):
    root, low, pairs = two_channel
    config = json.loads((root / "model" / "config.json").read_text())
    assert config["n_channel_in"] == config["n_channel_out"] == 2 and config["axes"] == "YXC"
    model = root / "model"
    if packaged:
        model = tmp_path / "model.zip"
        invoke("export", root / "model", "-o", model)
        rdf = read_rdf(model)
        for tensor in (rdf["inputs"][0], rdf["outputs"][0]):
            [channel] = [a for a in tensor["axes"] if a["type"] == "channel"]
            assert len(channel["channel_names"]) == 2, f"{tensor['id']} declares the two channels"
    before = tree_hashes(root / "acq")
    out = tmp_path / "restored"
    invoke("predict", model, low, "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1", "-o", out)
    assert tree_hashes(root / "acq") == before, "the acquisitions are only read"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no staging folder left behind"
    written = sorted(out.rglob("*.tif"))
    assert len(written) == len(pairs) == 4
    lows = sorted((lo for lo, _ in pairs), key=lambda p: p.name)
    for stack in ("stack0000", "stack0001"):
        files = [next(p for p in lows if f"_ch{c}_{stack}" in p.name) for c in (0, 1)]
        reference_in = _joined_by_tifffile(files, tmp_path / f"{stack}_joined.tif")
        invoke("predict", model, reference_in, "-o", tmp_path / "reference")
        reference = tifffile.imread(tmp_path / "reference" / reference_in.name)
        assert reference.shape == (3, 2, 64, 64)
        for c, f in enumerate(files):
            restored_path = out / f.relative_to(low)
            restored = tifffile.imread(restored_path)
            assert restored.shape == (3, 64, 64), "T kept, one channel per file"
            assert np.abs(restored - reference[:, c]).max() == 0, f"channel {c} of {stack} equals the joined prediction"
            size = read_pixel_size(restored_path)
            assert size is not None and size.um == {"Y": pytest.approx(0.406), "X": pytest.approx(0.406)}
            assert size.frame_interval == pytest.approx(30.0)

    again = invoke("predict", model, low, "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1", "-o", out, "--skip-existing")
    assert "skipped (exists)" in again.output
    refused = invoke("predict", model, low, "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1", "-o", out, code=1)
    assert "exists" in refused.output


def test_channel_files_a_model_cannot_take_are_refused_before_it_loads(two_channel, tmp_path):
    root, _, pairs = two_channel
    one = next(lo for lo, _ in pairs if "_ch1_stack0001" in lo.name)
    partial = tmp_path / "partial"
    partial.mkdir()
    for lo, _ in pairs:
        if lo != one:
            (partial / lo.name).write_bytes(lo.read_bytes())
    r = invoke("predict", root / "model", partial, "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1", "-o", tmp_path / "out", code=1)
    assert "has no file of channel 1" in r.output and "_ch0_stack0001" in r.output
    r = invoke("predict", root / "model", partial, "--channels", "0,1", "-o", tmp_path / "out", code=2)
    assert "give --pair-by" in r.output
    r = invoke("predict", root / "model", partial, "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1,2", "-o", tmp_path / "out", code=1)
    assert "has no file of channel 2" in r.output
    assert not (tmp_path / "out").exists()
