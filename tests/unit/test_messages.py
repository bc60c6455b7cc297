"""Messages a new user met (issue 6, "tried as a new user"): each says which file, what is wrong and what to do."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _pairs(root: Path) -> None:
    for sub in ("low", "GT"):
        (root / sub).mkdir(parents=True)
        tifffile.imwrite(root / sub / "a.tif", np.random.default_rng(0).random((32, 32)).astype(np.float32))


def test_low_and_gt_the_same_folder_is_refused(tmp_path):
    _pairs(tmp_path)
    r = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "low", "-o", tmp_path / "d")
    assert r.exit_code == 1 and "--low and --gt are the same folder" in r.output
    assert not (tmp_path / "d").exists()


def test_output_folder_given_as_an_existing_file_is_kept(tmp_path):
    _pairs(tmp_path)
    (tmp_path / "afile").write_text("keep me")
    r = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "afile", "--overwrite")
    assert r.exit_code == 1 and "is a file" in r.output and "-o" in r.output
    assert (tmp_path / "afile").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GT", "afile", "low"]


def test_outputs_get_the_usual_permissions(tmp_path):
    """mkstemp/mkdtemp make 0600/0700; a data folder on a shared server must be readable by the group as usual."""
    _pairs(tmp_path)
    old = os.umask(0o022)
    try:
        r = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "d")
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "d" / "fijiport_data.json").stat().st_mode) == 0o644


def test_export_given_a_file_says_to_pass_the_folder(tmp_path):
    (tmp_path / "image.tif").write_bytes(b"x")
    r = invoke("export", tmp_path / "image.tif", "-o", tmp_path / "m.zip")
    assert r.exit_code == 1 and "is a file; pass the model folder" in r.output


def test_masks_and_rois_together_is_a_usage_error(tmp_path):
    _pairs(tmp_path)
    r = invoke(
        "prepare", "stardist", "--images", tmp_path / "low", "--masks", tmp_path / "GT", "--rois", tmp_path / "GT", "-o", tmp_path / "d"
    )
    assert r.exit_code == 2 and "exactly one of --masks" in r.output
    neither = invoke("prepare", "stardist", "--images", tmp_path / "low", "-o", tmp_path / "d")
    assert neither.exit_code == 2 and "exactly one of --masks" in neither.output
    assert not (tmp_path / "d").exists()


def test_intensity_images_given_as_masks_are_refused(tmp_path):
    from stardist.data import test_image_nuclei_2d

    from fijiport.data.labels import check_label_image
    from fijiport.errors import DataError

    img, lbl = test_image_nuclei_2d(return_mask=True)
    img, lbl = img[:256, :256], lbl[:256, :256]
    _, report = check_label_image(lbl, img.shape, tmp_path / "real.tif")  # real labels pass
    assert report.n_objects > 20
    import pytest

    with pytest.raises(DataError, match="looks like an intensity image"):
        check_label_image(img.astype(np.uint16), img.shape, tmp_path / "raw.tif")


def test_damaged_weights_are_named_before_anything_else_is_asked(tmp_path):
    """Not "pass --test-input" first and "damaged weights" only on the second try."""
    import json

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"axes": "YXC", "n_dim": 2, "unet_n_depth": 2, "n_channel_in": 1, "n_channel_out": 1}))
    (model / "weights_best.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    r = invoke("export", model, "-o", tmp_path / "m.zip")
    assert r.exit_code == 1 and "weights_best.h5 is damaged" in r.output and "--test-input" not in r.output


def test_export_version_that_is_no_version_says_what_to_type(tmp_path):
    r = invoke("export", tmp_path, "-o", tmp_path / "m.zip", "--version", "first")
    assert r.exit_code == 1 and "'first' is not a version number" in r.output and "try 1.0.0" in r.output
    assert not (tmp_path / "m.zip").exists()


def test_validate_given_a_model_folder_says_to_export_it_first(tmp_path):
    """Issue 21: `fijiport validate MODEL_FOLDER` answered "no rdf.yaml ...; is it a bioimage.io model package?"."""
    model = tmp_path / "care_model"
    model.mkdir()
    (model / "config.json").write_text('{"axes": "YXC", "n_dim": 2, "unet_n_depth": 2, "n_channel_in": 1, "n_channel_out": 1}')
    r = invoke("validate", model, "--json", tmp_path / "v.json")
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert f"{model} is a model folder" in text and f"export it first with `fijiport export {model} -o model.zip`" in text
    assert "Traceback" not in r.output
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["status"] == "failed"
