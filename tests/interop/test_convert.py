"""Repairing models others exported: shown failing on the old runtimes, passing after `fijiport convert`."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.errors import DataError, OutputExistsError
from fijiport.export import export_care
from fijiport.export.convert import convert_package
from fijiport.runtimes.matrix import check_runtimes
from fijiport.verify.validate import validate_package
from helpers import read_rdf, tree_hashes

pytestmark = pytest.mark.slow
OLD = ("tensorflow-1.13.1", "tensorflow-1.15.0")


@pytest.fixture(scope="module")
def csbdeep_zip(care2d_model, tmp_path_factory) -> Path:
    """What csbdeep's own export_TF writes under TensorFlow 2 (the zip Fiji users get today)."""
    from csbdeep.models import CARE

    path = tmp_path_factory.mktemp("csbdeep_export") / "TF_SavedModel.zip"
    CARE(None, care2d_model.name, basedir=str(care2d_model.parent)).export_TF(str(path))
    return path


@pytest.fixture(scope="module")
def fijiport_zip(care2d_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "care.zip"
    export_care(care2d_model, out)
    return out


def _entry(zf: zipfile.ZipFile, name: str) -> bytes:
    return zf.read(name)


@pytest.fixture(scope="module")
def foreign_spec05(fijiport_zip, csbdeep_zip, tmp_path_factory) -> Path:
    """A spec 0.5 package as other exporters write it: Keras weights plus csbdeep's TF-2 SavedModel, no ONNX."""
    out = tmp_path_factory.mktemp("foreign05") / "foreign_0_5.zip"
    bundle = csbdeep_zip.read_bytes()
    with zipfile.ZipFile(fijiport_zip) as src, zipfile.ZipFile(out, "w") as dst:
        rdf = yaml.safe_load(src.read("rdf.yaml"))
        rdf["name"] = "Someone elses CARE model"
        rdf["weights"].pop("onnx")
        rdf["weights"]["tensorflow_saved_model_bundle"] = {
            "source": "TF_SavedModel.zip",
            "sha256": hashlib.sha256(bundle).hexdigest(),
            "tensorflow_version": "2.21.0",
            "parent": "keras_hdf5",
        }
        for name in src.namelist():
            if name not in ("rdf.yaml", "weights.onnx", "tf_saved_model_bundle.zip"):
                dst.writestr(name, src.read(name))
        dst.writestr("TF_SavedModel.zip", bundle)
        dst.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def foreign_spec04(fijiport_zip, csbdeep_zip, tmp_path_factory) -> Path:
    """A spec 0.4 package (the format most Zoo models still use) with only csbdeep's TF-2 SavedModel."""
    out = tmp_path_factory.mktemp("foreign04") / "foreign_0_4.zip"
    bundle = csbdeep_zip.read_bytes()
    with zipfile.ZipFile(fijiport_zip) as src, zipfile.ZipFile(out, "w") as dst:
        new = yaml.safe_load(src.read("rdf.yaml"))
        files = {n: src.read(n) for n in ("test_input.npy", "test_output.npy", "cover.png", "README.md")}
        halo = new["outputs"][0]["axes"][1]["halo"]
        size = new["inputs"][0]["axes"][1]["size"]
        rdf = {
            "format_version": "0.4.10",
            "type": "model",
            "name": "Old CARE model",
            "description": "a CARE model in the spec 0.4 layout",
            "license": "CC-BY-4.0",
            "authors": [{"name": "Someone Else"}],
            "cite": [{"text": "Weigert et al. 2018", "doi": "10.1038/s41592-018-0216-7"}],
            "documentation": "README.md",
            "covers": ["cover.png"],
            "timestamp": "2023-01-01T00:00:00",
            "test_inputs": ["test_input.npy"],
            "test_outputs": ["test_output.npy"],
            "tags": ["denoising"],
            "inputs": [
                {
                    "name": "input",
                    "axes": "byxc",
                    "data_type": "float32",
                    "data_range": [float("-inf"), float("inf")],
                    "shape": {"min": [1, size["min"], size["min"], 1], "step": [0, size["step"], size["step"], 0]},
                    "preprocessing": [
                        {
                            "name": "scale_range",
                            "kwargs": {"mode": "per_sample", "axes": "yx", "min_percentile": 2.0, "max_percentile": 99.8},
                        }
                    ],
                }
            ],
            "outputs": [
                {
                    "name": "output",
                    "axes": "byxc",
                    "data_type": "float32",
                    "data_range": [float("-inf"), float("inf")],
                    "shape": {"reference_tensor": "input", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                    "halo": [0, halo, halo, 0],
                }
            ],
            "weights": {
                "tensorflow_saved_model_bundle": {
                    "source": "TF_SavedModel.zip",
                    "sha256": hashlib.sha256(bundle).hexdigest(),
                    "tensorflow_version": "2.21",
                }
            },
        }
        for n, d in files.items():
            dst.writestr(n, d)
        dst.writestr("TF_SavedModel.zip", bundle)
        dst.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
    return out


def _runs(matrix):
    return {r.runtime: r for r in matrix.measurements}


def test_csbdeep_zip_fails_then_converted_passes(csbdeep_zip, care2d_model, runtimes_dir, tmp_path):
    before = tree_hashes(csbdeep_zip.parent)
    assert all(_runs(check_runtimes(csbdeep_zip, runtimes_dir))[rt].status == "failed" for rt in OLD)
    fixed = tmp_path / "fixed.zip"
    result = CliRunner().invoke(app, ["convert", str(csbdeep_zip), "-o", str(fixed)])
    assert result.exit_code == 0, result.output
    assert tree_hashes(csbdeep_zip.parent) == before, "the input must stay untouched"
    matrix = check_runtimes(fixed, runtimes_dir, reference=care2d_model)  # the converted zip holds the trained model
    assert matrix.passed, matrix.to_markdown()
    assert all(r.max_abs_diff < 1e-4 for r in matrix.measurements)
    alone = check_runtimes(fixed, runtimes_dir)  # without a reference: consistent, never "passed"
    assert alone.status == "warning" and all(r.status == "warning" for r in alone.measurements)
    with zipfile.ZipFile(csbdeep_zip) as a, zipfile.ZipFile(fixed) as b:
        assert json.loads(a.read("meta.json")) == json.loads(b.read("meta.json"))


@pytest.mark.parametrize("fixture", ["foreign_spec05", "foreign_spec04"], ids=["spec-0.5", "spec-0.4"])
def test_bioimageio_package_fails_then_converted_passes(fixture, request, runtimes_dir, tmp_path):
    package = request.getfixturevalue(fixture)
    before = check_runtimes(package, runtimes_dir)
    assert all(_runs(before)[rt].status == "failed" for rt in OLD)
    assert "StatelessRandomGetKeyCounter" in _runs(before)["tensorflow-1.15.0"].details
    fixed = tmp_path / "fixed.zip"
    result = convert_package(package, fixed)
    assert max(result.max_diffs.values()) < 1e-4
    rdf_in, rdf_out = read_rdf(package), read_rdf(fixed)
    assert rdf_out["format_version"].startswith("0.5")
    assert rdf_out["name"] == rdf_in["name"]
    assert [a["name"] for a in rdf_out["authors"]] == [a["name"] for a in rdf_in["authors"]]
    assert {"tensorflow_saved_model_bundle", "onnx"} <= set(rdf_out["weights"])
    assert rdf_out["weights"]["tensorflow_saved_model_bundle"]["tensorflow_version"] == "1.15.0"
    report = validate_package(fixed, runtimes=True, cache_dir=runtimes_dir)
    assert report.passed, report.to_markdown()


def test_validate_reads_spec_04_packages(foreign_spec04):
    """`fijiport validate` works on older packages too (here: TF 2 weights that bioimageio.core runs)."""
    report = validate_package(foreign_spec04)
    assert report.passed, report.to_markdown()
    assert any("0.4" in c.details for c in report.checks if c.name == "bioimage.io spec")


def test_convert_refuses_bad_requests(fijiport_zip, tmp_path):
    with pytest.raises(DataError, match="neither saved_model.pb"):
        bogus = tmp_path / "bogus.zip"
        with zipfile.ZipFile(bogus, "w") as zf:
            zf.writestr("hello.txt", "hi")
        convert_package(bogus, tmp_path / "out.zip")
    existing = tmp_path / "exists.zip"
    existing.write_bytes(b"")
    with pytest.raises(OutputExistsError):
        convert_package(fijiport_zip, existing)
    with pytest.raises(Exception, match="never replaced"):
        convert_package(fijiport_zip, fijiport_zip, overwrite=True)
    assert not (tmp_path / "out.zip").exists()


def test_zip_with_path_traversal_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("saved_model.pb", b"x")
        zf.writestr("../../outside.txt", b"gotcha")
    with pytest.raises(DataError, match="points outside the (package|archive)"):
        convert_package(evil, tmp_path / "out.zip")
    assert not (tmp_path.parent / "outside.txt").exists()
