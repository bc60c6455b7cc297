"""Export round trips: model folder → bioimage.io zip → official `bioimageio test` → cross-format agreement."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import yaml

from fijiport.config.export import ExportMeta, Person
from fijiport.errors import DataError, ExportError, OutputExistsError
from fijiport.export import ExportOptions, export_care
from fijiport.verify.validate import validate_package
from helpers import read_rdf, run_official_bioimageio_test, tree_hashes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def care2d_zip(care2d_model, tmp_path_factory):
    before = tree_hashes(care2d_model)
    out = tmp_path_factory.mktemp("export2d") / "care2d.zip"
    # no github_user here: bioimageio.spec checks it online and the official CLI test below runs offline
    meta = ExportMeta(
        name="CARE test model", description="tiny test model", authors=[Person(name="Test Person")], tags=["denoising"], version="1.2.3"
    )
    result = export_care(care2d_model, out, meta)
    assert tree_hashes(care2d_model) == before, "export must not touch the model folder"
    return out, result


def test_fijiport_trained_2d_package(care2d_zip, tmp_path):
    path, result = care2d_zip
    rdf = read_rdf(path)
    assert rdf["format_version"].startswith("0.5")
    assert set(rdf["weights"]) == {"keras_hdf5", "tensorflow_saved_model_bundle", "onnx"}
    assert rdf["weights"]["onnx"]["opset_version"] == 17
    assert rdf["weights"]["tensorflow_saved_model_bundle"]["tensorflow_version"] == "1.15.0"
    pre = rdf["inputs"][0]["preprocessing"]
    scale = next(p for p in pre if p["id"] == "scale_range")["kwargs"]
    assert (scale["min_percentile"], scale["max_percentile"]) == (2.0, 99.8)
    y_in = rdf["inputs"][0]["axes"][1]
    y_out = rdf["outputs"][0]["axes"][1]
    assert y_in["size"]["step"] == 4 and y_in["size"]["min"] > 2 * y_out["halo"]
    assert y_out["halo"] == result.halo >= 22
    assert rdf["config"]["deepimagej"]["allow_tiling"] is True
    assert {c["doi"] for c in rdf["cite"]} >= {"10.1038/s41592-018-0216-7"}
    # what export measured (every format, the Keras file reloaded too) is what the package records
    assert set(result.max_diffs) == set(rdf["weights"])
    assert rdf["config"]["fijiport"]["max_abs_diff_to_keras"] == pytest.approx(result.max_diffs)
    with zipfile.ZipFile(path) as zf:
        readme = zf.read("README.md").decode()
        cover = zf.read(rdf["covers"][0])
        assert "# Validation" in readme or "## Validation" in readme
        from PIL import Image

        img = Image.open(io.BytesIO(cover))
        assert img.size[0] == 2 * img.size[1] and len(cover) <= 500 * 1024
        test_in = np.load(io.BytesIO(zf.read(rdf["inputs"][0]["test_tensor"]["source"])))
        test_out = np.load(io.BytesIO(zf.read(rdf["outputs"][0]["test_tensor"]["source"])))
    assert test_in.shape == test_out.shape and test_in.ndim == 4 and np.isfinite(test_out).all()


def test_fijiport_trained_2d_passes_fijiport_validate(care2d_zip):
    report = validate_package(care2d_zip[0])
    assert report.passed, report.to_markdown()
    agreement = {c.weight_format: c.max_abs_diff for c in report.checks if c.name == "agreement"}
    assert set(agreement) == {"onnx", "tensorflow_saved_model_bundle"}
    assert max(agreement.values()) < 1e-4
    core = [c for c in report.checks if c.name == "bioimageio.core test"]
    assert len(core) == 3 and all(c.status == "passed" for c in core)
    reader = next(c for c in report.checks if c.key == "deepimagej-reader")
    assert reader.status == "passed", reader.details  # deepImageJ 3.x's own rdf reader takes fijiport's packages


def test_fijiport_trained_2d_passes_official_bioimageio_test(care2d_zip, tmp_path):
    proc = run_official_bioimageio_test(care2d_zip[0], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "passed" in proc.stdout


def test_frozen_graph_holds_only_tf1_ops_and_the_serving_signature(care2d_zip):
    from tensorflow.core.protobuf import saved_model_pb2  # TensorFlow's own classes, not fijiport's reader

    path, _ = care2d_zip
    rdf = read_rdf(path)
    with zipfile.ZipFile(path) as zf:
        bundle = zipfile.ZipFile(io.BytesIO(zf.read(rdf["weights"]["tensorflow_saved_model_bundle"]["source"])))
    names = bundle.namelist()
    assert "saved_model.pb" in names and any(n.startswith("variables/") for n in names)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(bundle.read("saved_model.pb"))
    mg = sm.meta_graphs[0]
    assert list(mg.meta_info_def.tags) == ["serve"]
    sig = mg.signature_def["serving_default"]
    assert set(sig.inputs) == {"input"} and set(sig.outputs) == {"output"}
    ops = {n.op for n in mg.graph_def.node}
    assert "AddV2" not in ops and "VarHandleOp" not in ops and "ReadVariableOp" not in ops
    for n in mg.graph_def.node:
        if n.op == "ResizeNearestNeighbor":
            assert not n.attr["half_pixel_centers"].b


def test_onnx_is_readable_by_onnxruntime_1_13(care2d_zip):
    import onnx

    path, _ = care2d_zip
    rdf = read_rdf(path)
    with zipfile.ZipFile(path) as zf:
        model = onnx.load_from_string(zf.read(rdf["weights"]["onnx"]["source"]))
    assert model.ir_version <= 8
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 17


@pytest.mark.parametrize(
    "fixture,test_image",
    [
        ("plain_care2d", "care2d_raw/low/nuclei_00.tif"),
        ("plain_care3d", "care3d_raw/low/nuclei_00.tif"),
        ("plain_care2d_probabilistic", "care2d_raw/low/nuclei_01.tif"),
    ],
    ids=["plain-csbdeep-2d", "plain-csbdeep-3d", "plain-csbdeep-probabilistic-2d"],
)
def test_plain_csbdeep_model_folders_export_and_pass_both_tests(fixture, test_image, request, tmp_path):
    model_dir = request.getfixturevalue(fixture)
    raw_fixture, rel = test_image.split("/", 1)
    image = request.getfixturevalue(raw_fixture) / rel
    out = tmp_path / f"{fixture}.zip"
    result = export_care(model_dir, out, options=ExportOptions(test_input=image))
    rdf = read_rdf(out)
    assert set(result.max_diffs) == set(rdf["weights"])  # every format measured, the Keras file reloaded too
    assert rdf["inputs"][0]["preprocessing"][-2]["kwargs"]["min_percentile"] == 2.0  # csbdeep default, not recorded
    if "probabilistic" in fixture:
        # Keras 3 refuses Lambda layers: the package carries only the formats that load
        assert set(rdf["weights"]) == {"tensorflow_saved_model_bundle", "onnx"}
        assert next(c for c in rdf["outputs"][0]["axes"] if c["type"] == "channel")["channel_names"] == ["mean0", "scale0"]
        assert any("Lambda" in w for w in result.warnings)
    else:
        assert set(rdf["weights"]) == {"keras_hdf5", "tensorflow_saved_model_bundle", "onnx"}
    report = validate_package(out)
    assert report.passed, report.to_markdown()
    work = tmp_path / "work"
    work.mkdir()
    proc = run_official_bioimageio_test(out, work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_plain_model_without_test_input_asks_for_one(plain_care2d, tmp_path):
    with pytest.raises(DataError, match="--test-input"):
        export_care(plain_care2d, tmp_path / "x.zip")
    assert not list(tmp_path.iterdir())


def test_existing_zip_is_refused_and_wrong_input_leaves_nothing(care2d_zip, care2d_model, care3d_raw, tmp_path):
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_care(care2d_model, care2d_zip[0])
    with pytest.raises(DataError, match="expects axes YX"):
        export_care(care2d_model, tmp_path / "x.zip", options=ExportOptions(test_input=care3d_raw / "low" / "nuclei_00.tif"))
    assert not list(tmp_path.iterdir()), "a failed export must leave nothing behind"


def test_graph_rewrite_check_catches_a_changed_graph(care2d_model):
    from tensorflow.python.framework import tensor_util

    from fijiport.artifacts import ModelFolder
    from fijiport.export.tf_graph import check_equivalent, freeze_keras_model, make_tf1_compatible

    model = ModelFolder.open(care2d_model).load_keras()
    frozen = freeze_keras_model(model.keras_model)
    changed = make_tf1_compatible(frozen)
    const = next(n for n in changed.graph_def.node if n.op == "Const" and len(tensor_util.MakeNdarray(n.attr["value"].tensor).shape) == 1)
    value = tensor_util.MakeNdarray(const.attr["value"].tensor) + 1.0
    const.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(value))
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 1)).astype(np.float32)
    assert check_equivalent(frozen, make_tf1_compatible(frozen), x) < 1e-6
    with pytest.raises(ExportError, match="changed the output"):
        check_equivalent(frozen, changed, x)


def test_validate_reports_a_package_whose_test_output_is_wrong(care2d_zip, tmp_path):
    import hashlib

    path, _ = care2d_zip
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        rdf = yaml.safe_load(src.read("rdf.yaml"))
        name = rdf["outputs"][0]["test_tensor"]["source"]
        arr = np.load(io.BytesIO(src.read(name)))
        buf = io.BytesIO()
        np.save(buf, (arr + 1.0).astype(arr.dtype))
        rdf["outputs"][0]["test_tensor"]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
        for item in src.namelist():
            if item == name:
                dst.writestr(item, buf.getvalue())
            elif item == "rdf.yaml":
                dst.writestr(item, yaml.safe_dump(rdf, sort_keys=False))
            else:
                dst.writestr(item, src.read(item))
    report = validate_package(broken)
    assert not report.passed
    failed = [c for c in report.checks if c.status == "failed"]
    assert {c.weight_format for c in failed} == {"keras_hdf5", "onnx", "tensorflow_saved_model_bundle"}
    # the formats still agree with each other: only the stored test output is wrong
    assert all(c.status == "passed" for c in report.checks if c.name == "agreement")


def test_maintainer_github_user_exports_and_validates_offline(care2d_model, tmp_path):
    """bioimageio.spec checks GitHub users online; without network that must not break export or validate."""
    out = tmp_path / "with_maintainer.zip"
    meta = ExportMeta(
        authors=[Person(name="Jane Doe", orcid="0000-0002-1825-0097", github_user="janedoe")], maintainers=[Person(github_user="janedoe")]
    )
    result = export_care(care2d_model, out, meta)
    assert not any("GitHub user" in w for w in result.warnings)
    assert read_rdf(out)["maintainers"][0]["github_user"] == "janedoe"
    report = validate_package(out)
    assert report.passed, report.to_markdown()


def test_keras_hdf5_agreement_is_measured_on_the_written_file(care2d_model, tmp_path):
    """Export reloads the .h5 it wrote (as a consumer does: load_model, no custom objects) and measures it: a file whose
    weights differ from the network gives a diff, where the constant 0.0 used to stand."""
    import h5py

    from fijiport.artifacts import ModelFolder
    from fijiport.export.exporter import reload_keras_hdf5

    net = ModelFolder.open(care2d_model).load_keras().keras_model
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    y = np.asarray(net(x, training=False))
    h5 = tmp_path / "keras_model.h5"
    net.save(str(h5), save_format="h5", include_optimizer=False)
    assert np.abs(reload_keras_hdf5(h5, x) - y).max() < 1e-6
    with h5py.File(h5, "r+") as f:
        kernels: list[str] = []
        f["model_weights"].visit(lambda name: kernels.append(name) if name.endswith("kernel:0") else None)
        f["model_weights"][kernels[-1]][...] += 1.0  # the last convolution's weights
    assert np.abs(reload_keras_hdf5(h5, x) - y).max() > 1e-2


def test_validate_says_why_a_format_gave_no_output(care2d_zip, tmp_path):
    """The worker's prediction error reaches the report: a package whose Keras file cannot be opened says so."""
    import hashlib

    path, _ = care2d_zip
    broken = tmp_path / "broken_h5.zip"
    garbage = np.random.default_rng(0).bytes(4096)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        rdf = yaml.safe_load(src.read("rdf.yaml"))
        name = rdf["weights"]["keras_hdf5"]["source"]
        rdf["weights"]["keras_hdf5"]["sha256"] = hashlib.sha256(garbage).hexdigest()
        for item in src.namelist():
            data = garbage if item == name else yaml.safe_dump(rdf, sort_keys=False) if item == "rdf.yaml" else src.read(item)
            dst.writestr(item, data)
    report = validate_package(broken)
    keras = next(c for c in report.checks if c.name == "agreement" and c.weight_format == "keras_hdf5")
    assert keras.status == "failed"
    assert keras.details.startswith("no output: predicting the test input failed: ") and "Error" in keras.details, keras.details
