"""``fijiport qc MODEL_A MODEL_B ... TEST -o compare/``: one report with every model's figures on the same images (per
image and mean), a plot and the panels side by side; ``--with-parent`` puts a fine-tuned model's parent before it;
models of different QC tasks are refused. One model alone is measured exactly as before."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.config import CareTrainConfig
from fijiport.training import train_care

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_comparison_report_holds_every_model_on_the_same_images(care2d_model, plain_care2d, care2d_data, tmp_path):
    same_name = tmp_path / "elsewhere" / care2d_model.name
    shutil.copytree(care2d_model, same_name)
    out = tmp_path / "compare"
    r = invoke("qc", care2d_model, plain_care2d, same_name, care2d_data / "test", "-o", out)
    assert r.exit_code == 0, r.output
    c = json.loads((out / "comparison.json").read_text())
    labels = [m["label"] for m in c["models"]]
    assert labels == [care2d_model.name, plain_care2d.name, f"{care2d_model.name}-2"], "labels are unique"
    images = sorted(p.name for p in (care2d_data / "test" / "low").iterdir())
    assert c["task"] == "restoration" and c["images"] == images and c["metrics"] == ["psnr", "ssim", "nrmse", "pearson"]
    assert set(c["input"]["per_image"]) == set(images)
    for m in c["models"]:
        own = json.loads((out / m["report"] / "qc.json").read_text())  # each model's own report, as `qc MODEL` writes it
        assert set(m["per_image"]) == set(images)
        assert m["mean"] == {k: own["summary"][k]["prediction"] for k in ("psnr", "ssim", "nrmse", "pearson")}
        assert own["weights_sha256"] == m["weights_sha256"]
        assert not (out / m["report"] / "predictions").exists(), "predictions only with --save-predictions"
    assert c["models"][0]["mean"] == c["models"][2]["mean"], "the same weights give the same figures"
    assert c["models"][0]["mean"] != c["models"][1]["mean"]
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (out / "panels").iterdir()) == sorted(f"{n.rsplit('.', 1)[0]}.png" for n in images)
    md = (out / "comparison.md").read_text()
    assert all(label in md for label in labels) and "![metrics](comparison.png)" in md and "## PSNR per image" in md
    table = " ".join(r.stdout.split())
    assert "input" in table and plain_care2d.name in table and "report:" in table

    single = tmp_path / "single"
    r = invoke("qc", care2d_model, care2d_data / "test", "-o", single)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in single.iterdir()) == ["panels", "qc.json", "qc.md"], "one model: the report as before"
    assert json.loads((single / "qc.json").read_text())["summary"]["psnr"]["prediction"] == c["models"][0]["mean"]["psnr"]


def test_models_of_different_qc_tasks_are_refused(care2d_model, plain_stardist2d, care2d_data, tmp_path):
    out = tmp_path / "compare"
    r = invoke("qc", care2d_model, plain_stardist2d, care2d_data / "test", "-o", out)
    assert r.exit_code == 1
    message = " ".join(r.stderr.split())
    assert message.startswith("error: the models are of different QC tasks") and "(StarDist: segmentation)" in message
    assert "(CARE: restoration)" in message and not out.exists()


def test_with_parent_measures_the_parent_before_its_fine_tuned_child(care2d_model, care2d_data, tmp_path):
    parent = tmp_path / "parent"
    shutil.copytree(care2d_model, parent)
    child = tmp_path / "child"
    small = dict(epochs=1, steps_per_epoch=2, batch_size=4, patch_size=[32, 32], patches_per_image=4, tensorboard=False)
    train_care(care2d_data, child, CareTrainConfig(**small), init_from=parent)
    out = tmp_path / "with_parent"
    r = invoke("qc", child, "--with-parent", care2d_data / "test", "-o", out)
    assert r.exit_code == 0, r.output
    c = json.loads((out / "comparison.json").read_text())
    assert [m["label"] for m in c["models"]] == ["parent", "child"]
    assert c["models"][0]["parent_of"] == "child" and "model folder 'parent'" in c["models"][1]["fine_tuned_from"]
    assert "parent of child" in " ".join(r.stdout.split())

    r = invoke("qc", parent, "--with-parent", care2d_data / "test", "-o", tmp_path / "none")
    assert r.exit_code == 1 and "was not fine-tuned from another model" in " ".join(r.stderr.split())
    parent.rename(tmp_path / "moved")
    r = invoke("qc", child, "--with-parent", care2d_data / "test", "-o", tmp_path / "gone")
    message = " ".join(r.stderr.split())
    assert r.exit_code == 1 and "which is no longer there" in message and "fijiport qc PARENT" in message
