"""CLI behaviour: help that teaches, exit codes (0 ok, 1 failure, 2 usage) and one-line messages."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    "command",
    [[], ["prepare", "care"], ["train", "care"], ["qc"], ["export"], ["validate"], ["demo"]],
    ids=["root", "prepare", "train", "qc", "export", "validate", "demo"],
)
def test_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("fijiport ")


def test_missing_required_option_is_a_usage_error(tmp_path):
    result = invoke("prepare", "care", "--low", tmp_path)
    assert result.exit_code == 2
    assert "--gt" in result.output


def _pairs(root, names_low, names_gt, shape=(16, 16)):
    for sub, names in (("low", names_low), ("GT", names_gt)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            tifffile.imwrite(root / sub / n, np.zeros(shape, np.uint16))


def test_prepare_ok_prints_the_split(tmp_path):
    _pairs(tmp_path, ["a.tif", "b.tif", "c.tif"], ["a.tif", "b.tif", "c.tif"])
    result = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "data")
    assert result.exit_code == 0, result.output
    assert "manifest" in result.output and (tmp_path / "data" / "fijiport_data.json").is_file()


def test_prepare_unpaired_exits_1_naming_the_file_and_the_fix(tmp_path):
    _pairs(tmp_path, ["a.tif", "b.tif", "stray.tif"], ["a.tif", "b.tif"])
    result = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "data")
    assert result.exit_code == 1
    assert "stray.tif" in result.output and "--allow-unpaired" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()


def test_prepare_bad_option_value_is_a_usage_error_named_as_typed(tmp_path):
    _pairs(tmp_path, ["a.tif"], ["a.tif"])
    result = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "d", "--axes", "YQ")
    assert result.exit_code == 2 and "YQ" in result.output
    result = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "d", "--test-fraction", "1.5")
    assert result.exit_code == 2 and "--test-fraction 1.5" in result.output and "test_fraction" not in result.output


def test_train_bad_patch_size_explains_divisibility(tmp_path):
    result = invoke("train", "care", tmp_path, "-o", tmp_path / "m", "--patch-size", "30,32")
    assert result.exit_code == 2
    assert "divisible by 4" in result.output and "try [28, 32]" in result.output


def test_train_patch_size_not_numbers_is_usage_error(tmp_path):
    result = invoke("train", "care", tmp_path, "-o", tmp_path / "m", "--patch-size", "big")
    assert result.exit_code == 2


def test_train_without_manifest_says_how_to_make_one(tmp_path):
    result = invoke("train", "care", tmp_path, "-o", tmp_path / "m")
    assert result.exit_code == 1 and "fijiport prepare care" in result.output


def test_train_config_file_unknown_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epocs: 3\n")
    result = invoke("train", "care", tmp_path, "-o", tmp_path / "m", "--config", cfg)
    assert result.exit_code == 1 and "epocs" in result.output and "unknown option" in result.output


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: None, "no config.json"),
        (
            lambda d: (d / "config.json").write_text(
                '{"axes": "YXC", "n_dim": 2, "unet_n_depth": 2, "n_channel_in": 1, "n_channel_out": 1}'
            ),
            "no weights",
        ),
        (lambda d: (d / "config.json").write_text('{"axes": "YXC", "n_rays": 32, "n_dim": 2}'), "no weights_best.h5 or weights_last.h5"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    ],
    ids=["empty-folder", "no-weights", "stardist-without-weights", "broken-json"],
)
def test_export_broken_model_folders(tmp_path, setup, message):
    model = tmp_path / "model"
    model.mkdir()
    setup(model)
    result = invoke("export", model, "-o", tmp_path / "out.zip")
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "out.zip").exists()


def test_export_output_must_be_zip(tmp_path):
    result = invoke("export", tmp_path, "-o", tmp_path / "out.yaml")
    assert result.exit_code == 1 and ".zip" in result.output


def test_validate_missing_file_fails(tmp_path):
    result = invoke("validate", tmp_path / "nope.zip")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_validate_not_a_model_fails(tmp_path):
    bad = tmp_path / "bad.zip"
    import zipfile

    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("rdf.yaml", "type: model\nformat_version: 0.5.12\nname: broken\n")
    result = invoke("validate", bad, "--json", tmp_path / "r.json")
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert (tmp_path / "r.json").is_file()


def test_debug_shows_traceback(tmp_path):
    result = invoke("--debug", "train", "care", tmp_path, "-o", tmp_path / "m")
    assert result.exit_code == 1 and "Traceback" in result.output
