"""Exports run, and give the same numbers, on the exact runtimes Fiji, deepImageJ and KNIME embed.

Nothing here stands in for a runtime: TensorFlow 1.13.1, 1.15.0 and 2.10.1 are the official C
libraries, onnxruntime 1.13.1 is the npm package, installed by `make runtimes`.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.export import ExportOptions, export_care
from fijiport.runtimes.matrix import check_runtimes
from helpers import load_json

pytestmark = pytest.mark.slow
APPLICABLE_CARE = {"CSBDeep-Fiji", "deepImageJ (TF1)", "deepImageJ (TF2)", "deepImageJ (ONNX)", "KNIME"}


@pytest.fixture(scope="module")
def exported(care2d_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("interop")
    result = export_care(care2d_model, out / "care2d.zip", options=ExportOptions(fiji_zip=out / "care2d_fiji.zip"))
    return result


def _assert_all_pass(matrix, expected_consumers):
    rows = {r.name: r for r in matrix.checks}
    applicable = {c for c, r in rows.items() if r.status != "n/a"}
    assert applicable == expected_consumers
    for consumer in applicable:
        row = rows[consumer]
        assert row.status == "passed", f"{consumer}: {row.details}"
        assert row.max_abs_diff is not None and row.max_abs_diff < 1e-4  # float32 round-off, far inside the tolerance
    assert matrix.passed


def test_fijiport_package_runs_on_every_consumer_runtime(exported, runtimes_dir):
    matrix = check_runtimes(exported.path, runtimes_dir)
    _assert_all_pass(matrix, APPLICABLE_CARE)
    versions = {r.runtime: r.reported_version for r in matrix.measurements}
    assert versions == {
        "tensorflow-1.13.1": "1.13.1",
        "tensorflow-1.15.0": "1.15.0",
        "tensorflow-2.10.1": "2.10.1",
        "onnxruntime-1.13.1": "1.13.1",
    }


@pytest.mark.parametrize(
    "fixture,image",
    [("plain_care2d", "care2d_raw"), ("plain_care3d", "care3d_raw"), ("plain_care2d_probabilistic", "care2d_raw")],
    ids=["plain-csbdeep-2d", "plain-csbdeep-3d", "plain-csbdeep-probabilistic"],
)
def test_plain_csbdeep_packages_run_on_every_consumer_runtime(fixture, image, request, runtimes_dir, tmp_path):
    out = tmp_path / f"{fixture}.zip"
    test_input = request.getfixturevalue(image) / "low" / "nuclei_00.tif"
    export_care(request.getfixturevalue(fixture), out, options=ExportOptions(test_input=test_input))
    _assert_all_pass(check_runtimes(out, runtimes_dir), APPLICABLE_CARE)


def test_fijiport_trained_3d_runs_on_every_consumer_runtime(care3d_raw, runtimes_dir, tmp_path):
    from fijiport.config import CareTrainConfig
    from fijiport.data import prepare_care
    from fijiport.training import train_care

    prepare_care(care3d_raw / "low", care3d_raw / "GT", tmp_path / "data")
    train_care(
        tmp_path / "data",
        tmp_path / "model",
        CareTrainConfig(
            epochs=1,
            steps_per_epoch=2,
            batch_size=2,
            patch_size=[8, 16, 16],
            patches_per_image=4,
            unet_depth=1,
            unet_first_filters=8,
            tensorboard=False,
        ),
    )
    result = export_care(tmp_path / "model", tmp_path / "care3d.zip", options=ExportOptions(fiji_zip=tmp_path / "care3d_fiji.zip"))
    _assert_all_pass(check_runtimes(result.path, runtimes_dir), APPLICABLE_CARE)
    _assert_all_pass(check_runtimes(result.fiji_zip, runtimes_dir), {"CSBDeep-Fiji", "KNIME"})


def test_fiji_zip_layout_meta_and_runtimes(exported, runtimes_dir):
    with zipfile.ZipFile(exported.fiji_zip) as zf:
        names = set(zf.namelist())
        meta = __import__("json").loads(zf.read("meta.json"))
    assert {"saved_model.pb", "variables/", "meta.json", "test_input.npy", "test_output.npy"} <= names
    assert meta["axes"] == "YXC" and meta["axes_div_by"] == [4, 4, 1] and meta["probabilistic"] is False
    assert meta["tile_overlap"] == [43, 43, 0]  # csbdeep's measured overlap for depth 2, kernel 5
    matrix = check_runtimes(exported.fiji_zip, runtimes_dir)
    _assert_all_pass(matrix, {"CSBDeep-Fiji", "KNIME"})
    assert "recorded in the zip" in matrix.context["reference"]


def _rewrite_zip(src, dst, drop=(), replace=None):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for info in a.infolist():
            if info.filename in drop:
                continue
            b.writestr(info, (replace or {}).get(info.filename, a.read(info)))
    return dst


def test_fiji_zip_is_compared_with_the_trained_output_it_records(exported, runtimes_dir, tmp_path):
    """The recorded test output is the reference: a zip whose recorded output is not its network's fails."""
    import io

    with zipfile.ZipFile(exported.fiji_zip) as zf:
        y = np.load(io.BytesIO(zf.read("test_output.npy")))
    buf = io.BytesIO()
    np.save(buf, y + 0.5)
    wrong = _rewrite_zip(exported.fiji_zip, tmp_path / "wrong.zip", replace={"test_output.npy": buf.getvalue()})
    matrix = check_runtimes(wrong, runtimes_dir)
    rows = {r.name: r for r in matrix.checks}
    assert rows["CSBDeep-Fiji"].status == "failed" and rows["KNIME"].status == "failed"
    assert rows["CSBDeep-Fiji"].max_abs_diff == pytest.approx(0.5, abs=1e-3)


