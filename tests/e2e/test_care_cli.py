"""The whole CARE path through the CLI on tiny real data, as a user runs it."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from fijiport.cli import app
from helpers import load_json, read_rdf, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()
TINY = ["--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "4", "--patches-per-image", "4", "--unet-first-filters", "8"]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_prepare_train_qc_export_validate_2d(care2d_raw, tmp_path):
    raw_before = tree_hashes(care2d_raw)
    data, model, qc, package = tmp_path / "data", tmp_path / "model", tmp_path / "qc", tmp_path / "care.zip"

    r = invoke("prepare", "care", "--low", care2d_raw / "low", "--gt", care2d_raw / "GT", "-o", data, "--axes", "YX")
    assert r.exit_code == 0, r.output

    cfg = tmp_path / "train.yaml"
    cfg.write_text("patch_size: [32, 32]\nlearning_rate: 0.001\n")
    r = invoke("train", "care", data, "-o", model, "--config", cfg, *TINY)
    assert r.exit_code == 0, r.output
    for name in ("config.json", "weights_best.h5", "weights_last.h5", "fijiport_config.yaml", "history.csv", "loss.png"):
        assert (model / name).is_file(), name
    resolved = (model / "fijiport_config.yaml").read_text()
    assert "learning_rate: 0.001" in resolved and "epochs: 1" in resolved and "- 32" in resolved
    with open(model / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and float(rows[0]["loss"]) > 0 and "val_loss" in rows[0]

    r = invoke("qc", model, data / "test", "-o", qc, "--save-predictions")
    assert r.exit_code == 0, r.output
    report = load_json(qc / "qc.json")
    n_test = len(list((data / "test" / "low").iterdir()))
    assert report["n_images"] == n_test == len(list((qc / "panels").glob("*.png"))) == len(list((qc / "predictions").glob("*.tif")))
    for im in report["images"]:
        assert set(im["input"]) == set(im["prediction"]) == {"psnr", "ssim", "nrmse", "pearson"}
    assert "| PSNR |" in (qc / "qc.md").read_text() and "| Pearson r |" in (qc / "qc.md").read_text()

    r = invoke(
        "export",
        model,
        "-o",
        package,
        "--qc",
        qc / "qc.json",
        "--name",
        "CARE CLI test",
        "--author",
        "Jane Doe",
        "--tag",
        "nuclei",
        "--cite",
        "My paper|10.1234/abcd.5678",
        "--version",
        "0.2.0",
    )
    assert r.exit_code == 0, r.output
    rdf = read_rdf(package)
    assert rdf["name"] == "CARE CLI test" and rdf["version"] == "0.2.0" and "nuclei" in rdf["tags"]
    assert {c.get("doi") for c in rdf["cite"]} == {"10.1038/s41592-018-0216-7", "10.1234/abcd.5678"}
    assert rdf["inputs"][0]["preprocessing"][-2]["kwargs"]["min_percentile"] == 2.0

    r = invoke("export", model, "-o", package)
    assert r.exit_code == 1 and "--overwrite" in r.output

    r = invoke("validate", package, "--json", tmp_path / "v.json", "--md", tmp_path / "v.md")
    assert r.exit_code == 0, r.output
    assert load_json(tmp_path / "v.json")["status"] == "passed"
    assert tree_hashes(care2d_raw) == raw_before, "inputs must stay byte-identical"


def test_train_3d_and_export(care3d_raw, tmp_path):
    data, model, package = tmp_path / "data", tmp_path / "model", tmp_path / "care3d.zip"
    assert invoke("prepare", "care", "--low", care3d_raw / "low", "--gt", care3d_raw / "GT", "-o", data).exit_code == 0
    assert load_json(data / "fijiport_data.json")["axes"] == "ZYX"
    r = invoke("train", "care", data, "-o", model, "--patch-size", "8,16,16", "--unet-depth", "1", *TINY)
    assert r.exit_code == 0, r.output
    r = invoke("export", model, "-o", package)
    assert r.exit_code == 0, r.output
    rdf = read_rdf(package)
    assert [a.get("id", a["type"]) for a in rdf["inputs"][0]["axes"]] == ["batch", "z", "y", "x", "channel"]


def test_same_seed_same_weights(care2d_data, tmp_path):
    import h5py

    def weights(folder):
        with h5py.File(folder / "weights_last.h5") as f:
            out = []
            f.visititems(lambda name, obj: out.append(np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
            return out

    for name in ("a", "b"):
        r = invoke("train", "care", care2d_data, "-o", tmp_path / name, "--patch-size", "32,32", "--seed", "5", *TINY)
        assert r.exit_code == 0, r.output
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert len(wa) == len(wb) > 0 and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def test_demo_runs_end_to_end_with_tiny_training(tmp_path):
    """Tiny CARE training, and the StarDist and N2V parts as `make demo` runs them (about a minute of training each)."""
    out = tmp_path / "demo"
    r = invoke("demo", "-o", out, "--epochs", "1", "--steps-per-epoch", "2")
    assert r.exit_code == 0, r.output
    assert "PASSED" in r.output
    assert (out / "care_nuclei_2d.zip").is_file() and (out / "validation.json").is_file()
    assert load_json(out / "validation.json")["status"] == "passed"
    assert "F1 at IoU 0.5" in r.output
    sd = out / "stardist"
    assert load_json(sd / "qc" / "qc.json")["at_iou_0.5"]["f1"] > 0.3  # it finds nuclei
    assert load_json(sd / "validation.json")["status"] == "passed"
    assert {"stardist_nuclei_2d.zip", "stardist_nuclei_2d_fiji.zip", "stardist_nuclei_2d_fiji.ijm"} <= {p.name for p in sd.iterdir()}
    nv = out / "n2v"  # trained on the noisy crops alone; QC against the clean ones
    n2v_qc = load_json(nv / "qc" / "qc.json")
    assert n2v_qc["summary"]["psnr"]["prediction"] > n2v_qc["summary"]["psnr"]["input"]  # it denoises
    assert abs(n2v_qc["residual"]["autocorrelation"][0]) < 0.3
    assert load_json(nv / "validation.json")["status"] == "passed"
    assert {"n2v_nuclei_2d.zip", "n2v_nuclei_2d_fiji.zip", "n2v_nuclei_2d_fiji.n2v-plugin.zip"} <= {p.name for p in nv.iterdir()}
    assert "N2V (held-out images)" in r.output
    r = invoke("demo", "-o", out, "--epochs", "1", "--steps-per-epoch", "2", "--no-stardist")
    assert r.exit_code == 1 and "--overwrite" in r.output
