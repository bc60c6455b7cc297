"""Calibration from the microscope to the results: the training pixel size in the model folder, its card and
``config.fijiport``; ``predict`` warns on images of another pixel size and writes outputs with the input's."""

from __future__ import annotations

import logging
import zipfile

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.calibration import read_pixel_size
from fijiport.cli import app
from fijiport.config import CareTrainConfig
from fijiport.data import prepare_care
from fijiport.predict import predict_images
from fijiport.training import train_care
from helpers import imagej_calibrated, read_rdf, related_pair

pytestmark = pytest.mark.slow
runner = CliRunner()
UM = 0.1625
TINY = dict(epochs=1, steps_per_epoch=3, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8, tensorboard=False)


def test_the_training_pixel_size_is_recorded_carried_to_the_package_and_checked_by_predict(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for sub in ("low", "GT"):
        (tmp_path / "raw" / sub).mkdir(parents=True)
    for i in range(4):
        low, gt = related_pair(rng, (64, 64))
        imagej_calibrated(tmp_path / "raw" / "low" / f"im{i}.tif", low, UM)
        imagej_calibrated(tmp_path / "raw" / "GT" / f"im{i}.tif", gt, UM)
    prepare_care(tmp_path / "raw" / "low", tmp_path / "raw" / "GT", tmp_path / "data")
    model = tmp_path / "model"
    train_care(tmp_path / "data", model, CareTrainConfig(**TINY))
    record = (model / "fijiport_training.json").read_text()
    assert '"pixel_size_um"' in record and "0.1625" in record

    new = tmp_path / "new"
    new.mkdir()
    same, coarse = related_pair(rng, (64, 64))[0], related_pair(rng, (64, 64))[0]
    imagej_calibrated(new / "same.tif", same, 0.17)  # within 20 %
    imagej_calibrated(new / "coarse.tif", coarse, 2 * UM)  # twice the training pixel size
    tifffile.imwrite(new / "plain.tif", same)  # uncalibrated: nothing to compare

    with caplog.at_level(logging.WARNING):
        results = {r.source.name: r for r in predict_images(model, [new], tmp_path / "out")}
    assert results["same.tif"].pixel_size_warning is None and results["plain.tif"].pixel_size_warning is None
    note = results["coarse.tif"].pixel_size_warning
    assert note is not None and "0.325 × 0.325 µm (Y × X) (ImageJ metadata) differs from the training images' 0.1625 × 0.1625 µm" in note
    assert "Y 100% larger" in note and "Image > Scale... with y 2, x 2" in note and "--init-from" in note
    assert sum("coarse.tif: pixel size" in r.getMessage() for r in caplog.records) == 1
    # the outputs keep each input's calibration and axes (an ImageJ hyperstack Fiji opens calibrated)
    for name, um in (("same.tif", 0.17), ("coarse.tif", 2 * UM)):
        found = read_pixel_size(tmp_path / "out" / name)
        assert found is not None and found.um == pytest.approx({"Y": um, "X": um}, rel=1e-6)
    assert read_pixel_size(tmp_path / "out" / "plain.tif") is None

    r = runner.invoke(app, ["predict", str(model), str(new / "coarse.tif"), "-o", str(tmp_path / "out_cli")])
    assert r.exit_code == 0 and "1 image(s) have another pixel size than the training images" in " ".join(r.output.split())

    # export: the card says it, config.fijiport carries it, and predicting the package checks it too
    from fijiport.export import export_care

    package = tmp_path / "care.zip"
    export_care(model, package)
    rdf = read_rdf(package)
    assert rdf["config"]["fijiport"]["training_pixel_size_um"] == pytest.approx({"Y": UM, "X": UM})
    with zipfile.ZipFile(package) as zf:
        card = zf.read("README.md").decode()
    assert "Pixel size of the training images: **0.1625 × 0.1625 µm (Y × X)**" in card
    results = {r.source.name: r for r in predict_images(package, [new / "coarse.tif", new / "same.tif"], tmp_path / "out_pkg")}
    assert results["coarse.tif"].pixel_size_warning is not None and results["same.tif"].pixel_size_warning is None
    found = read_pixel_size(tmp_path / "out_pkg" / "coarse.tif")
    assert found is not None and found.um == pytest.approx({"Y": 2 * UM, "X": 2 * UM}, rel=1e-6)
