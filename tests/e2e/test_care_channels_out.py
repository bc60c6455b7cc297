"""fijiport training a CARE network of other numbers of channels in and out, end to end through the command line:
a light-sheet tree of calibrated time-lapses, one file per channel, prepared with ``--channels 0,1 --gt-channels 1``
(two channels in, GT of channel 1 only), trained into a 2-in/1-out network, QC'd with the input's channel 1 as the
baseline, QC'd again on GT of a channel the input lacks (no baseline, said everywhere), and exported declaring both."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.artifacts.data_folder import load_manifest
from fijiport.artifacts.qc_report import METRICS, read_qc_report
from fijiport.cli import app
from fijiport.qc.metrics import restoration_scores
from helpers import LIGHTSHEET_PAIR_BY, LIGHTSHEET_TIME_LAPSE, lightsheet_tree, read_rdf

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


@pytest.fixture(scope="module")
def two_to_one(tmp_path_factory):
    root = tmp_path_factory.mktemp("channels_out")
    low, gt, _ = lightsheet_tree(root / "acq", shape=(3, 48, 48), stacks=3, positions=1, channels=3, **LIGHTSHEET_TIME_LAPSE)
    common = ["--low", low, "--gt", gt, "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1", "--test-fraction", "0.34"]
    r = invoke("prepare", "care", *common, "--gt-channels", "1", "-o", root / "data")
    assert "2 channel(s) in, 1 in the ground truth" in r.output and "baseline" in r.output
    invoke("prepare", "care", *common, "--gt-channels", "2", "-o", root / "data_other")
    invoke("train", "care", root / "data", "-o", root / "model", "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "16,16",
           "--patches-per-image", "4", "--batch-size", "4", "--unet-first-filters", "8", "--no-tensorboard")  # fmt: skip
    return root


def test_the_network_has_the_inputs_channels_in_and_the_ground_truths_out(two_to_one):
    config = json.loads((two_to_one / "model" / "config.json").read_text())
    assert (config["n_channel_in"], config["n_channel_out"], config["axes"]) == (2, 1, "YXC")


def test_qc_scores_the_input_channel_of_the_ground_truths_value_as_the_baseline(two_to_one, tmp_path):
    invoke("qc", two_to_one / "model", two_to_one / "data", "-o", tmp_path / "qc", "--save-predictions")
    report = read_qc_report(tmp_path / "qc" / "qc.json")
    assert report is not None and report.baseline == {"input_channels": [1]} and report.no_baseline is None
    manifest = load_manifest(two_to_one / "data")
    [name] = manifest.names("test")
    low = tifffile.imread(two_to_one / "data" / "test" / "low" / name)  # T, C, Y, X
    gt = tifffile.imread(two_to_one / "data" / "test" / "GT" / name)  # T, Y, X
    assert low.shape == (3, 2, 48, 48) and gt.shape == (3, 48, 48)
    frames = [restoration_scores(gt[t], low[t, 1]) for t in range(3)]
    [image] = report.images
    assert image.input is not None
    for m in METRICS:
        assert getattr(image.input, m) == pytest.approx(np.mean([getattr(f, m) for f in frames]), abs=1e-9), m
    pred = tifffile.imread(tmp_path / "qc" / "predictions" / name)
    assert pred.shape[0] == 3 and pred.size == 3 * 48 * 48, "one restored channel per frame"
    assert report.psnr_gain is not None


def test_plain_folders_of_time_lapses_read_each_sides_own_axes_and_other_counts_are_refused(two_to_one, tmp_path):
    import shutil

    for side in ("low", "GT"):
        shutil.copytree(two_to_one / "data" / "test" / side, tmp_path / "plain" / side)
    invoke("qc", two_to_one / "model", tmp_path / "plain", "-o", tmp_path / "qc")  # TCYX inputs, TYX GT, no manifest
    report = read_qc_report(tmp_path / "qc" / "qc.json")
    assert report is not None and report.no_baseline, "without a data folder, which input channel is GT's is unknown"
    # a data folder whose GT has both channels: the 2-in/1-out model cannot be scored against it
    low, gt, _ = lightsheet_tree(tmp_path / "acq", shape=(3, 48, 48), stacks=2, positions=1, channels=2, **LIGHTSHEET_TIME_LAPSE)
    invoke("prepare", "care", "--low", low, "--gt", gt, "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY, "--channels", "0,1",
           "--test-fraction", "0.5", "-o", tmp_path / "data2")  # fmt: skip
    r = invoke("qc", two_to_one / "model", tmp_path / "data2", "-o", tmp_path / "qc2", code=1)
    assert "has 2 channels but the model restores 1" in r.output and not (tmp_path / "qc2").exists()


def test_without_a_matching_input_channel_qc_has_no_baseline_and_says_so(two_to_one, tmp_path):
    r = invoke("qc", two_to_one / "model", two_to_one / "data_other", "-o", tmp_path / "qc")
    assert "no input baseline" in r.output
    report = read_qc_report(tmp_path / "qc" / "qc.json")
    assert report is not None and report.baseline is None and report.no_baseline and report.psnr_gain is None
    assert set(report.summary["psnr"]) == {"prediction"} and all(im.input is None for im in report.images)
    md = (tmp_path / "qc" / "qc.md").read_text()
    assert "No input baseline" in md and "| — |" in md
    invoke("export", two_to_one / "model", "-o", tmp_path / "model.zip", "--qc", tmp_path / "qc" / "qc.json")
    rdf = read_rdf(tmp_path / "model.zip")
    channels = [next(a for a in t["axes"] if a["type"] == "channel") for t in (rdf["inputs"][0], rdf["outputs"][0])]
    assert [len(c["channel_names"]) for c in channels] == [2, 1]
    import zipfile

    with zipfile.ZipFile(tmp_path / "model.zip") as z:
        card = z.read("README.md").decode()
    assert "No input baseline" in card and "| — |" in card
