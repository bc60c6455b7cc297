"""`fijiport predict --weights openvino` (issue 18): a package's ONNX weights on OpenVINO give what onnxruntime gives —
CARE images to float rounding, tiled and untiled, StarDist labels identical — and a model folder or a missing
OpenVINO is refused with the fix."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.errors import DataError
from fijiport.predict import predict_images

pytestmark = pytest.mark.slow
runner = CliRunner()


def _predict(model, images, out, weights, *extra):
    r = runner.invoke(app, ["predict", str(model), str(images), "-o", str(out), "--weights", weights, *map(str, extra)])
    assert r.exit_code == 0, r.output
    return {p.name: tifffile.imread(p) for p in sorted(out.glob("*.tif"))}


@pytest.mark.parametrize("tiles", [None, "2,3"])
def test_care_package_on_openvino_equals_onnxruntime(care2d_zip, care2d_raw, tmp_path, tiles):
    extra = ("--tiles", tiles) if tiles else ()
    ort = _predict(care2d_zip, care2d_raw / "low", tmp_path / "ort", "onnx", *extra)
    ov = _predict(care2d_zip, care2d_raw / "low", tmp_path / "ov", "openvino", *extra)
    assert ort and ort.keys() == ov.keys()
    for name in ort:
        scale = float(ort[name].max() - ort[name].min())
        assert scale > 0.1, f"{name}: a flat output proves nothing"
        assert np.abs(ort[name].astype(np.float64) - ov[name]).max() <= 1e-4 * scale, name


def test_stardist_package_on_openvino_gives_the_same_labels(stardist_zip, stardist_model, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    from stardist.data import test_image_nuclei_2d

    tifffile.imwrite(images / "nuclei.tif", test_image_nuclei_2d()[:300, :300])  # not a multiple of the grid
    ort = _predict(stardist_zip.path, images, tmp_path / "ort", "onnx")
    ov = _predict(stardist_zip.path, images, tmp_path / "ov", "openvino")
    labels = [n for n in ort if n.endswith(".tif")]
    assert labels and all(ort[n].max() > 10 for n in labels), "the model must find nuclei for the comparison to mean something"
    for n in labels:
        assert np.array_equal(ort[n], ov[n]), n


def test_openvino_refuses_a_model_folder_and_says_what_to_do(care2d_model, care2d_raw, tmp_path):
    with pytest.raises(DataError, match="export it first.*on OpenVINO"):
        predict_images(care2d_model, sorted((care2d_raw / "low").iterdir()), tmp_path / "out", weights="openvino")


def test_missing_openvino_names_the_install_command(care2d_zip, care2d_raw, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_openvino(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == "openvino" or name.startswith("openvino.")):
            raise ImportError("No module named 'openvino'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    with pytest.raises(DataError, match="pip install openvino"):
        predict_images(care2d_zip, sorted((care2d_raw / "low").iterdir()), tmp_path / "out", weights="openvino")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "nothing written"
