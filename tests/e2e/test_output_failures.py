"""An output location that cannot take the output: read-only, or a disk that fills up while writing
(docs/bad_inputs.md, "Output"). Every command exits 1 with one line naming the path and the fix, leaves no
partial file, and leaves its inputs byte-identical.

As root (CI) the locations are real tmpfs mounts: read-only, or a few hundred KB in size, so writes fail
with the kernel's own EROFS / ENOSPC. Without root, permissions (chmod) and a file-size limit
(RLIMIT_FSIZE, the kernel's EFBIG) stand in for them.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tifffile

from helpers import tree_hashes

pytestmark = pytest.mark.slow  # trains and exports a real model
FIJIPORT = str(Path(sys.executable).parent / "fijiport")
SMALL_KB = 256
ROOT = os.geteuid() == 0


@contextmanager
def _location(path: Path, kind: str):
    """A folder that is read-only (``kind="readonly"``) or only ``SMALL_KB`` large (``kind="full"``)."""
    path.mkdir()
    if ROOT:
        opts = "ro" if kind == "readonly" else f"size={SMALL_KB}k"
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
    else:
        if kind == "readonly":
            path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)


def _limit_file_size():  # the non-root stand-in for a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL_KB * 1024, SMALL_KB * 1024))


def _run(args: list[str], kind: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="250")
    preexec = _limit_file_size if (kind == "full" and not ROOT) else None
    return subprocess.run([FIJIPORT, *args], capture_output=True, text=True, env=env, preexec_fn=preexec, timeout=600)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, care2d_model, care2d_zip, care2d_data) -> dict[str, Path]:
    """Inputs for each command; a few MB of images so a full disk stops the writing part way."""
    root = tmp_path_factory.mktemp("outfail_inputs")
    rng = np.random.default_rng(0)
    for sub in ("low", "GT"):
        (root / sub).mkdir()
    for i in range(4):
        gt = rng.random((256, 256)).astype(np.float32)
        tifffile.imwrite(root / "low" / f"im{i}.tif", gt + rng.normal(0, 0.1, gt.shape).astype(np.float32))
        tifffile.imwrite(root / "GT" / f"im{i}.tif", gt)
    return {"root": root, "model": care2d_model, "zip": care2d_zip, "data": care2d_data}


COMMANDS = {
    "prepare care": lambda i, out: [
        "prepare",
        "care",
        "--low",
        str(i["root"] / "low"),
        "--gt",
        str(i["root"] / "GT"),
        "-o",
        str(out / "data"),
    ],
    "export": lambda i, out: ["export", str(i["model"]), "-o", str(out / "model.zip")],
    "convert": lambda i, out: ["convert", str(i["zip"]), "-o", str(out / "converted.zip")],
    "train care": lambda i, out: [
        "train",
        "care",
        str(i["data"]),
        "-o",
        str(out / "model"),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--patches-per-image",
        "4",
        "--no-tensorboard",
    ],
    "predict": lambda i, out: ["predict", str(i["model"]), str(i["root"] / "low"), "-o", str(out / "restored")],
}
MESSAGES = {"readonly": ("read-only file system", "permission denied"), "full": ("no space left", "largest file this system allows")}


@pytest.mark.parametrize("kind", ["readonly", "full"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_output_is_one_line_and_leaves_nothing(inputs, tmp_path, command, kind):
    watched = [inputs["root"], inputs["model"], inputs["zip"].parent, inputs["data"]]
    before = [tree_hashes(p) for p in watched]
    with _location(tmp_path / "out", kind) as out:
        result = _run(COMMANDS[command](inputs, out), kind)
        leftovers = sorted(p.name for p in out.rglob("*") if p.is_file())
        if kind == "full":
            # whatever a full disk stopped may leave must be whole outputs, never temporary or partial files
            assert not [n for n in leftovers if ".partial" in n or n.startswith(".")], leftovers
        else:
            assert leftovers == []
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert error and error[-1].startswith("error:"), result.stderr
    assert any(m in error[-1] for m in MESSAGES[kind]), error[-1]
    assert str(out) in error[-1] or "-o" in error[-1]
    assert [tree_hashes(p) for p in watched] == before
