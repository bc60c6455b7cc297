"""A CARE model with other numbers of input and output channels (csbdeep's ``n_channel_in=2, n_channel_out=1``, as a
lab trains to restore one structure from two stains), trained by csbdeep itself, not by fijiport: it exports with
both channel counts declared, passes the official ``bioimageio test`` and every Fiji/KNIME runtime that applies, and
predicts through its package as csbdeep's own ``predict`` does."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.runtimes.matrix import check_runtimes
from helpers import read_rdf, run_official_bioimageio_test

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def two_to_one(tmp_path_factory):
    """A csbdeep CARE 2D model, two channels in, one out, trained for one step by csbdeep (random images: what it
    learns is not the point), and an input image larger than the network's receptive field."""
    from fijiport._tf import legacy_tensorflow

    legacy_tensorflow()
    from csbdeep.models import CARE, Config

    root = tmp_path_factory.mktemp("care21")
    rng = np.random.default_rng(0)
    config = Config("YXC", n_channel_in=2, n_channel_out=1, unet_n_depth=2, unet_n_first=8, train_epochs=1,
                    train_steps_per_epoch=1, train_batch_size=2, train_tensorboard=False)  # fmt: skip
    model = CARE(config, "care21", basedir=str(root))
    x = rng.random((4, 64, 64, 2), dtype=np.float32)
    model.train(x[:3], x[:3, ..., :1] * 0.5 + x[:3, ..., 1:] * 0.25, validation_data=(x[3:], x[3:, ..., :1]))
    image = root / "two_stains.tif"
    tifffile.imwrite(image, (rng.random((256, 256, 2)) * 1000).astype(np.uint16), metadata={"axes": "YXC"})
    return root / "care21", image


def test_it_exports_with_both_channel_counts_and_passes_the_official_test_and_the_runtimes(two_to_one, runtimes_dir, tmp_path):
    folder, image = two_to_one
    package = tmp_path / "care21.zip"
    invoke("export", folder, "-o", package, "--test-input", image)
    rdf = read_rdf(package)
    counts = [len(next(a for a in t["axes"] if a["type"] == "channel")["channel_names"]) for t in (rdf["inputs"][0], rdf["outputs"][0])]
    assert counts == [2, 1]
    proc = run_official_bioimageio_test(package, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    matrix = check_runtimes(package, runtimes_dir)
    ran = [r for r in matrix.checks if r.status != "n/a"]
    assert ran and all(r.status == "passed" and r.max_abs_diff is not None and r.max_abs_diff < 1e-4 for r in ran), matrix.checks
    assert matrix.passed


def test_folder_and_package_predict_as_csbdeep_does(two_to_one, tmp_path):
    from csbdeep.data import PercentileNormalizer
    from csbdeep.models import CARE

    folder, image = two_to_one
    model = CARE(None, folder.name, basedir=str(folder.parent))
    x = tifffile.imread(image)
    normalised = model.predict(x, "YXC", normalizer=PercentileNormalizer(2, 99.8, do_after=False))
    r = invoke("predict", folder, image, "-o", tmp_path / "folder")
    restored = tifffile.imread(tmp_path / "folder" / image.name)
    assert restored.shape == (256, 256, 1) and np.array_equal(restored, normalised), "the model folder runs csbdeep's predict"
    said = " ".join(r.output.split())
    assert "takes 2 channels and gives 1" in said and "hold the network's normalised output" in said, (
        "no input channel's percentiles map one output back: said, not passed off as the input's scale"
    )
    package = tmp_path / "care21.zip"
    invoke("export", folder, "-o", package, "--test-input", image)
    invoke("predict", package, image, "-o", tmp_path / "package")
    from_package = np.squeeze(tifffile.imread(tmp_path / "package" / image.name))
    span = float(normalised.max() - normalised.min())
    assert from_package.shape == (256, 256)
    assert np.abs(from_package - normalised[..., 0]).max() <= 1e-4 * span, "ONNX through the package's own pre-processing"


def test_its_two_input_channels_can_come_from_separate_files(two_to_one, tmp_path):
    folder, image = two_to_one
    stains = tifffile.imread(image)
    (tmp_path / "acq").mkdir()
    for c in range(2):
        tifffile.imwrite(tmp_path / "acq" / f"cells_ch{c}_s01.tif", stains[..., c])
    invoke("predict", folder, tmp_path / "acq", "--pair-by", r"_ch(?P<channel>\d)_s(?P<s>\d+)", "--channels", "0,1", "-o", tmp_path / "out")
    invoke("predict", folder, image, "-o", tmp_path / "joined")
    [written] = sorted((tmp_path / "out").iterdir())
    assert written.name == "cells_ch0+1_s01.tif", "one output channel for two input files: the joined name"
    restored = tifffile.imread(written)
    assert np.array_equal(np.squeeze(restored), np.squeeze(tifffile.imread(tmp_path / "joined" / image.name)))
