"""``predict --recursive``: a microscope's nested folders restored into the same structure."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.predict import predict_images
from helpers import lightsheet_tree, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_recursive_predict_writes_each_result_under_its_inputs_path(care2d_model, tmp_path):
    low, _, pairs = lightsheet_tree(tmp_path / "acq", shape=(40, 48), stacks=2, positions=2, channels=1)
    (low / "2026-03-14" / "notes.txt").write_text("not an image")
    hidden = low / "2026-03-14" / ".snapshots"
    hidden.mkdir()
    tifffile.imwrite(hidden / "old.tif", np.zeros((40, 48), np.uint16))
    before = tree_hashes(tmp_path / "acq")

    r = invoke("predict", care2d_model, low, "-o", tmp_path / "restored", "--recursive")
    assert r.exit_code == 0, r.output
    assert tree_hashes(tmp_path / "acq") == before  # inputs never modified
    written = sorted(p.relative_to(tmp_path / "restored") for p in (tmp_path / "restored").rglob("*") if p.is_file())
    assert written == sorted(src.relative_to(low) for src, _ in pairs)  # same sub-folders, same names; hidden and non-TIFF left
    for src, _ in pairs:
        out = tifffile.imread(tmp_path / "restored" / src.relative_to(low))
        assert out.shape == (40, 48) and out.dtype == np.float32 and np.isfinite(out).all()
    assert f"{len(pairs)} image(s)" in r.output

    # without --recursive the nested tree is no input, and the message says what to pass
    r = invoke("predict", care2d_model, low, "-o", tmp_path / "flat")
    assert r.exit_code == 1 and "pass --recursive" in " ".join(r.output.split()) and not (tmp_path / "flat").exists()

    # --skip-existing goes on per relative path
    (tmp_path / "restored" / pairs[0][0].relative_to(low)).unlink()
    results = predict_images(care2d_model, [low], tmp_path / "restored", recursive=True, skip_existing=True)
    assert [r.skipped for r in results] == [False] + [True] * (len(pairs) - 1)
    assert results[0].relative == pairs[0][0].relative_to(low).as_posix()


def test_recursive_predict_refuses_an_output_inside_its_input(care2d_model, tmp_path):
    low, _, _ = lightsheet_tree(tmp_path / "acq", shape=(40, 48), stacks=1, positions=1, channels=1)
    r = invoke("predict", care2d_model, low, "-o", low / "restored", "--recursive")
    assert r.exit_code == 1 and "which --recursive reads" in " ".join(r.output.split()), r.output
    assert not (low / "restored").exists()


def test_recursive_predict_refuses_two_inputs_with_one_relative_path(care2d_model, tmp_path):
    low, _, _ = lightsheet_tree(tmp_path / "acq", shape=(40, 48), stacks=1, positions=1, channels=1)
    shutil.copytree(low, tmp_path / "copy")
    r = invoke("predict", care2d_model, low, tmp_path / "copy", "-o", tmp_path / "out", "--recursive")
    assert r.exit_code == 1 and "two inputs are named 2026-03-14/embryo1/pos01/ch0/" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "out").exists()
