"""Helpers shared by the tests (not fixtures)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (to prove inputs are untouched)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}

def run_official_bioimageio_test(package: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The official `bioimageio test` CLI, in the Keras 3 world, in a scratch directory."""
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    exe = Path(sys.executable).with_name("bioimageio")
    return subprocess.run([str(exe), "test", str(package)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)

def read_rdf(package: Path) -> dict:
    import zipfile

    import yaml

    with zipfile.ZipFile(package) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))

def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())

