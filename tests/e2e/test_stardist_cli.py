"""StarDist through the CLI on tiny real data: prepare → train (tiny) → thresholds → QC."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import tifffile
import yaml
from typer.testing import CliRunner

from fijiport.cli import app
from helpers import load_json, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def nuclei_folders(tmp_path_factory):
    from stardist.data import test_image_nuclei_2d

    root = tmp_path_factory.mktemp("sd_raw")
    img, lbl = test_image_nuclei_2d(return_mask=True)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(6):
        y, x = (i // 3) * 192, (i % 3) * 160
        tifffile.imwrite(root / "images" / f"nuclei_{i}.tif", img[y : y + 192, x : x + 160])
        tifffile.imwrite(root / "masks" / f"nuclei_{i}.tif", lbl[y : y + 192, x : x + 160])
    return root


def test_prepare_train_qc_stardist_2d(nuclei_folders, tmp_path):
    before = tree_hashes(nuclei_folders)
    data, model, qc = tmp_path / "data", tmp_path / "model", tmp_path / "qc"
    r = invoke("prepare", "stardist", "--images", nuclei_folders / "images", "--masks", nuclei_folders / "masks", "-o", data)
    assert r.exit_code == 0, r.output
    manifest = load_json(data / "fijiport_data.json")
    assert manifest["kind"] == "stardist" and all(i["report"]["n_objects"] > 5 for i in manifest["items"])

    r = invoke(
        "train",
        "stardist",
        data,
        "-o",
        model,
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--patch-size",
        "64,64",
        "--unet-first-filters",
        "8",
        "--unet-depth",
        "2",
        "--n-rays",
        "16",
        "--batch-size",
        "2",
    )
    assert r.exit_code == 0, r.output
    for name in ("config.json", "weights_best.h5", "weights_last.h5", "thresholds.json", "fijiport_config.yaml", "history.csv", "loss.png"):
        assert (model / name).is_file(), name
    thresholds = json.loads((model / "thresholds.json").read_text())
    assert 0 < thresholds["prob"] < 1 and 0 < thresholds["nms"] < 1
    config = json.loads((model / "config.json").read_text())
    assert config["n_rays"] == 16 and config["grid"] == [2, 2]
    recorded = yaml.safe_load((model / "fijiport_config.yaml").read_text())  # the values used, not nulls for defaults
    assert not [k for k, v in recorded.items() if v is None], recorded
    assert recorded["grid"] == [2, 2] and recorded["patch_size"] == [64, 64] and recorded["axes"] == "YX"
    assert recorded["tensorboard"] is (importlib.util.find_spec("tensorboard") is not None)

    r = invoke("qc", model, data / "test", "-o", qc, "--save-predictions")
    assert r.exit_code == 0, r.output
    report = load_json(qc / "qc.json")
    assert [row["iou"] for row in report["per_threshold"]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    for row in report["per_threshold"]:
        assert all(0.0 <= row[m] <= 1.0 for m in ("precision", "recall", "f1", "accuracy", "panoptic_quality"))
        assert row["tp"] + row["fn"] == sum(im["objects_true"] for im in report["images"])
    assert (qc / "metrics.png").is_file() and len(list((qc / "panels").glob("*.png"))) == report["n_images"]
    pred = tifffile.imread(next((qc / "predictions").glob("*.tif")))
    assert pred.dtype in (np.uint16, np.uint32)
    assert tree_hashes(nuclei_folders) == before


def test_train_stardist_needs_two_images(nuclei_folders, tmp_path):
    r = invoke(
        "prepare",
        "stardist",
        "--images",
        nuclei_folders / "images",
        "--masks",
        nuclei_folders / "masks",
        "-o",
        tmp_path / "data",
        "--test-fraction",
        "0.9",
    )
    assert r.exit_code == 0, r.output
    r = invoke("train", "stardist", tmp_path / "data", "-o", tmp_path / "m")
    assert r.exit_code == 1 and "at least 2" in r.output


def test_train_care_on_stardist_folder_says_so(nuclei_folders, tmp_path):
    assert (
        invoke(
            "prepare", "stardist", "--images", nuclei_folders / "images", "--masks", nuclei_folders / "masks", "-o", tmp_path / "data"
        ).exit_code
        == 0
    )
    r = invoke("train", "care", tmp_path / "data", "-o", tmp_path / "m")
    assert r.exit_code == 1 and "StarDist data folder" in r.output
