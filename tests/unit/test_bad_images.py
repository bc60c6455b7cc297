"""Bad images given to `fijiport prepare care`: one line naming the file and the fix, exit code 1, nothing
written, inputs untouched (docs/bad_inputs.md, "Images and masks")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.normalize import scale_range
from helpers import related_pair, tree_hashes

runner = CliRunner()


def _folders(root: Path, first_low, first_gt=None) -> Path:
    rng = np.random.default_rng(0)
    (root / "low").mkdir(parents=True)
    (root / "GT").mkdir()
    for i in range(3):
        low, gt = related_pair(rng, (64, 64), np.float32)
        if i == 0:
            low = first_low
            gt = first_gt if first_gt is not None else (low if isinstance(low, np.ndarray) else gt)
        if isinstance(low, bytes):
            (root / "low" / f"im{i}.tif").write_bytes(low)
        else:
            tifffile.imwrite(root / "low" / f"im{i}.tif", low)
        tifffile.imwrite(root / "GT" / f"im{i}.tif", gt)
    return root


def _nan():
    a = np.ones((64, 64), np.float32)
    a[3, 3] = np.nan
    return a


def _inf():
    a = np.ones((64, 64), np.float32)
    a[5, 5] = np.inf
    return a


ROWS = {
    "RGB where grayscale is expected": (lambda: (np.zeros((64, 64, 3), np.uint8), None), "RGB colour image"),
    "2D and 3D mixed": (lambda: (np.zeros((4, 64, 64), np.float32), None), "mixes images with 3 and 2 dimensions"),
    "non-TIFF file with a .tif name": (lambda: (b"<html>not a tiff</html>", None), "cannot read"),
    "NaN values": (lambda: (_nan(), None), "NaN or infinite pixel"),
    "inf values": (lambda: (_inf(), None), "NaN or infinite pixel"),
}
ALSO = {"2D and 3D mixed": ["im0.tif: (4, 64, 64)", "im1.tif: (64, 64)"]}
"""What a row's message must say besides its key phrase (docs/bad_inputs.md: "naming one file of each")."""


@pytest.mark.parametrize("row", sorted(ROWS))
def test_bad_image_is_refused_naming_the_file(row, tmp_path):
    make, message = ROWS[row]
    root = _folders(tmp_path / "data", *make())
    before = tree_hashes(root)
    r = runner.invoke(app, ["prepare", "care", "--low", str(root / "low"), "--gt", str(root / "GT"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert message in text and "im0.tif" in text and "Traceback" not in text
    assert all(a in text for a in ALSO.get(row, [])), text
    assert not (tmp_path / "out").exists() and tree_hashes(root) == before


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "GT").mkdir()
    r = runner.invoke(app, ["prepare", "care", "--low", str(tmp_path / "low"), "--gt", str(tmp_path / "GT"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "holds no .tif/.tiff files" in r.output


def test_constant_image_is_kept_with_a_note_and_normalises_to_finite_zeros(tmp_path, caplog):
    root = _folders(tmp_path / "data", np.full((64, 64), 7, np.float32))
    r = runner.invoke(app, ["prepare", "care", "--low", str(root / "low"), "--gt", str(root / "GT"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert any("is constant" in rec.getMessage() for rec in caplog.records)
    x = scale_range(np.full((1, 64, 64), 7, np.float32), (1, 2), 1.0, 99.8)
    assert np.isfinite(x).all() and not x.any()  # no division by zero


@pytest.mark.parametrize("row", sorted(ROWS))
def test_bad_image_is_refused_by_prepare_stardist(row, tmp_path):
    make, message = ROWS[row]
    first, _ = make()
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    mask = np.zeros((64, 64), np.uint16)
    mask[10:20, 10:20] = 1
    for i in range(3):
        img = first if i == 0 else np.random.default_rng(i).random((64, 64)).astype(np.float32)
        if isinstance(img, bytes):
            (root / "images" / f"im{i}.tif").write_bytes(img)
        else:
            tifffile.imwrite(root / "images" / f"im{i}.tif", img)
        three_d = i == 0 and isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[-1] != 3
        tifffile.imwrite(root / "masks" / f"im{i}.tif", np.stack([mask] * img.shape[0]) if three_d else mask)
    before = tree_hashes(root)
    r = runner.invoke(
        app, ["prepare", "stardist", "--images", str(root / "images"), "--masks", str(root / "masks"), "-o", str(tmp_path / "out")]
    )
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert message in text and "im0.tif" in text and "Traceback" not in text
    assert all(a in text for a in ALSO.get(row, [])), text
    assert not (tmp_path / "out").exists() and tree_hashes(root) == before
