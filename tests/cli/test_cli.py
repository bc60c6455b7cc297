"""CLI behaviour: help that teaches, exit codes (0 ok, 1 failure, 2 usage) and one-line messages."""

from __future__ import annotations

import re

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
    assert "--output" in result.output
    result = invoke("prepare", "care", "--low", tmp_path, "-o", tmp_path / "data")  # --gt or --pairs is needed
    assert result.exit_code == 2
    assert "give --low and --gt folders, or --pairs" in result.output


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


def _command_paths(command=None, path=()):
    """Every command and group of the CLI, as the words that call it."""
    import typer.main

    command = command or typer.main.get_command(app)
    yield list(path)
    if hasattr(command, "list_commands"):
        import typer._click as click

        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _command_paths(command.get_command(ctx, name), (*path, name))


COMMANDS = list(_command_paths())


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "root" for c in COMMANDS])
def test_help_reads_at_80_columns(command):
    """Issue 21: in an 80-column terminal option names were cut (`--patches-per-ima…`) and flags showed `<bool>`."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    cut = re.findall(r"-[\w-]*…", result.output)
    assert not cut, f"option names cut: {cut}"
    assert "<bool>" not in result.output, "a flag takes no value"


def test_help_keeps_sentences_whole():
    """A docstring's line breaks are not the terminal's: a wide terminal shows each paragraph as one line."""
    result = runner.invoke(app, ["predict", "--help"], env={"COLUMNS": "300"})
    assert "ImageJ ROI sets + a CSV of per-object area, centroid and mean intensity (StarDist)." in result.output
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "300"})
    assert "+ a CSV of per-object area" in result.output  # the command list shows the same first paragraph


def test_root_help_names_what_fijiport_does():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "80"})
    text = " ".join(result.output.split())
    assert "Train CARE and StarDist models" in text
    commands = "prepare train qc export validate predict runtimes convert macros zoo-check upload demo"
    for command in commands.split():
        assert f" {command} " in text


def test_errors_start_on_the_first_line_of_stderr(tmp_path):
    """A transient progress bar used to leave an empty line before the error of every failed prepare and qc."""
    import h5py

    result = invoke("prepare", "care", "--low", tmp_path, "--gt", tmp_path, "-o", tmp_path / "data")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    _pairs(tmp_path, ["a.tif"], ["b.tif"])
    result = invoke("prepare", "care", "--low", tmp_path / "low", "--gt", tmp_path / "GT", "-o", tmp_path / "data")
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "a.tif" in result.stderr

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"axes": "YXC", "n_dim": 2, "unet_n_depth": 2, "n_channel_in": 1, "n_channel_out": 1}')
    h5py.File(model / "weights_best.h5", "w").close()
    (tmp_path / "empty_test").mkdir()
    result = invoke("qc", model, tmp_path / "empty_test", "-o", tmp_path / "report", "--percentiles", "2,99.8")
    assert result.exit_code == 1 and "has no low/ and GT/ folders" in result.stderr
    assert result.stderr.startswith("error: ")
