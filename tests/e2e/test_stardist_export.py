"""StarDist export round trips: label output through the spec's postprocessing, identical to
stardist's own prediction, passing the official test, and (interop) the consumer runtimes."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile

import numpy as np
import pytest
import tifffile

from fijiport.export import ExportOptions, export_stardist
from fijiport.verify.validate import validate_package
from helpers import read_rdf, run_official_bioimageio_test

pytestmark = pytest.mark.slow


def test_package_describes_a_label_output_deepimagej_recognises(stardist_zip):
    rdf = read_rdf(stardist_zip.path)
    assert "stardist" in rdf["name"].lower()
    assert set(rdf["weights"]) == {"tensorflow_saved_model_bundle", "onnx"}
    out = rdf["outputs"][0]
    post = out["postprocessing"][0]
    assert post["id"] == "stardist_postprocessing" and post["kwargs"]["grid"] == [1, 1]
    thresholds = json.loads(zipfile.ZipFile(stardist_zip.path).read("thresholds.json"))
    assert post["kwargs"]["prob_threshold"] == pytest.approx(thresholds["prob"])
    assert out["data"]["type"] == "int32"
    sd = rdf["config"]["stardist"]
    assert {"config", "thresholds", "weights"} <= set(sd) and sd["weights"] == "weights_best.h5"
    assert {a["source"] for a in rdf["attachments"]} >= {"weights_best.h5", "config.json", "thresholds.json"}
    assert rdf["config"]["deepimagej"]["allow_tiling"] is True


def test_labels_equal_stardists_own_prediction(stardist_zip, stardist_model):
    from stardist.models import StarDist2D

    from fijiport.normalize import scale_range

    with zipfile.ZipFile(stardist_zip.path) as zf:
        x = np.load(io.BytesIO(zf.read("test_input.npy")))
        labels = np.load(io.BytesIO(zf.read("test_output.npy")))[0, ..., 0]
    assert labels.max() >= 3, "the test model should find nuclei"
    model = StarDist2D(None, stardist_model.name, basedir=str(stardist_model.parent))
    ours, _ = model.predict_instances(scale_range(x, (1, 2), 1.0, 99.8)[0, ..., 0], axes="YX")
    assert np.array_equal(ours, labels)


def test_stardist_package_passes_validate_and_official_test(stardist_zip, tmp_path):
    report = validate_package(stardist_zip.path)
    assert report.passed, report.to_markdown()
    proc = run_official_bioimageio_test(stardist_zip.path, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_plain_stardist_folder_exports(stardist_model, tmp_path):
    """A folder with only what stardist itself writes (config.json, weights_*.h5, thresholds.json)."""
    plain = tmp_path / "plain_stardist"
    plain.mkdir()
    for name in ("config.json", "weights_best.h5", "weights_last.h5", "thresholds.json"):
        shutil.copy(stardist_model / name, plain / name)
    data_test = json.loads((stardist_model / "fijiport_training.json").read_text())
    image = next(p for p in (stardist_model.parent / "data" / "test" / "images").glob("*.tif"))
    result = export_stardist(plain, tmp_path / "plain.zip", options=ExportOptions(test_input=image))
    assert result.path.is_file() and data_test["kind"] == "stardist"
    assert validate_package(result.path).passed


def test_missing_thresholds_are_refused(stardist_model, tmp_path):
    from fijiport.errors import DataError

    broken = tmp_path / "no_thresholds"
    shutil.copytree(stardist_model, broken)
    (broken / "thresholds.json").unlink()
    with pytest.raises(DataError, match="thresholds.json"):
        export_stardist(broken, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_stardist_fiji_macro_passes_the_models_thresholds(stardist_zip, tmp_path):
    """The filled-in copy of fiji_macros/stardist_segment_folder.ijm, dry-run in real ImageJ."""
    from helpers import run_imagej_macro

    text = stardist_zip.fiji_macro.read_text()
    thresholds = json.loads(zipfile.ZipFile(stardist_zip.path).read("thresholds.json"))
    assert f'var probThresh = "{thresholds["prob"]:.4f}";  // fijiport:prob_thresh' in text
    assert "Filled in by fijiport" in text and "#@" not in text
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "x.tif", np.zeros((64, 64), np.uint16))
    proc = run_imagej_macro(stardist_zip.fiji_macro, f"input=[{tmp_path / 'in'}] output=[{tmp_path / 'out'}] dry_run=true")
    call = re.search(r"^RUN\[Command From Macro\] (.*)$", proc.stdout, re.M)
    assert call, proc.stdout + proc.stderr
    pairs = dict(re.findall(r"'(\w+)':'([^']*)'", call.group(1)))
    assert pairs["modelFile"] == str(stardist_zip.fiji_zip.resolve())
    assert (pairs["probThresh"], pairs["nmsThresh"]) == (f"{thresholds['prob']:.4f}", f"{thresholds['nms']:.2f}")
