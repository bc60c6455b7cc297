"""Noise2Void end to end in the library: prepare (with its refusals), train, predict, QC."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from fijiport.artifacts.model_folder import ModelFolder
from fijiport.config.n2v import N2vTrainConfig, PrepareN2vConfig
from fijiport.data import load_n2v_manifest, prepare_n2v
from fijiport.errors import ConfigError, DataError


def test_prepare_splits_by_file_and_copies_ground_truth_beside(n2v2d_raw, n2v2d_data):
    manifest = load_n2v_manifest(n2v2d_data)
    splits = {s: manifest.names(s) for s in ("train", "validation", "test")}
    assert all(splits.values()) and sum(map(len, splits.values())) == 6
    assert not set(splits["train"]) & set(splits["test"])
    for rec in manifest.items:
        placed = n2v2d_data / rec.split / "images" / rec.name
        assert tifffile.imread(placed).tolist() == tifffile.imread(n2v2d_raw / "noisy" / rec.name).tolist()
        assert (n2v2d_data / rec.split / "GT" / rec.name).is_file() and rec.gt is not None


def test_a_single_time_lapse_is_split_into_contiguous_blocks_of_frames(tmp_path):
    rng = np.random.default_rng(0)
    movie = rng.poisson(50, size=(10, 48, 48)).astype(np.uint16)
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "movie.tif", movie, imagej=True, metadata={"axes": "TYX"})
    manifest = prepare_n2v([tmp_path / "in"], tmp_path / "data", config=PrepareN2vConfig(validation_fraction=0.2, test_fraction=0.2))
    assert manifest.axes == "TYX"
    frames = {r.split: r.frames for r in manifest.items}
    assert frames == {"train": [0, 1, 2, 3, 4, 5], "validation": [6, 7], "test": [8, 9]}
    test = tifffile.imread(tmp_path / "data" / "test" / "images" / "movie.tif")
    assert np.array_equal(test, movie[8:])


@pytest.mark.parametrize(
    "case, match",
    [
        ("gt_names", "does not match --images by file name"),
        ("constant", "is constant"),
        ("rgb", "RGB"),
        ("gt_size", "ground truth must have the image's size"),
    ],
)
def test_prepare_refuses_bad_inputs_naming_the_file(tmp_path, case, match):
    rng = np.random.default_rng(1)
    images, gt = tmp_path / "images", tmp_path / "gt"
    images.mkdir()
    gt.mkdir()
    for i in range(3):
        tifffile.imwrite(images / f"a{i}.tif", rng.poisson(40, (64, 64)).astype(np.uint16))
        tifffile.imwrite(gt / f"a{i}.tif", np.full((64, 64), 40, np.uint16))
    gt_dir = gt
    if case == "gt_names":
        (gt / "a2.tif").rename(gt / "b2.tif")
    elif case == "constant":
        tifffile.imwrite(images / "a1.tif", np.full((64, 64), 7, np.uint16))
        gt_dir = None
    elif case == "rgb":
        tifffile.imwrite(images / "a1.tif", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), photometric="rgb")
        gt_dir = None
    elif case == "gt_size":
        tifffile.imwrite(gt / "a1.tif", np.zeros((32, 32), np.uint16))
    with pytest.raises(DataError, match=match):
        prepare_n2v([images], tmp_path / "data", gt_dir=gt_dir)
    assert not (tmp_path / "data").exists()


def test_training_writes_an_n2v_model_folder_with_its_records(n2v2d_model):
    config = json.loads((n2v2d_model / "config.json").read_text())
    assert config["n2v_perc_pix"] == pytest.approx(0.198) and config["single_net_per_channel"] is False
    record = json.loads((n2v2d_model / "fijiport_training.json").read_text())
    assert record["kind"] == "n2v" and record["normalization"]["means"] == [float(m) for m in config["means"]]
    history = (n2v2d_model / "history.csv").read_text().splitlines()
    assert {"epoch", "loss", "val_loss"} <= set(history[0].split(",")) and len(history) == 3
    assert {"weights_best.h5", "weights_last.h5", "loss.png"} <= {p.name for p in n2v2d_model.iterdir()}
    assert not (n2v2d_model / "weights_now.h5").exists()


def test_the_model_folder_loads_in_plain_n2v_and_fijiport_predicts_what_n2v_predicts(n2v2d_model, n2v2d_data, tmp_path):
    from fijiport.kinds.n2v import import_n2v
    from fijiport.predict import predict_images

    n2v = import_n2v()
    model = n2v.N2V(None, n2v2d_model.name, basedir=str(n2v2d_model.parent))
    name = load_n2v_manifest(n2v2d_data).names("test")[0]
    img = tifffile.imread(n2v2d_data / "test" / "images" / name)
    expected = model.predict(img.astype(np.float32), "YX")
    [result] = predict_images(n2v2d_model, [n2v2d_data / "test" / "images" / name], tmp_path / "out")
    assert result.intensity == "input"
    got = tifffile.imread(result.outputs[0])
    assert got.shape == img.shape and np.abs(got - expected).max() < 1e-3


def test_training_on_a_care_data_folder_is_refused_with_the_command_to_use(care2d_data, tmp_path):
    from fijiport.training import train_care, train_n2v

    with pytest.raises(DataError, match="fijiport prepare n2v"):
        train_n2v(care2d_data, tmp_path / "m", N2vTrainConfig(epochs=1))
    with pytest.raises(DataError, match="fijiport train n2v"):
        train_care(_n2v_folder(tmp_path), tmp_path / "m2")


def _n2v_folder(tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        tifffile.imwrite(tmp_path / "imgs" / f"x{i}.tif", rng.poisson(30, (64, 64)).astype(np.uint16))
    prepare_n2v([tmp_path / "imgs"], tmp_path / "n2v_data")
    return tmp_path / "n2v_data"


def test_patches_larger_than_the_images_are_refused_with_a_size_that_fits(tmp_path):
    from fijiport.training import train_n2v

    data = _n2v_folder(tmp_path)
    with pytest.raises(ConfigError, match=r"does not fit the smallest image .*try \[60, 60\]"):
        train_n2v(data, tmp_path / "m", N2vTrainConfig(epochs=1, patch_size=[128, 128], tensorboard=False))
    assert not (tmp_path / "m").exists()


def test_qc_measures_the_residual_and_scores_against_clean_images(n2v2d_model, n2v2d_data, tmp_path):
    from fijiport.artifacts.qc_report import DenoisingQc, read_qc_report
    from fijiport.qc import qc_model

    report = qc_model(n2v2d_model, n2v2d_data / "test", tmp_path / "qc")
    assert isinstance(report, DenoisingQc) and isinstance(read_qc_report(tmp_path / "qc" / "qc.json"), DenoisingQc)
    assert report.n_images == report.n_with_gt == len(load_n2v_manifest(n2v2d_data).names("test"))
    assert report.split == "test" and report.weights_sha256 == ModelFolder.open(n2v2d_model).weights_sha256()
    assert len(report.residual["autocorrelation"]) == 3 and -1 <= report.residual["correlation_with_prediction"] <= 1
    assert report.summary is not None and set(report.summary) == {"psnr", "ssim", "nrmse", "pearson"}
    name = report.images[0]["name"]
    assert (tmp_path / "qc" / "panels" / name.replace(".tif", ".png")).is_file()
    assert "Noise2Void quality control" in (tmp_path / "qc" / "qc.md").read_text()


def test_qc_without_ground_truth_reports_the_residual_only(n2v2d_model, n2v2d_raw, tmp_path):
    from fijiport.qc import qc_model

    report = qc_model(n2v2d_model, n2v2d_raw / "noisy", tmp_path / "qc")  # a plain folder of noisy TIFFs
    assert report.n_with_gt == 0 and report.summary is None and report.split is None
    assert "No clean images" in (tmp_path / "qc" / "qc.md").read_text()


def test_a_single_image_too_small_to_split_into_patches_is_refused(tmp_path):
    from fijiport.training import train_n2v

    (tmp_path / "imgs").mkdir()
    tifffile.imwrite(tmp_path / "imgs" / "tiny.tif", np.random.default_rng(3).poisson(30, (40, 40)).astype(np.uint16))
    prepare_n2v([tmp_path / "imgs"], tmp_path / "data")
    config = N2vTrainConfig(epochs=1, patch_size=[32, 32], augment=False, tensorboard=False)
    with pytest.raises(DataError, match=r"only 1 patch\(es\) of \[32, 32\], too few to split"):
        train_n2v(tmp_path / "data", tmp_path / "m", config)
    assert not (tmp_path / "m" / "weights_best.h5").exists()


def test_the_validation_loss_falls_with_training(n2v2d_data, tmp_path):
    """n2v 0.3.3 on csbdeep 0.8.2 (installed without its csbdeep<0.8 pin) learns: its masked-pixel loss on the
    validation images goes down over a short run."""
    from fijiport.training import train_n2v

    config = N2vTrainConfig(epochs=4, steps_per_epoch=6, batch_size=16, patch_size=[32, 32], unet_first_filters=8,
                            learning_rate=1e-3, tensorboard=False)  # fmt: skip
    result = train_n2v(n2v2d_data, tmp_path / "m", config)
    val = result.history["val_loss"]
    assert len(val) == 4 and val[-1] < val[0], val


def test_interrupted_n2v_training_resumes_from_its_last_epoch(n2v2d_data, tmp_path):
    import csv

    from typer.testing import CliRunner

    from fijiport.cli import app
    from fijiport.training import train_n2v

    model_dir = tmp_path / "model"

    def ctrl_c_in_epoch_2(event) -> None:
        if event.stage == "step" and event.epoch == 2:
            raise KeyboardInterrupt

    config = N2vTrainConfig(epochs=3, steps_per_epoch=3, batch_size=8, patch_size=[32, 32], unet_first_filters=8, tensorboard=False)
    with pytest.raises(KeyboardInterrupt):
        train_n2v(n2v2d_data, model_dir, config, progress=ctrl_c_in_epoch_2)
    assert not [p.name for p in model_dir.iterdir() if "partial" in p.name]
    assert json.loads((model_dir / "fijiport_progress.json").read_text())["epochs_done"] == 1
    n2v_config = json.loads((model_dir / "config.json").read_text())
    r = CliRunner().invoke(app, ["train", "n2v", str(n2v2d_data), "-o", str(model_dir), "--resume", "--epochs", "3"])
    assert r.exit_code == 0, r.output
    with open(model_dir / "history.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3  # epoch 1 from the first run, 2 and 3 resumed
    assert json.loads((model_dir / "config.json").read_text())["means"] == n2v_config["means"]  # the same normalisation
    assert (model_dir / "weights_last.h5").is_file() and not (model_dir / "weights_now.h5").exists()


def test_a_damaged_n2v_weights_file_is_named_with_the_fix(n2v2d_model, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(n2v2d_model, broken)
    data = (broken / "weights_best.h5").read_bytes()
    (broken / "weights_best.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"weights_best.h5 (is damaged|cannot be read).*copy the model folder again"):
        ModelFolder.open(broken).load_keras()
