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
