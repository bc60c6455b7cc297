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


@pytest.fixture(scope="module")
def n2v_export_tf_zip(n2v2d_model, tmp_path_factory):
    """What n2v 0.3.3's ``export_TF`` writes before its broken bioimage.io step: ``save_model_tf``'s tf_model.zip
    (a Keras TF-format SavedModel, function calls and FusedBatchNormV3 inside), made by n2v's own function."""
    from pathlib import Path

    from fijiport.kinds.n2v import import_n2v

    n2v = import_n2v()
    from n2v.utils.export_utils import save_model_tf

    out = Path(tmp_path_factory.mktemp("n2v_export_tf"))
    model = n2v.N2V(None, n2v2d_model.name, basedir=str(n2v2d_model.parent))
    save_model_tf(model=model.keras_model, config=model.config, model_path=out / "tf_model.zip", config_path=out / "config.json")
    return out / "tf_model.zip", model


def test_n2vs_export_tf_zip_is_repaired_for_the_old_runtimes(n2v_export_tf_zip, n2v2d_model, runtimes_dir, tmp_path):
    from fijiport.export.convert import convert_package

    source, _ = n2v_export_tf_zip
    before = _rows(check_runtimes(source, runtimes_dir))
    assert before["KNIME"].status == "failed" and before["CSBDeep-Fiji"].status == "failed"  # TF 2 resource variables
    result = convert_package(source, tmp_path / "fixed.zip")
    assert "function calls inlined" in result.rewrites and any("FusedBatchNorm folded" in r for r in result.rewrites)
    assert any("n2v's export_TF" in n for n in result.notes)
    unchecked = _rows(check_runtimes(result.path, runtimes_dir))  # the zip records no trained output: never "passed"
    assert unchecked["KNIME"].status == unchecked["CSBDeep-Fiji"].status == "warning"
    after = _rows(check_runtimes(result.path, runtimes_dir, reference=n2v2d_model))  # against the n2v model it came from
    assert after["KNIME"].status == after["CSBDeep-Fiji"].status == "passed", {n: r.details for n, r in after.items()}


