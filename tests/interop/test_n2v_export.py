"""Noise2Void packages on the consumers' runtimes: the bioimage.io package (deepImageJ, Model Zoo), the Fiji zip
with the normalisation in its graph (CSBDeep-Fiji, KNIME) and the N2V Fiji plugin's own zip; n2v model folders that
fijiport did not train export too.

Runtime level: the TF 1.13.1/1.15.0/2.10.1 C runtimes and onnxruntime 1.13.1 run the weights; the N2V plugin's rdf is
checked against what its reader (imagej-modelzoo 0.9.10) parses, read from its sources; the plugin does not run here.
"""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest
import yaml

from fijiport.export import ExportOptions, export_model
from fijiport.kinds.n2v import N2V_PLUGIN_OUTPUT, n2v_plugin_rdf_problems
from fijiport.runtimes.matrix import check_runtimes

PACKAGE_ROWS = {"CSBDeep-Fiji", "deepImageJ (TF1)", "deepImageJ (TF2)", "deepImageJ (ONNX)", "KNIME"}


@pytest.fixture(scope="module")
def exported(n2v2d_model, n2v2d_data, tmp_path_factory):
    from fijiport.qc import qc_model

    out = tmp_path_factory.mktemp("n2v_export")
    qc_model(n2v2d_model, n2v2d_data / "test", out / "qc")
    return export_model(
        n2v2d_model, out / "n2v2d.zip", options=ExportOptions(fiji_zip=out / "n2v2d_fiji.zip", qc_json=out / "qc" / "qc.json")
    )


def _rows(matrix):
    return {r.name: r for r in matrix.checks}


def test_the_package_declares_n2v_normalisation_and_passes_the_official_test(exported, tmp_path):
    from helpers import read_rdf, run_official_bioimageio_test

    rdf = read_rdf(exported.path)
    pre = [p for p in rdf["inputs"][0]["preprocessing"] if p["id"] != "ensure_dtype"]
    post = [p for p in rdf["outputs"][0]["postprocessing"] if p["id"] != "ensure_dtype"]
    assert [p["id"] for p in pre] == ["fixed_zero_mean_unit_variance"] and [p["id"] for p in post] == ["scale_linear"]
    assert "axis" not in pre[0]["kwargs"] and "axis" not in post[0]["kwargs"]  # JDLL 0.6.1 mishandles per-axis lists
    assert post[0]["kwargs"]["gain"] == pytest.approx(pre[0]["kwargs"]["std"])
    assert rdf["config"]["fijiport"]["qc"]["task"] == "denoising"
    proc = run_official_bioimageio_test(exported.path, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_the_package_runs_on_every_consumer_runtime_and_points_n2v_users_to_their_zip(exported, runtimes_dir):
    matrix = check_runtimes(exported.path, runtimes_dir)
    rows = _rows(matrix)
    assert {n for n, r in rows.items() if r.status == "passed"} == PACKAGE_ROWS, {n: r.details for n, r in rows.items()}
    assert rows["N2V-Fiji"].status == "n/a" and ".n2v-plugin.zip" in rows["N2V-Fiji"].details
    assert matrix.passed


def test_the_fiji_zip_holds_the_normalisation_and_runs_on_csbdeep_and_knime_runtimes(exported, runtimes_dir):
    with zipfile.ZipFile(exported.fiji_zip) as zf:
        meta = yaml.safe_load(zf.read("meta.json"))
    assert meta["type"] == "N2V" and "inside the graph" in meta["normalisation"]
    rows = _rows(check_runtimes(exported.fiji_zip, runtimes_dir))
    assert {n for n, r in rows.items() if r.status == "passed"} == {"CSBDeep-Fiji", "KNIME"}


def test_the_fiji_zip_graph_denoises_raw_images_like_n2v(exported, n2v2d_model, n2v2d_data, tmp_path):
    """CSBDeep-Fiji with normalizeinput=false feeds raw pixels and writes the raw output: the graph must do n2v's work."""
    import tensorflow as tf
    import tifffile

    from fijiport.kinds.n2v import import_n2v

    zipfile.ZipFile(exported.fiji_zip).extractall(tmp_path / "sm")
    img = tifffile.imread(sorted((n2v2d_data / "test" / "images").glob("*.tif"))[0]).astype(np.float32)[:64, :64]
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    y = loaded.signatures["serving_default"](input=tf.constant(img[None, ..., None]))["output"].numpy()[0, ..., 0]
    n2v = import_n2v()
    expected = n2v.N2V(None, n2v2d_model.name, basedir=str(n2v2d_model.parent)).predict(img, "YX")
    assert np.abs(y - expected).max() < 1e-3 * max(1.0, float(np.abs(expected).max()))


def test_the_n2v_plugin_zip_reads_as_its_parser_needs_and_runs_on_its_runtime(exported, runtimes_dir):
    [plugin_zip] = exported.fiji_extras
    assert plugin_zip.name == "n2v2d_fiji.n2v-plugin.zip"
    with zipfile.ZipFile(plugin_zip) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        names = zf.namelist()
        with zipfile.ZipFile(zf.open("tf_saved_model_bundle.zip")) as inner:
            inner_names = inner.namelist()
    assert n2v_plugin_rdf_problems(rdf) == []
    assert rdf["outputs"][0]["name"] == N2V_PLUGIN_OUTPUT and rdf["inputs"][0]["shape"]["step"][0] == 1
    assert isinstance(rdf["packaged_by"], str) and rdf["execution_model"] == "n2v"
    assert {"rdf.yaml", "tf_saved_model_bundle.zip", "test_input.npy", "test_output.npy"} <= set(names)
    assert {"saved_model.pb", "variables/"} <= set(inner_names)  # at the root, variables/ as an entry (Fiji's unzip)
    rows = _rows(check_runtimes(plugin_zip, runtimes_dir))
    assert rows["N2V-Fiji"].status == "passed", rows["N2V-Fiji"].details
    assert rows["N2V plugin's rdf reader"].status == "passed"
    assert {n for n, r in rows.items() if r.status == "passed"} == {"N2V-Fiji", "N2V plugin's rdf reader"}


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda r: r.update(packaged_by=["me"]), "packaged_by is a list"),
        (lambda r: r["outputs"][0].update(name="output"), "fetches 'activation_11/Identity'"),
        (lambda r: r["inputs"][0]["shape"]["step"].__setitem__(0, 0), "batch step must be 1"),
        (lambda r: r["inputs"][0]["preprocessing"][0]["kwargs"].update(mean="31.6"), "must be numbers"),
        (lambda r: r.update(format_version="0.5.3"), "reads format 0.3.x"),
    ],
)
def test_rdf_rules_catch_what_would_break_the_n2v_plugin(exported, change, problem):
    with zipfile.ZipFile(exported.fiji_extras[0]) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
    change(rdf)
    assert any(problem in p for p in n2v_plugin_rdf_problems(rdf)), n2v_plugin_rdf_problems(rdf)


