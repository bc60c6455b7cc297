"""Broken model folders given to `fijiport export` and `fijiport predict`: exit 1, one line naming the file and
the fix, no output left (docs/bad_inputs.md, "Models")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from helpers import tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def _corrupt_h5(model: Path) -> None:
    (model / "weights_best.h5").write_bytes(np.random.default_rng(0).bytes(4096))


def _other_network(model: Path) -> None:
    cfg = json.loads((model / "config.json").read_text())
    cfg["unet_n_depth"] = int(cfg["unet_n_depth"]) + 1  # weights of a different network than the config says
    (model / "config.json").write_text(json.dumps(cfg))


def _stardist_config(model: Path) -> None:
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(n_rays=32, grid=[2, 2])  # a StarDist config next to CARE weights
    (model / "config.json").write_text(json.dumps(cfg))


def _refused_value(model: Path) -> None:
    cfg = json.loads((model / "config.json").read_text())
    cfg["unet_last_activation"] = "no_such_activation"  # a value csbdeep's Config refuses
    (model / "config.json").write_text(json.dumps(cfg))


ROWS = {
    "corrupt h5": (_corrupt_h5, ["is damaged", "weights_best.h5"]),
    "config of another network": (
        _other_network,
        ["weights_best.h5 do not fit the network", "config.json describes", "Layer count mismatch"],
    ),
    "config from another model type": (_stardist_config, ["thresholds.json"]),
    "config value the library refuses": (
        _refused_value,
        ["csbdeep refuses", "config.json", "Invalid attributes in loaded config: unet_last_activation", "installed: csbdeep"],
    ),
}
PREDICT = {
    # predict loads the StarDist config that export refused for its missing thresholds: stardist says which keys it refuses
    "config from another model type": ["stardist refuses", "config.json", "Not allowed to add new parameters", "installed: stardist"],
}


@pytest.mark.parametrize("command", ["export", "predict"])
@pytest.mark.parametrize("row", sorted(ROWS))
def test_broken_model_folder_is_refused(row, command, care2d_model, tmp_path):
    breaker, messages = ROWS[row]
    model = tmp_path / "model"
    shutil.copytree(care2d_model, model)
    breaker(model)
    before = tree_hashes(model)
    (tmp_path / "img").mkdir()
    tifffile.imwrite(tmp_path / "img" / "a.tif", np.zeros((64, 64), np.float32))
    args = {
        "export": ["export", model, "-o", tmp_path / "out.zip"],
        "predict": ["predict", model, tmp_path / "img", "-o", tmp_path / "out"],
    }[command]
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    if command == "predict":
        messages = PREDICT.get(row, messages)
    assert all(m in text for m in messages) and "Traceback" not in text, text
    assert "damaged" not in text or row == "corrupt h5", "only a damaged file is called damaged"
    assert tree_hashes(model) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "model"]