def test_zip_without_a_trained_reference_is_never_passed(exported, care2d_model, runtimes_dir, tmp_path):
    """No recorded output: the rows only say the runtimes agree with each other (a warning, exit 0; 1 with --strict);
    --reference MODEL_DIR compares them with the trained Keras model."""
    bare = _rewrite_zip(exported.fiji_zip, tmp_path / "bare.zip", drop=("test_input.npy", "test_output.npy"))
    matrix = check_runtimes(bare, runtimes_dir)
    rows = {r.name: r for r in matrix.checks if r.status != "n/a"}
    assert set(rows) == {"CSBDeep-Fiji", "KNIME"}
    assert all(r.status == "warning" and "consistent across runtimes (no trained reference)" in r.details for r in rows.values())
    assert matrix.status == "warning" and not matrix.passed and "none" in matrix.context["reference"]
    assert CliRunner().invoke(app, ["runtimes", "check", str(bare)]).exit_code == 0
    assert CliRunner().invoke(app, ["runtimes", "check", str(bare), "--strict"]).exit_code == 1
    referenced = check_runtimes(bare, runtimes_dir, reference=care2d_model)
    _assert_all_pass(referenced, {"CSBDeep-Fiji", "KNIME"})
    assert str(care2d_model) in referenced.context["reference"]


def test_matrix_says_what_each_row_measures(exported, runtimes_dir):
    matrix = check_runtimes(exported.path, runtimes_dir)
    assert "Runtime level, not plugin level" in matrix.context["measures"]
    assert matrix.context["shared_runs"] == {"tensorflow-1.15.0": ["CSBDeep-Fiji", "StarDist-Fiji", "N2V-Fiji", "deepImageJ (TF1)"]}
    assert "the same run as CSBDeep-Fiji's" in matrix.context["rows"]["deepImageJ (TF1)"]
    result = CliRunner().invoke(app, ["runtimes", "check", str(exported.path)])
    assert "Runtime level, not plugin level" in " ".join(result.output.split())