def test_the_filled_macro_runs_csbdeep_without_its_percentile_normalisation(exported, tmp_path):
    import tifffile

    from helpers import run_imagej_macro

    text = exported.fiji_macro.read_text()
    assert 'var normalizeInput = "false";  // fijiport:normalize_input' in text
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "x.tif", np.zeros((64, 64), np.uint16))
    proc = run_imagej_macro(exported.fiji_macro, f"input=[{tmp_path / 'in'}] output=[{tmp_path / 'out'}] dry_run=true")
    call = re.search(r"^RUN\[Run your network\] (.*)$", proc.stdout, re.M)
    assert call, proc.stdout + proc.stderr
    assert "normalizeinput=false" in call.group(1) and f"modelfile=[{exported.fiji_zip.resolve()}]" in call.group(1)


def test_a_model_folder_from_plain_n2v_exports(n2v2d_data, tmp_path, runtimes_dir):
    """n2v's defaults (per-channel nets through a Lambda slice, batch norm, depth 2) straight from its own API."""
    import tifffile

    from fijiport.kinds.n2v import import_n2v

    n2v = import_n2v()
    X = np.stack([tifffile.imread(p).astype(np.float32)[:64, :64] for p in sorted((n2v2d_data / "train" / "images").glob("*.tif"))])
    config = n2v.N2VConfig(X[..., None], unet_n_first=8, n2v_patch_shape=(32, 32), train_tensorboard=False)
    assert config.single_net_per_channel  # n2v's default: the network has Lambda layers
    model = n2v.N2V(config, "plain", basedir=str(tmp_path))
    model.keras_model.save_weights(str(tmp_path / "plain" / "weights_best.h5"))
    test_image = sorted((n2v2d_data / "test" / "images").glob("*.tif"))[0]
    options = ExportOptions(fiji_zip=tmp_path / "plain_fiji.zip", test_input=test_image)
    result = export_model(tmp_path / "plain", tmp_path / "plain.zip", options=options)
    assert "keras_hdf5" in result.weight_formats  # rebuilt without the Lambda, same weights, same output
    assert all(d < 1e-4 for d in result.max_diffs.values())
    rows = _rows(check_runtimes(result.path, runtimes_dir))
    assert {n for n, r in rows.items() if r.status == "passed"} == PACKAGE_ROWS
