"""Crafted SavedModels from outside: one whose serving signature writes a canary file, one that reads a secret. Run
unchecked on the consumer runtimes they really do both (the control); `fijiport runtimes check`, `convert` and
`validate --runtimes` refuse them naming the op, and nothing is written or read (docs/bad_inputs.md, "Untrusted
packages")."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crafted import bioimageio_zip_with_bundle, read_file_graph, saved_model_dir, saved_model_zip, write_file_graph
from fijiport.cli import app

runner = CliRunner()
RUNTIMES = ("tensorflow-1.13.1", "tensorflow-1.15.0", "tensorflow-2.10.1")


@contextlib.contextmanager
def watched_fifo(path: Path):
    """A named pipe at ``path`` and an event set as soon as anything opens it for reading (a writer can only open a
    pipe without blocking while a reader has it open): proof of a read attempt, whatever the file system's atime."""
    os.mkfifo(path)
    opened, stop = threading.Event(), threading.Event()

    def watch():
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
                time.sleep(0.005)
                continue
            opened.set()
            with contextlib.suppress(OSError):  # the reader may be gone already
                os.write(fd, b"the secret")
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join()


def test_the_crafted_graphs_write_and_read_when_run_unchecked(runtimes_dir, tmp_path):
    """The control: the same graphs, run on the runtimes without fijiport's check, write the canary and read the secret."""
    from fijiport.runtimes.registry import BY_NAME
    from fijiport.runtimes.run import run_saved_model

    canary, secret = tmp_path / "canary.txt", tmp_path / "secret.txt"
    secret.write_text("0123456789")
    writer = saved_model_dir(tmp_path / "writer", write_file_graph(canary))
    reader = saved_model_dir(tmp_path / "reader", read_file_graph(secret))
    x = np.zeros((1, 8, 8, 1), np.float32)
    for rt in RUNTIMES:
        assert run_saved_model(BY_NAME[rt], runtimes_dir, writer, x, input_op="input", output_op="output").ok
        assert canary.read_text() == "written by the model's graph", rt
        canary.unlink()
        out = run_saved_model(BY_NAME[rt], runtimes_dir, reader, x, input_op="input", output_op="output")
        assert out.ok and out.output is not None and out.output.max() == 10.0, rt  # the secret's length came out
    with watched_fifo(tmp_path / "fifo") as read_attempt:  # and the watch below sees a read of a named pipe
        fifo_reader = saved_model_dir(tmp_path / "fifo_reader", read_file_graph(tmp_path / "fifo"))
        run_saved_model(BY_NAME[RUNTIMES[-1]], runtimes_dir, fifo_reader, x, input_op="input", output_op="output", timeout=60)
        assert read_attempt.is_set()


def _crafted(kind: str, tmp_path: Path, canary: Path, secret: Path) -> tuple[Path, str]:
    build, op = (write_file_graph(canary), "WriteFile") if kind == "write" else (read_file_graph(secret), "ReadFile")
    bare = saved_model_zip(tmp_path / "TF_SavedModel.zip", build)
    return bare, op


@pytest.mark.parametrize("kind", ["write", "read"])
@pytest.mark.parametrize("command", ["runtimes check", "runtimes check (folder)", "convert", "validate --runtimes"])
def test_commands_refuse_crafted_graphs_naming_the_op_and_touch_nothing(command, kind, runtimes_dir, tmp_path):
    canary, secret = tmp_path / "canary.txt", tmp_path / "secret"
    with watched_fifo(secret) as read_attempt:
        bare, op = _crafted(kind, tmp_path, canary, secret)
        target = bare
        if command == "runtimes check (folder)":
            target = tmp_path / "unpacked"
            with zipfile.ZipFile(bare) as zf:
                zf.extractall(target)
        elif command == "validate --runtimes":
            target = bioimageio_zip_with_bundle(tmp_path / "package.zip", bare)
        args = {
            "runtimes check": ["runtimes", "check", str(target)],
            "runtimes check (folder)": ["runtimes", "check", str(target)],
            "convert": ["convert", str(target), "-o", str(tmp_path / "converted.zip")],
            "validate --runtimes": ["validate", str(target), "--runtimes"],
        }[command]
        r = runner.invoke(app, args)
        time.sleep(0.05)
        assert not read_attempt.is_set(), "the secret was opened"
    text = " ".join(r.output.split())
    assert r.exit_code == 1, text
    assert f"uses the op {op}" in text and "node '" in text and "Traceback" not in text, text
    assert not canary.exists(), "the canary was written"
    assert not (tmp_path / "converted.zip").exists()
