"""Ctrl-C during `fijiport train care` leaves a usable weights_best.h5 and no partial file; `--resume` continues
to the requested total of epochs (docs/bad_inputs.md, "Output")."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging

import pytest
import yaml
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.config import CareTrainConfig
from fijiport.training import train_care

pytestmark = pytest.mark.slow
runner = CliRunner()
SMALL = dict(steps_per_epoch=3, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8)


def test_interrupted_training_resumes(care2d_data, tmp_path, caplog):
    model_dir = tmp_path / "model"

    def ctrl_c_in_epoch_2(event) -> None:
        if event.stage == "step" and event.epoch == 2:
            raise KeyboardInterrupt

    caplog.set_level(logging.DEBUG, logger="fijiport.training")
    with pytest.raises(KeyboardInterrupt):
        train_care(care2d_data, model_dir, CareTrainConfig(epochs=3, **SMALL), progress=ctrl_c_in_epoch_2)
    assert not [p.name for p in model_dir.iterdir() if "partial" in p.name]
    # the checkpoints went through the atomic writer (tf_keras's private ModelCheckpoint._save_handler hook); if tf_keras
    # stops calling it, they are written directly, unguarded, and these records are missing
    atomic = {r.getMessage() for r in caplog.records if "written atomically" in r.getMessage()}
    assert {"checkpoint weights_best.h5 written atomically", "checkpoint weights_now.h5 written atomically"} <= atomic, atomic
    # the message says how to go on
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "training interrupted after epoch 1 of 3" in warned
    assert f"fijiport train care {care2d_data} -o {model_dir} --resume --epochs 3" in warned
    assert json.loads((model_dir / "fijiport_progress.json").read_text())["epochs_done"] == 1
    recorded = yaml.safe_load((model_dir / "fijiport_config.yaml").read_text())
    assert not [k for k, v in recorded.items() if v is None], "fijiport_config.yaml holds the values used, not nulls"
    assert recorded["unet_kernel_size"] == 5 and recorded["loss"] == "mae" and recorded["axes"] == "YX"
    assert recorded["tensorboard"] is (importlib.util.find_spec("tensorboard") is not None)
    csbdeep_config = json.loads((model_dir / "config.json").read_text())

    from csbdeep.models import CARE

    from fijiport._tf import legacy_tensorflow

    legacy_tensorflow()
    CARE(None, name=model_dir.name, basedir=str(tmp_path)).keras_model.load_weights(str(model_dir / "weights_best.h5"))

    r = runner.invoke(app, ["train", "care", str(care2d_data), "-o", str(model_dir), "--resume", "--epochs", "3"])
    assert r.exit_code == 0, r.output
    with open(model_dir / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3  # epoch 1 from the first run, 2 and 3 resumed
    assert json.loads((model_dir / "fijiport_progress.json").read_text())["epochs_done"] == 3
    assert yaml.safe_load((model_dir / "fijiport_config.yaml").read_text()) == recorded  # the same settings, read back
    assert json.loads((model_dir / "config.json").read_text()) == csbdeep_config

    r = runner.invoke(app, ["train", "care", str(care2d_data), "-o", str(model_dir), "--resume", "--epochs", "2"])
    assert r.exit_code == 1 and "trained 3 epochs already" in " ".join(r.output.split())


def test_resume_needs_an_earlier_run(care2d_data, tmp_path):
    r = runner.invoke(app, ["train", "care", str(care2d_data), "-o", str(tmp_path / "none"), "--resume", "--epochs", "3"])
    assert r.exit_code == 1 and "nothing to resume" in " ".join(r.output.split())
    assert not (tmp_path / "none").exists()


def test_interrupted_stardist_training_resumes(stardist_model, tmp_path):
    from fijiport.config import StardistTrainConfig
    from fijiport.training import train_stardist

    data, model_dir = stardist_model.parent / "data", tmp_path / "sd"
    small = dict(steps_per_epoch=2, batch_size=2, patch_size=[64, 64], unet_first_filters=8, tensorboard=False, validation_fraction=0.34)

    def ctrl_c_in_epoch_2(event) -> None:
        if event.stage == "step" and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_stardist(data, model_dir, StardistTrainConfig(epochs=3, **small), progress=ctrl_c_in_epoch_2)
    assert not [p.name for p in model_dir.iterdir() if "partial" in p.name]
    assert json.loads((model_dir / "fijiport_progress.json").read_text())["epochs_done"] == 1
    assert not (model_dir / "thresholds.json").exists()
    recorded = yaml.safe_load((model_dir / "fijiport_config.yaml").read_text())
    assert not [k for k, v in recorded.items() if v is None]
    assert recorded["n_rays"] == 32 and recorded["grid"] == [2, 2] and recorded["tensorboard"] is False

    r = runner.invoke(app, ["train", "stardist", str(data), "-o", str(model_dir), "--resume", "--epochs", "3"])
    assert r.exit_code == 0, r.output
    with open(model_dir / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3  # epoch 1 from the first run, 2 and 3 resumed
    assert json.loads((model_dir / "fijiport_progress.json").read_text())["epochs_done"] == 3
    assert set(json.loads((model_dir / "thresholds.json").read_text())) == {"prob", "nms"}
    assert yaml.safe_load((model_dir / "fijiport_config.yaml").read_text()) == recorded

    r = runner.invoke(app, ["train", "stardist", str(data), "-o", str(model_dir), "--resume", "--epochs", "3"])
    assert r.exit_code == 1 and "trained 3 epochs already" in " ".join(r.output.split())


def test_resume_needs_the_total_epochs(care2d_data, tmp_path, caplog):
    r = runner.invoke(app, ["train", "care", str(care2d_data), "-o", str(tmp_path / "m"), "--resume"])
    assert r.exit_code == 2 and "--resume needs --epochs N" in " ".join(r.output.split())
    # options --resume does not use are named in a warning (before it finds there is nothing to resume here)
    caplog.set_level(logging.WARNING, logger="fijiport")
    r = runner.invoke(app, ["train", "care", str(care2d_data), "-o", str(tmp_path / "m"), "--resume", "--epochs", "3", "--batch-size", "2"])
    warned = " ".join(rec.getMessage() for rec in caplog.records) + " " + r.output
    assert "continues with the settings recorded in the model folder; ignoring --batch-size" in " ".join(warned.split()), warned
    r = runner.invoke(app, ["train", "stardist", str(care2d_data), "-o", str(tmp_path / "m"), "--resume"])
    assert r.exit_code == 2 and "--resume needs --epochs N" in " ".join(r.output.split())