def test_an_n2v_spec_04_package_is_repaired_into_one_every_consumer_runs(n2v_export_tf_zip, n2v2d_data, runtimes_dir, tmp_path):
    """The package n2v 0.3.x's export_TF wrote while bioimageio.core still had ``build_model``: rdf 0.4 with n2v's
    keys (zero_mean_unit_variance fixed with per-channel lists, scale_linear, float64 test tensors, the tf_model.zip),
    rebuilt here from n2v's export_utils.build_modelzoo arguments since that step no longer runs."""
    import hashlib

    import tifffile

    from fijiport.export.convert import convert_package
    from helpers import read_rdf, run_official_bioimageio_test

    tf_zip, model = n2v_export_tf_zip
    img = tifffile.imread(sorted((n2v2d_data / "test" / "images").glob("*.tif"))[0]).astype(np.float32)[:64, :64]
    means, stds = [float(m) for m in model.config.means], [float(s) for s in model.config.stds]
    y = np.asarray(model.predict_bioimageio(img, "YX"))
    pkg = tmp_path / "n2v_04"
    pkg.mkdir()
    np.save(pkg / "test_input.npy", img[None, ..., None].astype(np.float64))
    np.save(pkg / "test_output.npy", y.reshape(1, *img.shape, 1).astype(np.float64))
    (pkg / "README.md").write_text("# N2V\n\nSelf-supervised denoising.\n")
    rdf = {
        "format_version": "0.4.9", "type": "model", "name": "n2v 2D", "description": "Self-supervised denoising.",
        "authors": [{"name": "A. Person"}], "cite": [{"text": "Krull et al., CVPR 2019", "doi": "10.1109/CVPR.2019.00223"}],
        "license": "BSD-3-Clause", "documentation": "README.md", "tags": ["2d", "unet", "denoising", "n2v", "tensorflow", "napari"],
        "timestamp": "2023-05-01T10:00:00", "test_inputs": ["test_input.npy"], "test_outputs": ["test_output.npy"],
        "inputs": [{"name": "input", "axes": "byxc", "data_type": "float32", "data_range": ["-inf", "inf"], "shape": [1, 64, 64, 1],
                    "preprocessing": [{"name": "zero_mean_unit_variance",
                                       "kwargs": {"mode": "fixed", "axes": "yx", "mean": means, "std": stds}}]}],
        "outputs": [{"name": "output", "axes": "byxc", "data_type": "float32", "data_range": ["-inf", "inf"],
                     "shape": {"reference_tensor": "input", "scale": [1, 1, 1, 1], "offset": [0, 0, 0, 0]},
                     "postprocessing": [{"name": "scale_linear", "kwargs": {"axes": "yx", "gain": stds, "offset": means}}]}],
        "weights": {"tensorflow_saved_model_bundle": {"source": "tf_model.zip", "sha256": hashlib.sha256(tf_zip.read_bytes()).hexdigest(),
                                                      "tensorflow_version": "2.11"}},
    }  # fmt: skip
    (pkg / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    source = tmp_path / "n2v_04.zip"
    with zipfile.ZipFile(source, "w") as zf:
        for f in [*pkg.iterdir(), tf_zip]:
            zf.write(f, f.name)
    result = convert_package(source, tmp_path / "n2v_05.zip")
    new = read_rdf(result.path)
    pre = [p for p in new["inputs"][0]["preprocessing"] if p["id"] != "ensure_dtype"]
    assert pre == [{"id": "fixed_zero_mean_unit_variance", "kwargs": {"mean": pytest.approx(means[0]), "std": pytest.approx(stds[0])}}]
    rows = _rows(check_runtimes(result.path, runtimes_dir))
    assert {n for n, r in rows.items() if r.status == "passed"} == PACKAGE_ROWS, {n: r.details for n, r in rows.items()}
    assert ".n2v-plugin.zip" in rows["N2V-Fiji"].details  # known as N2V from n2v's tags
    proc = run_official_bioimageio_test(result.path, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_a_3d_n2v_model_trains_exports_and_runs_on_every_runtime(tmp_path, runtimes_dir):
    """Conv3D with batch norms: TF 1.15 refuses the 3D FusedBatchNormV3, so export folds them into the convolutions."""
    from fijiport.config.n2v import N2vTrainConfig
    from fijiport.data import prepare_n2v
    from fijiport.data.synthetic import write_noisy_images
    from fijiport.training import train_n2v

    noisy, clean = write_noisy_images(tmp_path / "raw", dims=3, seed=0, n=4)
    prepare_n2v([noisy], tmp_path / "data", gt_dir=clean)
    config = N2vTrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, patch_size=[8, 32, 32], unet_first_filters=8, tensorboard=False)
    train_n2v(tmp_path / "data", tmp_path / "n2v3d", config)
    result = export_model(tmp_path / "n2v3d", tmp_path / "n2v3d.zip", options=ExportOptions(fiji_zip=tmp_path / "n2v3d_fiji.zip"))
    assert any("FusedBatchNorm folded" in r for r in result.rewrites)
    rows = _rows(check_runtimes(result.path, runtimes_dir))
    assert {n for n, r in rows.items() if r.status == "passed"} == PACKAGE_ROWS, {n: r.details for n, r in rows.items()}
    plugin = _rows(check_runtimes(result.fiji_extras[0], runtimes_dir))
    assert plugin["N2V-Fiji"].status == "passed", plugin["N2V-Fiji"].details


def test_the_package_fine_tunes_with_its_keras_weights_and_normalisation(exported, n2v2d_data, tmp_path):
    """``train n2v --init-from PACKAGE``: the package's keras_hdf5 weights and n2v config rebuild the parent; its
    mean and std (the rdf's ``fixed_zero_mean_unit_variance``) normalise the new training."""
    import hashlib
    import json

    from fijiport.config.n2v import N2vTrainConfig
    from fijiport.training import train_n2v

    child = tmp_path / "child"
    config = N2vTrainConfig(epochs=1, steps_per_epoch=1, batch_size=8, patch_size=[32, 32], tensorboard=False)
    train_n2v(n2v2d_data, child, config, init_from=exported.path)
    p = json.loads((child / "fijiport_training.json").read_text())["parent"]
    with zipfile.ZipFile(exported.path) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        assert p["source"] == "package" and p["weights_sha256"] == hashlib.sha256(zf.read(p["weights"])).hexdigest()
    kwargs = next(step["kwargs"] for step in rdf["inputs"][0]["preprocessing"] if step["id"] == "fixed_zero_mean_unit_variance")
    net = json.loads((child / "config.json").read_text())
    assert [float(m) for m in net["means"]] == pytest.approx([kwargs["mean"]] if np.isscalar(kwargs["mean"]) else kwargs["mean"])