def test_care_package_named_like_stardist_is_run_as_care(care2d_model, runtimes_dir, tmp_path):
    """The kind comes from config.fijiport.kind, not the name: CSBDeep-Fiji applies, StarDist-Fiji does not."""
    from fijiport.config.export import ExportMeta

    out = tmp_path / "denoiser.zip"
    export_care(care2d_model, out, ExportMeta(name="StarDist-like denoiser"))
    matrix = check_runtimes(out, runtimes_dir)
    rows = {r.name: r for r in matrix.checks}
    assert matrix.context["kind"] == "care"
    assert rows["CSBDeep-Fiji"].status == "passed" and rows["StarDist-Fiji"].status == "n/a"
    assert rows["StarDist-Fiji"].details == "StarDist-Fiji runs StarDist models only"


def test_validate_runtimes_on_a_package_folder_runs_the_matrix(exported, runtimes_dir, tmp_path):
    """An unpacked package (rdf.yaml folder) gets its runtime rows too, as does its rdf.yaml."""
    from fijiport.verify.validate import validate_package

    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(exported.path) as zf:
        zf.extractall(folder)
    report = validate_package(folder, runtimes=True, cache_dir=runtimes_dir)
    assert report.passed, report.to_markdown()
    rows = {c.name: c.status for c in report.checks if c.name.startswith("runtime: ")}
    assert {n for n, s in rows.items() if s == "passed"} == {f"runtime: {c}" for c in APPLICABLE_CARE}
    assert check_runtimes(folder / "rdf.yaml", runtimes_dir).passed


def test_fiji_macro_is_filled_in_with_the_plugin_keys(exported, tmp_path):
    """The filled-in copy of fiji_macros/care_predict_folder.ijm, dry-run in real ImageJ."""
    import tifffile

    from helpers import run_imagej_macro

    text = exported.fiji_macro.read_text()
    assert 'var pLow = "2";  // fijiport:p_low' in text and 'var blockMultiple = "4";' in text
    assert "#@" not in text  # plain ImageJ 1.x stops at script parameters
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "x.tif", np.zeros((64, 64), np.uint16))
    proc = run_imagej_macro(exported.fiji_macro, f"input=[{tmp_path / 'in'}] output=[{tmp_path / 'out'}] dry_run=true")
    call = re.search(r"^RUN\[Run your network\] (.*)$", proc.stdout, re.M)
    assert call, proc.stdout + proc.stderr
    assert re.findall(r"(\w+)=", call.group(1)) == [
        "input",
        "normalizeinput",
        "percentilebottom",
        "percentiletop",
        "clip",
        "ntiles",
        "blockmultiple",
        "overlap",
        "batchsize",
        "modelfile",
        "showprogressdialog",
    ]
    assert f"modelfile=[{exported.fiji_zip.resolve()}]" in call.group(1)
    assert "percentilebottom=2 percentiletop=99.8" in call.group(1) and "blockmultiple=4" in call.group(1)


def test_csbdeep_export_tf_fails_on_old_runtimes_with_their_message(care2d_model, runtimes_dir, tmp_path):
    from csbdeep.models import CARE

    model = CARE(None, care2d_model.name, basedir=str(care2d_model.parent))
    csbdeep_zip = tmp_path / "TF_SavedModel.zip"
    model.export_TF(str(csbdeep_zip))
    matrix = check_runtimes(csbdeep_zip, runtimes_dir, reference=care2d_model)
    runs = {r.runtime: r for r in matrix.measurements}
    for old in ("tensorflow-1.13.1", "tensorflow-1.15.0"):
        assert runs[old].status == "failed"
        assert "StatelessRandomGetKeyCounter" in runs[old].details  # the runtime's own message
    assert runs["tensorflow-2.10.1"].status == "passed"  # against the trained Keras model
    assert not matrix.passed
    alone = {r.runtime: r for r in check_runtimes(csbdeep_zip, runtimes_dir).measurements}
    assert alone["tensorflow-2.10.1"].status == "warning" and "no trained reference" in alone["tensorflow-2.10.1"].details


