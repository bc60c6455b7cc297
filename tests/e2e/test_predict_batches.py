"""`fijiport predict` on real batches as a new user runs them (issue 21, items 3, 9, 10, 11): the intensity scale of
restored images is stated and choosable, huge images and useless tilings are refused before any work, and an
interrupted batch goes on with --skip-existing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.predict import predict_images

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_intensity_makes_the_folder_and_the_package_give_the_same_numbers(care2d_model, care2d_zip, care2d_raw, tmp_path):
    image = sorted((care2d_raw / "low").iterdir())[0]
    runs = {
        "folder": (care2d_model,), "folder_normalised": (care2d_model, "--intensity", "normalised"),
        "package": (care2d_zip,), "package_input": (care2d_zip, "--intensity", "input"),
    }  # fmt: skip
    for out, args in runs.items():
        r = invoke("predict", args[0], image, "-o", tmp_path / out, *args[1:])
        assert r.exit_code == 0, r.output
        said = "the input's intensity scale" if out in ("folder", "package_input") else "normalised output (CARE: 0-1"
        assert said in " ".join(r.output.split()), r.output
    y = {out: tifffile.imread(tmp_path / out / image.name).astype(np.float64) for out in runs}
    for a, b in (("folder", "package_input"), ("folder_normalised", "package")):
        scale = y[a].max() - y[a].min()
        assert np.abs(y[a] - y[b]).max() <= 1e-4 * scale, f"{a} vs {b}: max |diff| {np.abs(y[a] - y[b]).max():.3g} on {scale:.3g}"
    assert y["folder"].max() > 10 and y["package"].max() < 10  # input scale (~100s) vs normalised (~0-1)


def test_a_huge_image_is_refused_before_any_pixel_is_read(care2d_model, tmp_path):
    huge = tmp_path / "huge.tif"
    big = tifffile.memmap(huge, shape=(60000, 60000), dtype=np.uint16)  # sparse: takes no disk space
    del big
    started = time.monotonic()
    r = invoke("predict", care2d_model, huge, "-o", tmp_path / "out")
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "GB of memory" in text and "60000×60000" in text and "Crop" in text, text
    assert time.monotonic() - started < 60 and not (tmp_path / "out").exists()


def test_tiles_smaller_than_the_networks_context_are_refused(care2d_model, care2d_zip, tmp_path):
    tifffile.imwrite(tmp_path / "img.tif", np.random.default_rng(0).random((257, 301)).astype(np.float32))
    for model in (care2d_model, care2d_zip):
        r = invoke("predict", model, tmp_path / "img.tif", "-o", tmp_path / "out", "--tiles", "100,100")
        text = " ".join(r.output.split())
        assert r.exit_code == 1 and "mostly halo" in text and "at most" in text, text
        assert not (tmp_path / "out").exists()
    r = invoke("predict", tmp_path / "no_model", tmp_path / "img.tif", "-o", tmp_path / "out", "--tiles", "0,0")
    assert r.exit_code == 2 and "1 or more" in r.output, r.output  # a usage error, before any model is looked at


def test_skip_existing_goes_on_with_an_interrupted_batch(care2d_model, care2d_raw, tmp_path):
    images = care2d_raw / "low"
    names = sorted(p.name for p in images.iterdir())

    def ctrl_c_at_the_third(i: int, n: int, name: str) -> None:
        if i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_images(care2d_model, [images], tmp_path / "out", progress=ctrl_c_at_the_third)
    done = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert done == names[:2]
    stamps = {n: (tmp_path / "out" / n).stat().st_mtime_ns for n in done}
    r = invoke("predict", care2d_model, images, "-o", tmp_path / "out")
    assert r.exit_code == 1 and "--overwrite" in r.output  # without --skip-existing: refused as before
    r = invoke("predict", care2d_model, images, "-o", tmp_path / "out", "--skip-existing")
    assert r.exit_code == 0 and "skipped (exists)" in r.output, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    assert {n: (tmp_path / "out" / n).stat().st_mtime_ns for n in done} == stamps  # the finished ones untouched
    r = invoke("predict", care2d_model, images, "-o", tmp_path / "out", "--skip-existing", "--overwrite")
    assert r.exit_code == 2


def test_ctrl_c_during_predict_says_how_to_go_on(care2d_model, tmp_path):
    (tmp_path / "in").mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        tifffile.imwrite(tmp_path / "in" / f"img{i:02d}.tif", rng.random((512, 512)).astype(np.float32))
    exe = Path(sys.executable).with_name("fijiport")
    proc = subprocess.Popen([str(exe), "predict", str(care2d_model), str(tmp_path / "in"), "-o", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (tmp_path / "out").is_dir() or not any((tmp_path / "out").glob("img*.tif")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    text = " ".join(stderr.split())
    assert proc.returncode == 130 and "--skip-existing" in text, text
    written = list((tmp_path / "out").iterdir())
    assert 0 < len(written) < 40 and not [p for p in written if "partial" in p.name]
