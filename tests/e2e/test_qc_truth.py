"""What QC reports must be true to (issue 21, items 1 and 4): the model a qc.json measured is the model exported
with it, training images are called so, and a model that makes images worse is flagged in qc, the card and zoo-check."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
import yaml
from typer.testing import CliRunner

from fijiport.artifacts import ModelFolder
from fijiport.cli import app
from fijiport.verify.zoo import check_zoo

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def helpful_model(care2d_data, tmp_path_factory):
    """A CARE model trained long enough to improve its inputs (the 1-epoch fixture does not: PSNR 19.1 → 18.8)."""
    from fijiport.config import CareTrainConfig
    from fijiport.training import train_care

    model = tmp_path_factory.mktemp("helpful") / "care"
    config = CareTrainConfig(epochs=4, steps_per_epoch=15, batch_size=8, patch_size=[32, 32], patches_per_image=16,
                             unet_first_filters=8, tensorboard=False)  # fmt: skip
    train_care(care2d_data, model, config)
    return model


@pytest.fixture(scope="module")
def care_qc(helpful_model, care2d_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("qc_truth") / "qc"
    r = invoke("qc", helpful_model, care2d_data / "test", "-o", out)
    assert r.exit_code == 0, r.output
    return out / "qc.json"


@pytest.fixture(scope="module")
def worse_model(care2d_model, tmp_path_factory):
    """The fixture's network with random weights (normal, std 0.12: measured 3.8 dB worse than the input, outputs
    within ±10 so every weight format still agrees): a model that adds structure that is not in the sample."""
    import numpy as np

    model = tmp_path_factory.mktemp("worse") / "worse"
    shutil.copytree(care2d_model, model)
    keras = ModelFolder.open(model).load_keras().keras_model
    rng = np.random.default_rng(0)
    keras.set_weights([rng.normal(0, 0.12, w.shape).astype(w.dtype) for w in keras.get_weights()])
    keras.save_weights(str(model / "weights_best.h5"))
    return model


def test_qc_json_records_the_weights_it_measured(care_qc, helpful_model):
    report = json.loads(care_qc.read_text())
    assert report["weights_sha256"] == ModelFolder.open(helpful_model).weights_sha256()
    assert report["split"] == "test" and report["warnings"] == []


def test_export_refuses_another_models_qc_unless_told(care_qc, worse_model, tmp_path):
    r = invoke("export", worse_model, "-o", tmp_path / "x.zip", "--qc", care_qc)
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "measured another model" in text and "--qc-from-other-model" in text, text
    assert not (tmp_path / "x.zip").exists()
    r = invoke("export", worse_model, "-o", tmp_path / "x.zip", "--qc", care_qc, "--qc-from-other-model")
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(tmp_path / "x.zip") as zf:
        readme = zf.read("README.md").decode()
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
    assert "**These figures were measured on another model**" in readme
    assert rdf["config"]["fijiport"]["qc"]["from_other_model"] is True
    checks = {c.key: c for c in check_zoo(tmp_path / "x.zip", run_test=False).checks}
    assert checks["qc"].status == "warning" and "another model" in checks["qc"].details


def test_a_segmentation_qc_is_refused_for_a_care_model(care2d_model, tmp_path):
    stardist_qc = {
        "kind": "stardist", "fijiport_version": "0", "model": "/elsewhere/sd", "test_dir": "/elsewhere/test", "n_images": 1,
        "thresholds": {"prob": 0.5, "nms": 0.4}, "normalization": {"percentiles": [1, 99.8]},
        "at_iou_0.5": {"f1": 0.5}, "per_threshold": [], "images": [],
    }  # fmt: skip
    (tmp_path / "qc.json").write_text(json.dumps(stardist_qc))
    for extra in ([], ["--qc-from-other-model"]):
        r = invoke("export", care2d_model, "-o", tmp_path / "x.zip", "--qc", tmp_path / "qc.json", *extra)
        assert r.exit_code == 1 and "segmentation QC" in " ".join(r.output.split()), r.output


def test_qc_on_the_training_split_says_training_images(care2d_model, care2d_data, tmp_path):
    r = invoke("qc", care2d_model, care2d_data / "train", "-o", tmp_path / "qc")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "training image(s)" in text and "flatters the model" in text, text
    assert json.loads((tmp_path / "qc" / "qc.json").read_text())["split"] == "train"


def test_a_model_that_makes_images_worse_is_flagged_in_qc_card_and_zoo_check(worse_model, care2d_data, tmp_path):
    r = invoke("qc", worse_model, care2d_data / "test", "-o", tmp_path / "qc")
    text = " ".join(r.output.split())
    report = json.loads((tmp_path / "qc" / "qc.json").read_text())
    gain = report["summary"]["psnr"]["prediction"] - report["summary"]["psnr"]["input"]
    assert gain < 0, f"precondition: random weights should make images worse (gain {gain:+.2f} dB)"
    assert r.exit_code == 0 and "makes the images worse" in text, text
    assert any("makes the images worse" in w for w in report["warnings"])
    r = invoke("export", worse_model, "-o", tmp_path / "worse.zip", "--qc", tmp_path / "qc" / "qc.json")
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(tmp_path / "worse.zip") as zf:
        assert "**Warning**: the model makes the images worse" in zf.read("README.md").decode()
    checks = {c.key: c for c in check_zoo(tmp_path / "worse.zip", run_test=False).checks}
    assert checks["qc"].status == "failed" and "makes images worse" in checks["qc"].details
    r = invoke("zoo-check", tmp_path / "worse.zip", "--no-test")
    assert r.exit_code == 1


def test_a_helpful_model_passes_the_qc_expectation(care_qc, helpful_model, tmp_path):
    report = json.loads(care_qc.read_text())
    gain = report["summary"]["psnr"]["prediction"] - report["summary"]["psnr"]["input"]
    assert gain > 0, f"precondition: the trained model should improve its input (gain {gain:+.2f} dB)"
    r = invoke("export", helpful_model, "-o", tmp_path / "good.zip", "--qc", care_qc)
    assert r.exit_code == 0, r.output
    checks = {c.key: c for c in check_zoo(tmp_path / "good.zip", run_test=False).checks}
    assert checks["qc"].status == "passed" and "PSNR" in checks["qc"].details


def test_stardist_training_records_its_objects_and_predict_flags_implausible_ones(stardist_model, stardist_zip, tmp_path):
    record = json.loads((stardist_model / "fijiport_training.json").read_text())
    stats = record["object_stats"]
    assert stats["objects"] > 100 and stats["median_area"] > 20  # nuclei of stardist's bundled image
    rdf = yaml.safe_load(zipfile.ZipFile(stardist_zip.path).read("rdf.yaml"))
    assert rdf["config"]["fijiport"]["object_stats"] == stats
    images = stardist_model.parent / "data" / "test" / "images"
    r = invoke("predict", stardist_model, images, "-o", tmp_path / "plausible")
    assert r.exit_code == 0 and "barely trained" not in r.output, r.output
    # the same model, told that its training objects were 50 times larger: its predictions are now implausible
    other = tmp_path / "model"
    shutil.copytree(stardist_model, other)
    record["object_stats"] = {**stats, "median_area": stats["median_area"] * 50}
    (other / "fijiport_training.json").write_text(json.dumps(record))
    r = invoke("predict", other, images, "-o", tmp_path / "flagged")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "barely trained" in text and "median area" in text, text