def test_validate_with_runtimes_cli(exported, runtimes_dir, tmp_path):
    result = CliRunner().invoke(app, ["validate", str(exported.path), "--runtimes", "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    report = load_json(tmp_path / "v.json")
    consumers = {r["name"]: r["status"] for r in report["runtime_matrix"]["checks"]}
    assert {c for c, s in consumers.items() if s == "passed"} == APPLICABLE_CARE


def test_missing_runtimes_are_reported_not_faked(exported, tmp_path):
    matrix = check_runtimes(exported.path, tmp_path / "empty-cache")
    assert not matrix.passed
    assert all(r.status in ("missing", "n/a") for r in matrix.checks)
    assert any("fijiport runtimes install" in r.details for r in matrix.checks)


def test_install_without_node_says_what_is_missing(tmp_path, monkeypatch):
    from fijiport.runtimes import install_runtimes

    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    [status] = install_runtimes(tmp_path / "cache", ["onnxruntime-1.13.1"])
    assert not status.installed
    assert "Node.js" in status.detail and "apt-get install nodejs npm" in status.detail


def test_runtime_outputs_match_keras_numerically(exported, care2d_model, runtimes_dir, tmp_path):
    """On a fresh input of another size: the frozen graph on TF 1.13.1 equals the Keras network."""
    from fijiport.artifacts import ModelFolder
    from fijiport.runtimes.registry import BY_NAME
    from fijiport.runtimes.run import run_saved_model

    root = tmp_path / "sm"
    with zipfile.ZipFile(exported.fiji_zip) as zf:
        zf.extractall(root)
    x = np.random.default_rng(3).random((1, 96, 64, 1)).astype(np.float32)
    outcome = run_saved_model(BY_NAME["tensorflow-1.13.1"], runtimes_dir, root, x, input_op="input", output_op="output")
    assert outcome.ok, outcome.error
    keras = ModelFolder.open(care2d_model).load_keras().keras_model
    ref = np.asarray(keras(x, training=False))
    assert outcome.output.shape == ref.shape and np.abs(outcome.output - ref).max() < 1e-5


def test_stardist_package_and_fiji_zip_run_on_every_consumer_runtime(stardist_zip, runtimes_dir):
    _assert_all_pass(
        check_runtimes(stardist_zip.path, runtimes_dir),
        {"StarDist-Fiji", "deepImageJ (TF1)", "deepImageJ (TF2)", "deepImageJ (ONNX)", "KNIME"},
    )
    _assert_all_pass(check_runtimes(stardist_zip.fiji_zip, runtimes_dir), {"StarDist-Fiji", "KNIME"})


@pytest.mark.parametrize(
    "onnx_type,dtype",
    [(None, np.float32), (7, np.int64), (11, np.float64), (2, np.uint8), (9, np.bool_)],
    ids=["float32", "int64", "float64", "uint8", "bool"],
)
def test_onnx_outputs_are_read_in_their_own_type(onnx_type, dtype, runtimes_dir, tmp_path):
    """Labels and masks come out of ONNX models as integers or booleans: read as float32 they were garbage."""
    from crafted import onnx_model
    from fijiport.runtimes.registry import BY_NAME
    from fijiport.runtimes.run import run_onnx_model

    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    outcome = run_onnx_model(BY_NAME["onnxruntime-1.13.1"], runtimes_dir, onnx_model(tmp_path / "m.onnx", output_type=onnx_type), x)
    assert outcome.ok, outcome.error
    assert outcome.output is not None and outcome.output.dtype == dtype
    assert np.array_equal(outcome.output, (2 * x).astype(dtype))


def test_tensorflow_outputs_are_read_in_their_own_type(runtimes_dir, tmp_path):
    from crafted import saved_model_dir
    from fijiport.runtimes.registry import BY_NAME
    from fijiport.runtimes.run import run_saved_model

    folder = saved_model_dir(tmp_path / "sm", lambda tf, x: tf.cast(x * 3.0, tf.int32))
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    for rt in ("tensorflow-1.13.1", "tensorflow-1.15.0", "tensorflow-2.10.1"):
        outcome = run_saved_model(BY_NAME[rt], runtimes_dir, folder, x, input_op="input", output_op="output")
        assert outcome.ok, f"{rt}: {outcome.error}"
        assert (
            outcome.output is not None and outcome.output.dtype == np.int32 and np.array_equal(outcome.output, (3 * x).astype(np.int32))
        ), rt
