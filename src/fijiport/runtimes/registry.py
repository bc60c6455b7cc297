"""Which runtimes exist, where they are cached, and whether they are there."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional


@dataclass(frozen=True)
class Runtime:
    name: str
    kind: Literal["tensorflow", "onnxruntime"]
    version: str
    package: str
    """pip requirement (TensorFlow) or npm package spec (onnxruntime)."""
    python_version: str = ""
    platform: str = ""
    library_glob: str = ""
    """Where the C library sits inside the unpacked wheel."""
    needs_shim: bool = False
    """TF 1.13's and 1.15's libraries reference ``_Py_CheckRecursionLimit``, which Python ≥ 3.9 dropped
    (measured: both fail to load without it)."""
    used_by: tuple[str, ...] = ()


RUNTIMES: tuple[Runtime, ...] = (
    Runtime(
        "tensorflow-1.13.1",
        "tensorflow",
        "1.13.1",
        "tensorflow==1.13.1",
        "3.7",
        "manylinux1_x86_64",
        "*/tensorflow/python/_pywrap_tensorflow_internal.so",
        needs_shim=True,
        used_by=("KNIME",),
    ),
    Runtime(
        "tensorflow-1.15.0",
        "tensorflow",
        "1.15.0",
        "tensorflow-cpu==1.15.0",
        "3.7",
        "manylinux2010_x86_64",
        "tensorflow_core/python/_pywrap_tensorflow_internal.so",
        needs_shim=True,
        used_by=("CSBDeep-Fiji", "StarDist-Fiji", "N2V-Fiji", "deepImageJ (TF1)"),
    ),
    Runtime(
        "tensorflow-2.10.1",
        "tensorflow",
        "2.10.1",
        "tensorflow-cpu==2.10.1",
        "3.10",
        "manylinux2014_x86_64",
        "tensorflow/python/_pywrap_tensorflow_internal.so",
        used_by=("deepImageJ (TF2)",),
    ),
    Runtime("onnxruntime-1.13.1", "onnxruntime", "1.13.1", "onnxruntime-node@1.13.1", used_by=("deepImageJ (ONNX)",)),
)
BY_NAME = {r.name: r for r in RUNTIMES}
MANIFEST = "runtime.json"


def default_cache_dir() -> Path:
    """``$FIJIPORT_RUNTIMES_DIR``, else ``$XDG_CACHE_HOME/fijiport/runtimes`` (``~/.cache/...``)."""
    if os.environ.get("FIJIPORT_RUNTIMES_DIR"):
        return Path(os.environ["FIJIPORT_RUNTIMES_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fijiport" / "runtimes"


@dataclass
class RuntimeStatus:
    runtime: Runtime
    installed: bool
    path: Optional[Path] = None
    detail: str = ""

    @property
    def name(self) -> str:
        return self.runtime.name


def runtime_dir(cache_dir: Path, runtime: Runtime) -> Path:
    return Path(cache_dir) / runtime.name


def runtime_status(cache_dir: Optional[Path] = None) -> list[RuntimeStatus]:
    """What the cache holds, from each runtime's manifest (written only after verification).

    Parameters
    ----------
    cache_dir
        Where the runtimes are installed (default ``~/.cache/fijiport/runtimes`` or ``$FIJIPORT_RUNTIMES_DIR``).

    Returns
    -------
    list[RuntimeStatus]
        Each runtime: installed (verified) or not, its folder, and a note.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    out = []
    for rt in RUNTIMES:
        folder = runtime_dir(cache_dir, rt)
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                info = json.loads(manifest.read_text())
                out.append(RuntimeStatus(rt, True, folder, f"verified: reports version {info.get('reported_version')}"))
                continue
            except json.JSONDecodeError:
                pass
        out.append(RuntimeStatus(rt, False, None, f"not installed in {cache_dir}; run `fijiport runtimes install`"))
    return out


def read_manifest(cache_dir: Path, runtime: Runtime) -> Optional[dict]:
    path = runtime_dir(cache_dir, runtime) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def node_executable() -> Optional[str]:
    return shutil.which("node")
