"""Running a model on one cached runtime, each in its own child process."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np

from .registry import Runtime, node_executable, read_manifest

ORT_DTYPES = {
    "float32": "<f4",
    "float64": "<f8",
    "float16": "<f2",
    "int8": "i1",
    "uint8": "u1",
    "bool": "?",
    "int16": "<i2",
    "uint16": "<u2",
    "int32": "<i4",
    "uint32": "<u4",
    "int64": "<i8",
    "uint64": "<u8",
}
"""onnxruntime-node's tensor types (``Tensor.type``) as the little-endian numpy dtype of the bytes ort_runner.js writes."""


@dataclass
class RunOutcome:
    ok: bool
    reported_version: str = ""
    output: Optional[np.ndarray] = None
    stage: str = ""
    error: str = ""


def _child(cmd: list[str], timeout: float) -> dict:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "run", "error": f"no answer within {timeout:.0f} s"}
    lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        tail = " ".join((proc.stderr or "").strip().splitlines()[-3:])
        return {"ok": False, "stage": "runner", "error": f"runtime process died (exit {proc.returncode}): {tail}"}
    return json.loads(lines[-1])


def run_saved_model(
    runtime: Runtime,
    cache_dir: Path,
    saved_model_dir: Path,
    x: np.ndarray,
    *,
    input_op: str,
    output_op: str,
    input_index: int = 0,
    output_index: int = 0,
    tag: str = "serve",
    timeout: float = 600,
) -> RunOutcome:
    """Load a SavedModel folder into one TensorFlow C runtime and run it on ``x`` (float32)."""
    manifest = read_manifest(cache_dir, runtime)
    if manifest is None:
        return RunOutcome(False, stage="runtime", error=f"{runtime.name} is not installed; run `fijiport runtimes install`")
    with tempfile.TemporaryDirectory(prefix="fijiport-rt-") as tmp_str:
        tmp = Path(tmp_str)
        np.save(tmp / "x.npy", np.ascontiguousarray(x, dtype=np.float32))
        request = {
            "library": manifest["library"],
            "preload": manifest.get("preload", []),
            "saved_model_dir": str(saved_model_dir),
            "tag": tag,
            "input_op": input_op,
            "input_index": input_index,
            "output_op": output_op,
            "output_index": output_index,
            "input_npy": str(tmp / "x.npy"),
            "output_npy": str(tmp / "y.npy"),
        }
        (tmp / "request.json").write_text(json.dumps(request))
        answer = _child([sys.executable, "-m", "fijiport.runtimes._tf_c_runner", str(tmp / "request.json")], timeout)
        if not answer.get("ok"):
            return RunOutcome(False, answer.get("tf_version", ""), None, answer.get("stage", ""), answer.get("error", ""))
        return RunOutcome(True, answer.get("tf_version", ""), np.load(tmp / "y.npy"))


def run_onnx_model(
    runtime: Runtime, cache_dir: Path, model_path: Path, x: np.ndarray, *, input_name: Optional[str] = None, timeout: float = 600
) -> RunOutcome:
    """Run an ONNX model on the cached onnxruntime-node (through Node.js)."""
    manifest = read_manifest(cache_dir, runtime)
    if manifest is None:
        return RunOutcome(False, stage="runtime", error=f"{runtime.name} is not installed; run `fijiport runtimes install`")
    node = node_executable()
    if node is None:
        return RunOutcome(False, stage="runtime", error="Node.js is not on PATH; install it (e.g. `apt-get install nodejs`)")
    x = np.ascontiguousarray(x, dtype="<f4")
    with tempfile.TemporaryDirectory(prefix="fijiport-ort-") as tmp_str:
        tmp = Path(tmp_str)
        x.tofile(tmp / "x.raw")
        request = {
            "module_dir": manifest["module_dir"],
            "model": str(model_path),
            "input_name": input_name,
            "input_raw": str(tmp / "x.raw"),
            "shape": list(x.shape),
            "output_raw": str(tmp / "y.raw"),
        }
        (tmp / "request.json").write_text(json.dumps(request))
        script = resources.files("fijiport.runtimes").joinpath("ort_runner.js")
        with resources.as_file(script) as script_path:
            answer = _child([node, str(script_path), str(tmp / "request.json")], timeout)
        if not answer.get("ok"):
            return RunOutcome(False, answer.get("ort_version", ""), None, answer.get("stage", ""), answer.get("error", ""))
        dtype = ORT_DTYPES.get(str(answer.get("type", "float32")))
        if dtype is None:
            return RunOutcome(
                False, answer.get("ort_version", ""), None, "read output", f"output type {answer.get('type')!r} is not numeric"
            )
        y = np.fromfile(tmp / "y.raw", dtype=dtype).reshape(answer["shape"])
        return RunOutcome(True, answer.get("ort_version", ""), y)
