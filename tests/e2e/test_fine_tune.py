"""``train care|stardist|n2v --init-from MODEL``: fine-tuning starts from the parent's weights (the first epoch's loss is
lower than from scratch on the same data with the same seed), takes the settings not given from it, records it, and
names it in the exported card and rdf; parents whose network cannot take the data are refused before anything is
written, naming what differs (docs/bad_inputs.md, "Fine-tuning")."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import pytest
import yaml
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.config import CareTrainConfig, StardistTrainConfig
from fijiport.config.n2v import N2vTrainConfig
from fijiport.config.training import FINE_TUNE_LEARNING_RATE
from fijiport.qc import compare_models
from fijiport.training import train_care, train_n2v, train_stardist
from helpers import read_rdf, two_channel_pairs

pytestmark = pytest.mark.slow
runner = CliRunner()

CARE_TINY = dict(batch_size=4, patch_size=[32, 32], patches_per_image=8, tensorboard=False)
SD_TINY = dict(patch_size=[64, 64], batch_size=4, validation_fraction=0.34, tensorboard=False)
N2V_TINY = dict(batch_size=8, patch_size=[32, 32], tensorboard=False)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_care_fine_tuned_from_a_model_trained_here_starts_lower_than_from_scratch(care2d_data, tmp_path):
    parent = tmp_path / "parent"
    train_care(
        care2d_data,
        parent,
        CareTrainConfig(epochs=3, steps_per_epoch=10, unet_first_filters=8, learning_rate=1e-3, percentile_low=1.0, **CARE_TINY),
    )
    same = dict(epochs=1, steps_per_epoch=5, seed=1, **CARE_TINY)
    scratch = train_care(care2d_data, tmp_path / "scratch", CareTrainConfig(unet_first_filters=8, percentile_low=1.0, **same))
    child = train_care(care2d_data, tmp_path / "child", CareTrainConfig(**same), init_from=parent)
    first_scratch, first_child = scratch.history["loss"][0], child.history["loss"][0]
    print(f"CARE first-epoch training loss: from scratch {first_scratch:.4f}, fine-tuned {first_child:.4f}")
    assert first_child < first_scratch

    # the settings not given are the parent's; the learning rate is the fine-tuning default
    net = json.loads((tmp_path / "child" / "config.json").read_text())
    assert net["unet_n_first"] == 8 and net["train_learning_rate"] == FINE_TUNE_LEARNING_RATE
    resolved = yaml.safe_load((tmp_path / "child" / "fijiport_config.yaml").read_text())
    assert resolved["learning_rate"] == FINE_TUNE_LEARNING_RATE and resolved["percentile_low"] == 1.0
    record = json.loads((tmp_path / "child" / "fijiport_training.json").read_text())
    assert record["normalization"]["percentile_low"] == 1.0
    p = record["parent"]
    assert p["path"] == str(parent.resolve()) and p["source"] == "model folder" and p["kind"] == "care"
    assert p["weights"] == "weights_best.h5" and p["weights_sha256"] == sha256(parent / "weights_best.h5")
    assert {"unet_first_filters", "percentile_low", "percentile_high"} <= set(p["inherited"])
    assert "zoo_id" not in p
    # an interrupted fine-tuning resumes with its parent still recorded
    assert json.loads((tmp_path / "child" / "fijiport_progress.json").read_text())["parent"]["weights_sha256"] == p["weights_sha256"]


def _as_if_from_the_zoo(package, out, zoo_id="affable-shark", doi="10.5281/zenodo.5764892", version="1.2"):
    """The package as the BioImage Model Zoo serves it once published: an id, a version and the DOI in
    ``config.bioimageio`` (the rdf is not covered by the package's sha256 list)."""
    with zipfile.ZipFile(package) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "rdf.yaml":
                rdf = yaml.safe_load(data)
                rdf.update(id=zoo_id, version=version)
                rdf["config"].setdefault("bioimageio", {})["doi"] = doi
                data = yaml.safe_dump(rdf, sort_keys=False).encode()
            zout.writestr(item, data)
    return out


def test_care_fine_tuned_from_a_package_records_its_zoo_id_and_the_export_names_the_parent(care2d_zip, care2d_data, tmp_path):
    from bioimageio.spec import load_model_description

    zoo_zip = _as_if_from_the_zoo(care2d_zip, tmp_path / "from_zoo.zip")
    child = tmp_path / "child"
    r = invoke(
        "train", "care", care2d_data, "-o", child, "--init-from", zoo_zip, "--epochs", "1", "--steps-per-epoch", "2",
        "--patch-size", "32,32", "--patches-per-image", "4", "--batch-size", "4", "--no-tensorboard",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    p = json.loads((child / "fijiport_training.json").read_text())["parent"]
    with zipfile.ZipFile(zoo_zip) as zf:
        h5 = next(n for n in zf.namelist() if n.endswith(".h5"))
        assert p["weights"] == h5 and p["weights_sha256"] == hashlib.sha256(zf.read(h5)).hexdigest()
    assert (p["source"], p["zoo_id"], p["version"], p["doi"]) == ("package", "affable-shark", "1.2", "10.5281/zenodo.5764892")
    rdf_parent = read_rdf(care2d_zip)
    pct = next(step["kwargs"] for step in rdf_parent["inputs"][0]["preprocessing"] if step["id"] == "scale_range")
    resolved = yaml.safe_load((child / "fijiport_config.yaml").read_text())
    assert [resolved["percentile_low"], resolved["percentile_high"]] == [pct["min_percentile"], pct["max_percentile"]]

    out = tmp_path / "child.zip"
    r = invoke("export", child, "-o", out)
    assert r.exit_code == 0, r.output
    rdf = read_rdf(out)
    assert rdf["parent"] == {"id": "affable-shark", "version": "1.2"}
    assert rdf["config"]["fijiport"]["parent"]["zoo_id"] == "affable-shark" and "path" not in rdf["config"]["fijiport"]["parent"]
    descr = load_model_description(out, perform_io_checks=False)
    assert str(descr.parent.id) == "affable-shark", "bioimageio.spec reads the parent as a LinkedModel"
    with zipfile.ZipFile(out) as zf:
        card = zf.read(rdf["documentation"]["source"] if isinstance(rdf["documentation"], dict) else rdf["documentation"]).decode()
    assert "Fine-tuned from the CARE bioimage.io package" in card and "Zoo id `affable-shark`" in card
    assert "https://doi.org/10.5281/zenodo.5764892" in card

    # the unpublished package itself: recorded, named in the card, but no rdf parent (nothing on the Zoo to link)
    plain = tmp_path / "plain"
    train_care(
        care2d_data, plain, CareTrainConfig(epochs=1, steps_per_epoch=2, **{**CARE_TINY, "patches_per_image": 4}), init_from=care2d_zip
    )
    assert "zoo_id" not in json.loads((plain / "fijiport_training.json").read_text())["parent"]


def test_stardist_fine_tuned_from_a_plain_stardist_folder_keeps_its_network_and_thresholds(plain_stardist2d, stardist2d_data, tmp_path):
    """A folder stardist trained by itself (as its downloadable 2D_versatile_fluo is) fine-tunes with fijiport: its
    rays, grid, depth, filters and thresholds are taken, and the first epoch starts below a training from scratch."""
    scratch = train_stardist(
        stardist2d_data,
        tmp_path / "scratch",
        StardistTrainConfig(epochs=1, steps_per_epoch=5, n_rays=16, unet_depth=2, unet_first_filters=8, **SD_TINY),
    )
    child_dir = tmp_path / "child"
    child = train_stardist(
        stardist2d_data, child_dir, StardistTrainConfig(epochs=1, steps_per_epoch=5, **SD_TINY), init_from=plain_stardist2d
    )
    first_scratch, first_child = scratch.history["loss"][0], child.history["loss"][0]
    print(f"StarDist first-epoch training loss: from scratch {first_scratch:.4f}, fine-tuned {first_child:.4f}")
    assert first_child < first_scratch

    parent_net = json.loads((plain_stardist2d / "config.json").read_text())
    net = json.loads((child_dir / "config.json").read_text())
    for key in ("n_rays", "grid", "unet_n_depth", "unet_n_filter_base", "unet_kernel_size", "net_conv_after_unet"):
        assert net[key] == parent_net[key], key
    assert json.loads((child_dir / "thresholds.json").read_text()) == json.loads((plain_stardist2d / "thresholds.json").read_text())
    p = json.loads((child_dir / "fijiport_training.json").read_text())["parent"]
    assert p["name"] == "plain_stardist_2d" and p["weights_sha256"] == sha256(plain_stardist2d / "weights_best.h5")
    assert {"n_rays", "grid", "thresholds", "percentile_low"} <= set(p["inherited"])
    assert yaml.safe_load((child_dir / "fijiport_config.yaml").read_text())["percentile_low"] == 1.0  # stardist's usual

    # the parent's QC before the child's, segmentation panels side by side
    c = compare_models([child_dir], stardist2d_data / "test", tmp_path / "compare", with_parent=True)
    assert [m.label for m in c.models] == ["plain_stardist_2d", "child"] and c.task == "segmentation"
    assert c.models[0].parent_of == "child" and "plain_stardist_2d" in (c.models[1].fine_tuned_from or "")
    assert all(m.per_threshold and set(m.per_image) == set(c.images) for m in c.models)
    assert (tmp_path / "compare" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in (tmp_path / "compare" / "panels").iterdir()] == [f"{c.images[0].rsplit('.', 1)[0]}.png"]


def test_n2v_fine_tuned_from_a_model_trained_here_starts_lower_and_keeps_its_mean_and_std(n2v2d_data, tmp_path):
    parent = tmp_path / "parent"
    train_n2v(n2v2d_data, parent, N2vTrainConfig(epochs=3, steps_per_epoch=10, unet_first_filters=8, learning_rate=1e-3, **N2V_TINY))
    same = dict(epochs=1, steps_per_epoch=5, seed=1, **N2V_TINY)
    scratch = train_n2v(n2v2d_data, tmp_path / "scratch", N2vTrainConfig(unet_first_filters=8, **same))
    child_dir = tmp_path / "child"
    child = train_n2v(n2v2d_data, child_dir, N2vTrainConfig(**same), init_from=parent)
    first_scratch, first_child = scratch.history["loss"][0], child.history["loss"][0]
    print(f"N2V first-epoch training loss: from scratch {first_scratch:.4f}, fine-tuned {first_child:.4f}")
    assert first_child < first_scratch

    net, parent_net = (json.loads((d / "config.json").read_text()) for d in (child_dir, parent))
    assert net["unet_n_first"] == 8 and net["train_learning_rate"] == FINE_TUNE_LEARNING_RATE
    assert (net["means"], net["stds"]) == (parent_net["means"], parent_net["stds"]), "the parent's normalisation"
    resolved = yaml.safe_load((child_dir / "fijiport_config.yaml").read_text())
    assert resolved["normalization"] == "parent" and resolved["learning_rate"] == FINE_TUNE_LEARNING_RATE
    record = json.loads((child_dir / "fijiport_training.json").read_text())
    assert record["normalization"]["means"] == [float(m) for m in parent_net["means"]]
    p = record["parent"]
    assert p["kind"] == "n2v" and p["weights_sha256"] == sha256(parent / "weights_best.h5")
    assert {"unet_first_filters", "normalization"} <= set(p["inherited"])
    # --normalization data: the training images' own, as n2v computes them
    own = train_n2v(n2v2d_data, tmp_path / "own", N2vTrainConfig(normalization="data", **{**same, "steps_per_epoch": 1}), init_from=parent)
    assert own.config.normalization == "data"
    assert (
        json.loads((tmp_path / "own" / "config.json").read_text())["means"]
        == json.loads((tmp_path / "scratch" / "config.json").read_text())["means"]
    )

    # the export names the parent; qc --with-parent compares parent and child, residual and PSNR per image
    out = tmp_path / "child.zip"
    r = invoke("export", child_dir, "-o", out)
    assert r.exit_code == 0, r.output
    rdf = read_rdf(out)
    assert rdf["config"]["fijiport"]["parent"]["weights_sha256"] == p["weights_sha256"] and "parent" not in rdf
    with zipfile.ZipFile(out) as zf:
        card = zf.read(rdf["documentation"]["source"] if isinstance(rdf["documentation"], dict) else rdf["documentation"]).decode()
    assert "Fine-tuned from the N2V model folder **parent**" in card and "mean and standard deviation" in card
    r = invoke("qc", child_dir, "--with-parent", n2v2d_data / "test", "-o", tmp_path / "compare")
    assert r.exit_code == 0, r.output
    c = json.loads((tmp_path / "compare" / "comparison.json").read_text())
    assert c["task"] == "denoising" and [m["label"] for m in c["models"]] == ["parent", "child"]
    assert c["metrics"] == ["autocorrelation_lag1", "correlation_with_prediction", "std_ratio", "psnr", "ssim", "nrmse", "pearson"]
    for m in c["models"]:
        own_qc = json.loads((tmp_path / "compare" / m["report"] / "qc.json").read_text())
        assert m["mean"]["psnr"] == own_qc["summary"]["psnr"]["prediction"]
        assert m["mean"]["autocorrelation_lag1"] == own_qc["residual"]["autocorrelation"][0]
        assert set(m["per_image"]) == set(c["images"])
    assert c["models"][0]["mean"] != c["models"][1]["mean"]
    assert set(c["input"]["mean"]) == {"psnr", "ssim", "nrmse", "pearson"}
    md = (tmp_path / "compare" / "comparison.md").read_text()
    assert "denoising (N2V)" in md and "## residual autocorrelation (lag 1) per image" in md
    assert sorted(p.name for p in (tmp_path / "compare" / "panels").iterdir()) == sorted(f"{n.rsplit('.', 1)[0]}.png" for n in c["images"])


def test_n2v_models_compare_without_clean_images_by_their_residual(n2v2d_model, n2v2d_data, tmp_path):
    """Most labs have no clean images: the comparison is then the residual's figures alone, and says so."""
    noisy = tmp_path / "noisy"
    shutil.copytree(n2v2d_data / "test" / "images", noisy)
    other = tmp_path / "other"
    train_n2v(n2v2d_data, other, N2vTrainConfig(epochs=1, steps_per_epoch=2, unet_first_filters=8, seed=3, **N2V_TINY))
    out = tmp_path / "compare"
    r = invoke("qc", n2v2d_model, other, noisy, "-o", out)
    assert r.exit_code == 0, r.output
    c = json.loads((out / "comparison.json").read_text())
    assert c["metrics"] == ["autocorrelation_lag1", "correlation_with_prediction", "std_ratio"] and c["input"] is None
    assert "no clean versions" in (out / "comparison.md").read_text()
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert "autocorrelation lag1" in " ".join(r.stdout.split())


def test_a_plain_n2v_folder_with_per_channel_networks_fine_tunes(n2v2d_data, tmp_path):
    """n2v's own defaults (one network per channel through a weightless Lambda slice, kernel 5): a one-channel such
    folder is one network, its weights load into fijiport's, and its kernel size is taken."""
    import numpy as np
    import tifffile

    from fijiport.kinds.n2v import import_n2v

    n2v = import_n2v()
    X = np.stack([tifffile.imread(p).astype(np.float32)[:64, :64] for p in sorted((n2v2d_data / "train" / "images").glob("*.tif"))])
    config = n2v.N2VConfig(X[..., None], unet_n_first=8, n2v_patch_shape=(32, 32), train_tensorboard=False)
    assert config.single_net_per_channel and config.unet_kern_size == 5
    model = n2v.N2V(config, "plain", basedir=str(tmp_path))
    model.keras_model.save_weights(str(tmp_path / "plain" / "weights_best.h5"))
    child = tmp_path / "child"
    train_n2v(n2v2d_data, child, N2vTrainConfig(epochs=1, steps_per_epoch=1, **N2V_TINY), init_from=tmp_path / "plain")
    net = json.loads((child / "config.json").read_text())
    assert net["unet_kern_size"] == 5 and net["single_net_per_channel"] is False and net["unet_n_first"] == 8


def test_n2v_images_on_another_scale_than_the_parents_are_named_with_the_fix(n2v2d_model, n2v2d_raw, tmp_path, caplog):
    import tifffile

    from fijiport.data import prepare_n2v

    brighter = tmp_path / "brighter"
    brighter.mkdir()
    for f in sorted((n2v2d_raw / "noisy").glob("*.tif")):
        tifffile.imwrite(brighter / f.name, (tifffile.imread(f).astype("float32") * 4 + 1000).astype("float32"))
    prepare_n2v([brighter], tmp_path / "data")
    with caplog.at_level("WARNING"):
        train_n2v(tmp_path / "data", tmp_path / "child", N2vTrainConfig(epochs=1, steps_per_epoch=1, **N2V_TINY), init_from=n2v2d_model)
    text = " ".join(caplog.text.split())
    assert "another intensity scale" in text and "channel 0: mean" in text and "--normalization data" in text

    r = invoke("train", "n2v", tmp_path / "data", "-o", tmp_path / "none", "--normalization", "parent")
    assert r.exit_code == 1 and "give --init-from too" in " ".join(r.stderr.split()) and not (tmp_path / "none").exists()


def test_stardist_fine_tuned_from_a_package_takes_its_thresholds(stardist_zip, stardist2d_data, tmp_path):
    """A StarDist package (stardist's files attached) fine-tunes: the network and thresholds are the package's."""
    child = tmp_path / "child"
    train_stardist(stardist2d_data, child, StardistTrainConfig(epochs=1, steps_per_epoch=2, **SD_TINY), init_from=stardist_zip.path)
    p = json.loads((child / "fijiport_training.json").read_text())["parent"]
    with zipfile.ZipFile(stardist_zip.path) as zf:
        thresholds = json.loads(zf.read("thresholds.json"))
        parent_net = json.loads(zf.read("config.json"))
        assert p["source"] == "package" and p["weights_sha256"] == hashlib.sha256(zf.read("weights_best.h5")).hexdigest()
    assert json.loads((child / "thresholds.json").read_text()) == thresholds
    net = json.loads((child / "config.json").read_text())
    assert all(net[k] == parent_net[k] for k in ("n_rays", "grid", "unet_n_depth", "unet_n_filter_base"))


# --- parents that do not fit: refused before anything is written ----------------------------------------------


@pytest.fixture(scope="module")
def care3d_data(care3d_raw, tmp_path_factory):
    from fijiport.data import prepare_care

    out = tmp_path_factory.mktemp("care3d") / "data"
    prepare_care(care3d_raw / "low", care3d_raw / "GT", out)
    return out


@pytest.fixture(scope="module")
def two_channel_data(tmp_path_factory):
    from fijiport.data import prepare_care

    root = tmp_path_factory.mktemp("two_channel")
    low, gt = two_channel_pairs(root)
    prepare_care(low, gt, root / "data")
    return root / "data"


REFUSALS = {
    "wrong dims": (
        ["train", "care", "care3d_data", "--init-from", "plain_care2d"],
        ["dimensions (parent 2D, 3D here)", "fine-tune on images of the parent's dimensions"],
    ),
    "channels": (
        ["train", "care", "two_channel_data", "--init-from", "care2d_model"],
        ["input channels (parent 1, 2 here)", "Split Channels"],
    ),
    "rays": (
        ["train", "stardist", "stardist2d_data", "--init-from", "plain_stardist2d", "--n-rays", "32"],
        ["only the output head differs", "rays (parent 16, --n-rays 32)", "drop --n-rays (fine-tuning takes the parent's 16)"],
    ),
    "depth and grid given": (
        ["train", "stardist", "stardist2d_data", "--init-from", "plain_stardist2d", "--unet-depth", "3", "--grid", "1,1"],
        ["cannot start this training", "U-Net depth (parent 2, --unet-depth 3)", "grid (parent 2,2, --grid 1,1)", "drop --grid"],
    ),
    "another kind": (
        ["train", "care", "care2d_data", "--init-from", "plain_stardist2d"],
        ["is a StarDist model", "`fijiport train stardist --init-from`"],
    ),
    "n2v depth given": (
        ["train", "n2v", "n2v2d_data", "--init-from", "n2v2d_model", "--unet-depth", "3"],
        ["cannot start this training", "U-Net depth (parent 2, --unet-depth 3)", "drop --unet-depth"],
    ),
    "n2v from a CARE model": (
        ["train", "n2v", "n2v2d_data", "--init-from", "care2d_model"],
        ["is a CARE model", "`fijiport train care --init-from`"],
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_parent_that_does_not_fit_is_refused_naming_what_differs_and_the_fix(case, request, tmp_path):
    args, expected = REFUSALS[case]
    args = [request.getfixturevalue(a) if a.endswith(("_data", "2d", "_model")) else a for a in args]
    out = tmp_path / "child"
    r = invoke(*args[:3], "-o", out, *args[3:], "--epochs", "1")
    assert r.exit_code == 1, r.output
    message = " ".join(r.stderr.split())
    assert message.startswith("error: ")
    for text in expected:
        assert text in message, (text, message)
    assert not out.exists(), "refused before anything was written"


def test_init_from_and_resume_together_is_a_usage_error(care2d_model, care2d_data, tmp_path):
    r = invoke("train", "care", care2d_data, "-o", tmp_path / "m", "--init-from", care2d_model, "--resume", "--epochs", "2")
    assert r.exit_code == 2 and "give one of them" in " ".join(r.stderr.split())


def test_a_missing_parent_is_named(care2d_data, tmp_path):
    r = invoke("train", "care", care2d_data, "-o", tmp_path / "m", "--init-from", tmp_path / "nowhere")
    assert r.exit_code == 1 and "--init-from" in r.stderr and "does not exist" in r.stderr


def test_help_states_the_fine_tuning_learning_rate():
    for kind in ("care", "stardist", "n2v"):
        text = " ".join(invoke("train", kind, "--help").output.split())
        assert "--init-from" in text and "0.0001 when fine-tuning" in text


def test_a_copied_parent_folder_is_a_parent_like_any(care2d_model, care2d_data, tmp_path):
    """The parent is read, never written: its folder is byte-identical after a fine-tuning."""
    from helpers import tree_hashes

    parent = tmp_path / "parent"
    shutil.copytree(care2d_model, parent)
    before = tree_hashes(parent)
    train_care(
        care2d_data,
        tmp_path / "child",
        CareTrainConfig(epochs=1, steps_per_epoch=2, **{**CARE_TINY, "patches_per_image": 4}),
        init_from=parent,
    )
    assert tree_hashes(parent) == before


def test_a_package_without_the_network_config_is_refused_naming_what_it_lacks(care2d_zip, care2d_data, tmp_path):
    """A package whose weights csbdeep cannot rebuild (no csbdeep config: someone else's CARE-like package) is refused
    before training: fine-tuning needs the library's config and the Keras weights."""
    stripped = tmp_path / "no_config.zip"
    with zipfile.ZipFile(care2d_zip) as zin, zipfile.ZipFile(stripped, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "rdf.yaml":
                rdf = yaml.safe_load(data)
                del rdf["config"]["fijiport"]["csbdeep_config"]
                data = yaml.safe_dump(rdf, sort_keys=False).encode()
            zout.writestr(item, data)
    out = tmp_path / "child"
    r = invoke("train", "care", care2d_data, "-o", out, "--init-from", stripped, "--epochs", "1")
    message = " ".join(r.stderr.split())
    assert r.exit_code == 1 and "carries no csbdeep/stardist/n2v model folder" in message
    assert "start from the model folder it was exported from instead" in message and not out.exists()
