"""CARE pairs that are not pairs (issue 21, item 5): swapped folders, shuffled GT names, a shifted GT and clipped inputs
passed `prepare care` silently. Calibrated on the demo's simulated 15-photon pairs (``write_care_pairs``) and broken
variants made from the same files.

Figures measured (``data.pair_checks``; correlation after smoothing, |shift| in px, noise ratio input/GT, saturation):

pairs               correlation     |shift| px     noise ratio   saturation
good 2D (9)         0.978 .. 0.993  0              2.85 .. 4.80  <= 0.0001
good 3D (8)         0.995 .. 0.996  0              2.60 .. 3.00  0
swapped 2D / 3D     as good         0              0.21 .. 0.39  <= 0.0001
shuffled GT 2D      -0.12 .. 0.12   26.8 .. 72.8   2.4 .. 6.9    <= 0.0001
shuffled GT 3D      -0.29 .. 0.33   8.5 .. 19.8    2.6 .. 3.0    0
GT rolled 20 px     0.02 .. 0.33    20             as good       <= 0.0001   (0.98 .. 0.99 once shifted back)
input clipped 75%   0.63 .. 0.87    0 .. 0.25      2.5 .. 11     0.75 .. 0.78

Refused: correlation < 0.2, |shift| >= 3 px, noise ratio < 0.5, saturation >= 20%; warned: correlation < 0.5, |shift| >= 1.5,
noise ratio < 1, saturation >= 1%.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.data import MANIFEST_NAME, load_manifest, prepare_care
from helpers import tree_hashes

runner = CliRunner()


def _pair_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "fijiport.data.pair_checks"]


@pytest.mark.parametrize("dims", [2, 3], ids=["2D", "3D"])
def test_simulated_pairs_pass_without_a_warning_and_their_figures_are_recorded(dims, care2d_raw, care3d_raw, tmp_path, caplog):
    raw = care2d_raw if dims == 2 else care3d_raw
    with caplog.at_level(logging.INFO):
        manifest = prepare_care(raw / "low", raw / "GT", tmp_path / "data")
    assert _pair_warnings(caplog) == []
    on_disk = load_manifest(tmp_path / "data")
    for rec in on_disk.pairs:
        c = rec.checks
        assert c is not None and c.warnings == []
        assert c.correlation is not None and c.correlation > 0.97 and c.aligned_correlation == c.correlation
        assert c.shift == [0.0] * dims
        assert c.noise_ratio is not None and 2.5 < c.noise_ratio < 5
        assert c.saturated_low is not None and c.saturated_gt is not None and max(c.saturated_low, c.saturated_gt) < 0.001
    assert [r.checks for r in manifest.pairs] == [r.checks for r in on_disk.pairs]


def _swapped(raw: Path, out: Path) -> None:
    shutil.copytree(raw / "GT", out / "low")
    shutil.copytree(raw / "low", out / "GT")


def _shuffled(raw: Path, out: Path) -> None:
    shutil.copytree(raw / "low", out / "low")
    (out / "GT").mkdir()
    names = sorted(p.name for p in (raw / "GT").iterdir())
    for name, other in zip(names, names[1:] + names[:1]):
        shutil.copy(raw / "GT" / other, out / "GT" / name)


def _shifted(raw: Path, out: Path, px: int = 20) -> None:
    shutil.copytree(raw / "low", out / "low")
    (out / "GT").mkdir()
    for p in sorted((raw / "GT").iterdir()):
        tifffile.imwrite(out / "GT" / p.name, np.roll(tifffile.imread(p), px, axis=-1))


def _clipped(raw: Path, out: Path, fraction: float = 0.75) -> None:
    """Inputs converted to 8 bits with the display range set too low: ``fraction`` of the pixels end at 255."""
    shutil.copytree(raw / "GT", out / "GT")
    (out / "low").mkdir()
    for p in sorted((raw / "low").iterdir()):
        x = tifffile.imread(p).astype(np.float64)
        tifffile.imwrite(out / "low" / p.name, np.clip(x * 255 / np.percentile(x, 100 * (1 - fraction)), 0, 255).astype(np.uint8))


BROKEN = {
    "swapped": (
        _swapped,
        [r"GT/nuclei_00\.tif is noisier than its input .*low/nuclei_00\.tif", r"noise ratio input/GT 0\.[234]", "swapped"],
    ),
    "shuffled": (_shuffled, [r"nuclei_00\.tif", r"correlation -?0\.\d\d", "(shuffled or renamed files?|belongs to this input)"]),
    "shifted": (_shifted, [r"GT/nuclei_00\.tif is shifted against its input", r"\((0, )?0, 20\) px along (Z, )?Y, X", "register the pair"]),
    "clipped": (_clipped, [r"low/nuclei_00\.tif: 7\d% of its pixels sit at its maximum value", "no 8-bit conversion"]),
}


@pytest.mark.parametrize("dims", [2, 3], ids=["2D", "3D"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_pairs_that_are_not_pairs_are_refused_naming_the_file_and_the_figure(case, dims, care2d_raw, care3d_raw, tmp_path):
    import re

    make, patterns = BROKEN[case]
    root = tmp_path / "raw"
    make(care2d_raw if dims == 2 else care3d_raw, root)
    before = tree_hashes(root)
    args = ["prepare", "care", "--low", str(root / "low"), "--gt", str(root / "GT"), "-o", str(tmp_path / "data")]
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    for pattern in patterns:
        assert re.search(pattern, text), (pattern, text)
    assert "--skip-pair-checks" in text and "Traceback" not in text
    assert not (tmp_path / "data").exists() and tree_hashes(root) == before

    # the expert's way through: no checks, no figures in the manifest
    r = runner.invoke(app, [*args, "--skip-pair-checks"])
    assert r.exit_code == 0, r.output
    manifest = load_manifest(tmp_path / "data")
    assert not manifest.config.check_pairs and all(p.checks is None for p in manifest.pairs)


@pytest.mark.parametrize(
    "make,warning",
    [
        (
            lambda raw, out: _shifted(raw, out, px=2),
            r"GT/nuclei_\d\d\.tif may be shifted against .* by \(0, (1\.75|2|2\.25)\) px along Y, X",
        ),
        (lambda raw, out: _clipped(raw, out, fraction=0.05), r"low/nuclei_\d\d\.tif: [456]\.\d% of its pixels sit at its maximum value"),
    ],
    ids=["GT shifted by 2 px", "5% of the input clipped"],
)
def test_borderline_pairs_are_kept_with_a_warning_naming_the_file_and_the_figure(make, warning, care2d_raw, tmp_path, caplog):
    import re

    make(care2d_raw, tmp_path / "raw")
    with caplog.at_level(logging.WARNING):
        manifest = prepare_care(tmp_path / "raw" / "low", tmp_path / "raw" / "GT", tmp_path / "data")
    warned = _pair_warnings(caplog)
    assert len(warned) == 9 and all(re.search(warning, w) for w in warned), warned
    assert all(p.checks is not None and len(p.checks.warnings) == 1 for p in manifest.pairs)


def test_manifests_written_before_pair_checks_still_read(care2d_raw, tmp_path):
    prepare_care(care2d_raw / "low", care2d_raw / "GT", tmp_path / "data")
    path = tmp_path / "data" / MANIFEST_NAME
    old = json.loads(path.read_text())
    for rec in old["pairs"]:
        del rec["checks"]
    del old["config"]["check_pairs"]
    path.write_text(json.dumps(old))
    manifest = load_manifest(tmp_path / "data")
    assert manifest.pairs[0].checks is None and manifest.config.check_pairs


def test_pair_checks_take_a_second_on_a_64x1024x1024_stack():
    """The figures come from a centre crop (and a strided subsample for the saturation), not the whole stack."""
    from fijiport.data.pair_checks import measure_pair
    from fijiport.data.synthetic import nuclei_3d, simulate_low_snr

    block = nuclei_3d()[:16, :56, :56]
    gt = np.tile(block, (4, 19, 19))[:64, :1024, :1024].astype(np.uint16)
    low = np.tile(simulate_low_snr(block, np.random.default_rng(0)), (4, 19, 19))[:64, :1024, :1024]
    started = time.perf_counter()
    checks = measure_pair(low, gt, "ZYX")
    seconds = time.perf_counter() - started
    assert checks.correlation is not None and checks.correlation > 0.97 and checks.shift == [0.0, 0.0, 0.0]
    assert seconds < 5, f"{seconds:.1f} s"
