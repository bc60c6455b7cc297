"""``fijiport runtimes install``: fetch the runtimes through pip and npm, unpack, verify, record."""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ..errors import DependencyError
from ..files import sha256_file
from .registry import BY_NAME, MANIFEST, RUNTIMES, Runtime, RuntimeStatus, default_cache_dir, node_executable, runtime_dir

log = logging.getLogger(__name__)

SHIM_SOURCE = "int _Py_CheckRecursionLimit = 1000;\n"


def install_runtimes(
    cache_dir: Optional[Path] = None,
    names: Optional[list[str]] = None,
    *,
    force: bool = False,
    progress: Optional[Callable[[str], None]] = None,
) -> list[RuntimeStatus]:
    """Install (or keep) each runtime; never raises for one runtime's failure, reports it instead.

    Parameters
    ----------
    cache_dir
        Where to install (default ``~/.cache/fijiport/runtimes`` or ``$FIJIPORT_RUNTIMES_DIR``).
    names
        Only these runtimes (default all: TensorFlow 1.13.1, 1.15.0, 2.10.1 and onnxruntime 1.13.1).
    force
        Install again even where a verified copy exists.
    progress
        Called with a short description of each step.

    Returns
    -------
    list[RuntimeStatus]
        Each runtime: installed or not, where, and why not.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    step = progress or (lambda _m: None)
    wanted = RUNTIMES if not names else tuple(_lookup(n) for n in names)
    cache_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for rt in wanted:
        folder = runtime_dir(cache_dir, rt)
        if (folder / MANIFEST).is_file() and not force:
            results.append(RuntimeStatus(rt, True, folder, "already installed"))
            continue
        step(f"installing {rt.name}")
        try:
            if rt.kind == "tensorflow":
                detail = _install_tensorflow(rt, cache_dir)
            else:
                detail = _install_onnxruntime(rt, cache_dir)
            results.append(RuntimeStatus(rt, True, folder, detail))
        except DependencyError as e:
            results.append(RuntimeStatus(rt, False, None, str(e)))
    return results


def _lookup(name: str) -> Runtime:
    if name in BY_NAME:
        return BY_NAME[name]
    matches = [r for r in RUNTIMES if r.version == name or r.name.endswith(name)]
    if len(matches) == 1:
        return matches[0]
    raise DependencyError(f"unknown runtime {name!r}; choose from {', '.join(BY_NAME)}")


def _replace_dir(staging: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def _install_tensorflow(rt: Runtime, cache_dir: Path) -> str:
    with tempfile.TemporaryDirectory(prefix=f".{rt.name}-", dir=cache_dir) as tmp_str:
        tmp = Path(tmp_str)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--python-version",
            rt.python_version,
            "--platform",
            rt.platform,
            "-d",
            str(tmp / "wheel"),
            rt.package,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list((tmp / "wheel").glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            last = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()][-1:] or ["no output"]
            raise DependencyError(
                f"could not download {rt.package} (Python {rt.python_version}, {rt.platform}) with pip: {last[0]}. "
                "It needs access to the Python package index; on an offline machine copy the runtimes folder "
                f"({cache_dir}) from a machine that has it"
            )
        wheel = wheels[0]
        staging = tmp / "staging"
        lib_dir = staging / "lib"
        with zipfile.ZipFile(wheel) as zf:
            members = [
                m
                for m in zf.namelist()
                if fnmatch.fnmatch(m, "*_pywrap_tensorflow_internal.so") or fnmatch.fnmatch(m, "*libtensorflow_framework.so*")
            ]
            for m in members:
                zf.extract(m, lib_dir)
        libraries = [p for p in lib_dir.rglob("_pywrap_tensorflow_internal.so")]
        if len(libraries) != 1:
            raise DependencyError(f"{wheel.name} does not hold one _pywrap_tensorflow_internal.so ({len(libraries)} found)")
        for p in lib_dir.rglob("*.so*"):
            p.chmod(0o755)
        preload = []
        if rt.needs_shim:
            preload.append(str(_build_shim(staging)))
        final = runtime_dir(cache_dir, rt)
        library = final / libraries[0].relative_to(staging)
        preload_final = [str(final / Path(p).relative_to(staging)) for p in preload]
        manifest = {
            "name": rt.name,
            "kind": rt.kind,
            "version": rt.version,
            "package": rt.package,
            "wheel": wheel.name,
            "wheel_sha256": sha256_file(wheel),
            "library": str(library),
            "preload": preload_final,
        }
        _replace_dir(staging, final)
        reported = _verify_tensorflow(manifest)
        if reported != rt.version:
            shutil.rmtree(final, ignore_errors=True)
            raise DependencyError(f"{rt.name}: the library reports version {reported!r}")
        manifest["reported_version"] = reported
        (final / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return f"verified: TF_Version() = {reported}"


def _build_shim(staging: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise DependencyError("TensorFlow 1.x needs a small shim compiled with a C compiler; install one (e.g. `apt-get install gcc`)")
    src = staging / "pyshim.c"
    out = staging / "libpyshim.so"
    src.write_text(SHIM_SOURCE)
    proc = subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise DependencyError(f"compiling the TensorFlow 1.x shim failed: {proc.stderr.strip()[:300]}")
    return out


def _verify_tensorflow(manifest: dict) -> str:
    with tempfile.TemporaryDirectory(prefix="fijiport-verify-") as tmp:
        req = Path(tmp) / "req.json"
        req.write_text(json.dumps({"library": manifest["library"], "preload": manifest["preload"]}))
        proc = subprocess.run(
            [sys.executable, "-m", "fijiport.runtimes._tf_c_runner", str(req)], capture_output=True, text=True, timeout=300
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise DependencyError(f"{manifest['name']} does not load: {(proc.stderr or '').strip()[-300:]}")
    answer = json.loads(lines[-1])
    if not answer.get("ok"):
        raise DependencyError(f"{manifest['name']} does not load: {answer.get('error')}")
    return answer["tf_version"]


def _install_onnxruntime(rt: Runtime, cache_dir: Path) -> str:
    node, npm = node_executable(), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        raise DependencyError(
            f"{rt.name} runs in Node.js, but {missing} is not on PATH; install Node.js ≥ 16 with npm "
            "(e.g. `apt-get install nodejs npm`) and run `fijiport runtimes install` again"
        )
    with tempfile.TemporaryDirectory(prefix=f".{rt.name}-", dir=cache_dir) as tmp_str:
        staging = Path(tmp_str) / "staging"
        staging.mkdir()
        proc = subprocess.run(
            [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--no-save", rt.package], capture_output=True, text=True
        )
        if proc.returncode != 0:
            last = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()][-1:] or ["no output"]
            raise DependencyError(f"could not install {rt.package} with npm: {last[0]}. It needs access to the npm registry")
        final = runtime_dir(cache_dir, rt)
        manifest = {
            "name": rt.name,
            "kind": rt.kind,
            "version": rt.version,
            "package": rt.package,
            "module_dir": str(final / "node_modules"),
        }
        _replace_dir(staging, final)
        check = (
            "const o = require(process.argv[1] + '/onnxruntime-node');"
            "const v = require(process.argv[1] + '/onnxruntime-node/package.json').version;"
            "if (typeof o.InferenceSession.create !== 'function') throw new Error('no InferenceSession');"
            "console.log(v);"
        )
        proc = subprocess.run([node, "-e", check, manifest["module_dir"]], capture_output=True, text=True, timeout=120)
        reported = proc.stdout.strip()
        if proc.returncode != 0 or reported != rt.version:
            shutil.rmtree(final, ignore_errors=True)
            raise DependencyError(f"{rt.name} does not load in Node.js: {(proc.stderr or reported).strip()[-300:]}")
        manifest["reported_version"] = reported
        (final / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return f"verified: onnxruntime-node {reported} loads in Node.js {subprocess.run([node, '--version'], capture_output=True, text=True).stdout.strip()}"
