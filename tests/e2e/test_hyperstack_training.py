"""A two-channel ImageJ hyperstack (``CYX``) through prepare and a tiny training (issue 21, item 7): before, it was
prepared as ``ZYX`` and training complained about Z."""

from __future__ import annotations

import json

import pytest

from fijiport.config import CareTrainConfig
from fijiport.data import prepare_care
from helpers import two_channel_pairs

pytestmark = pytest.mark.slow


def test_two_channel_imagej_pairs_prepare_as_cyx_and_train(tmp_path):
    from fijiport.training import train_care

    low, gt = two_channel_pairs(tmp_path)
    manifest = prepare_care(low, gt, tmp_path / "data")
    assert manifest.axes == "CYX"
    config = CareTrainConfig(
        epochs=1, steps_per_epoch=2, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8, tensorboard=False
    )
    train_care(tmp_path / "data", tmp_path / "model", config)
    net = json.loads((tmp_path / "model" / "config.json").read_text())
    assert net["axes"] == "YXC" and net["n_channel_in"] == net["n_channel_out"] == 2
    assert (tmp_path / "model" / "weights_best.h5").is_file()


def test_a_model_trained_on_cyx_hyperstacks_runs_qc_predict_and_export_on_them(tmp_path):
    """The channels-first files a CYX model was trained on go through qc, predict (restored images keep the input's
    CYX layout) and export (the test input is taken from them), where csbdeep's channels-last layout raised."""
    import tifffile
    from typer.testing import CliRunner

    from fijiport.cli import app
    from fijiport.training import train_care

    low, gt = two_channel_pairs(tmp_path)
    prepare_care(low, gt, tmp_path / "data")
    config = CareTrainConfig(
        epochs=1, steps_per_epoch=2, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8, tensorboard=False
    )
    train_care(tmp_path / "data", tmp_path / "model", config)
    runner = CliRunner()
    r = runner.invoke(app, ["qc", str(tmp_path / "model"), str(tmp_path / "data" / "test"), "-o", str(tmp_path / "qc")])
    assert r.exit_code == 0, r.output
    image = sorted((tmp_path / "data" / "test" / "low").iterdir())[0]
    r = runner.invoke(app, ["predict", str(tmp_path / "model"), str(image), "-o", str(tmp_path / "pred")])
    assert r.exit_code == 0, r.output
    assert tifffile.imread(tmp_path / "pred" / image.name).shape == tifffile.imread(image).shape  # C, Y, X as given
    r = runner.invoke(app, ["export", str(tmp_path / "model"), "-o", str(tmp_path / "m.zip"), "--qc", str(tmp_path / "qc" / "qc.json")])
    assert r.exit_code == 0, r.output
