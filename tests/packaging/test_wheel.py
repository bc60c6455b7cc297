"""`python -m build` makes an sdist and, from it, a wheel that installs in a fresh virtual environment with only the
package index, as a user's `pip install fijiport-*.whl` does; the command line then works there.

The dependencies (about 3 GB, mostly TensorFlow) are kept between runs in a wheel cache: the first run downloads them
from the index into it (a few minutes), later runs install from it without the network (about a minute). The cache is
refilled from the index whenever the wheel's requirements change. ``FIJIPORT_WHEEL_CACHE`` moves it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FIJIPORT_WHEEL_CACHE", Path.home() / ".cache" / "fijiport" / "wheels"))


def run(cmd: list, check: bool = True) -> subprocess.CompletedProcess:
    # nothing of this checkout leaks in (with PYTHONPATH=src, pip would take src/fijiport.egg-info for an installed fijiport)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=1500)
    assert r.returncode == 0 or not check, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])  # the sdist first, then the wheel built from the sdist
    return out


def test_sdist_holds_what_the_wheel_is_built_from(dist):
    (sdist,) = dist.glob("fijiport-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "packaging/constraints.txt", "packaging/no-deps.txt"} <= names
    assert "src/fijiport/notebook.py" in names and any(n.startswith("fiji_macros/") and n.endswith(".ijm") for n in names)
    (wheel,) = dist.glob("fijiport-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        inside = set(zf.namelist())
        metadata = zf.read(next(n for n in inside if n.endswith("METADATA"))).decode()
    assert {"fijiport/_packaging/model_card_care.md", "fijiport/_packaging/no-deps.txt", "fijiport/runtimes/ort_runner.js"} <= inside
    assert any(n.startswith("fijiport/_fiji_macros/") and n.endswith(".ijm") for n in inside)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires and not any("n2v" in line for line in requires), "n2v's csbdeep<0.8 pin would make the wheel uninstallable"


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_the_cli_works(dist, tmp_path):
    (wheel,) = dist.glob("fijiport-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", "--no-compile"]  # no .pyc for 3 GB: ~30 s
    CACHE.mkdir(parents=True, exist_ok=True)
    offline = run([*pip, "--no-index", "--find-links", CACHE, wheel], check=False)
    if offline.returncode != 0:  # first run, or new requirements: fill the cache from the index, then install from it
        run([python, "-m", "pip", "--disable-pip-version-check", "download", "--quiet", "--dest", CACHE, wheel])
        (CACHE / wheel.name).unlink(missing_ok=True)  # the cache keeps dependencies, not fijiport itself
        run([*pip, "--no-index", "--find-links", CACHE, wheel])
    fijiport = venv / "bin" / "fijiport"
    assert "prepare" in run([fijiport, "--help"]).stdout
    assert "make_stardist_masks.ijm" in run([fijiport, "macros", "list"]).stdout
    assert "--overwrite" in run([fijiport, "demo", "--help"]).stdout
    installed = run([python, "-c", "import fijiport, pathlib; print(pathlib.Path(fijiport.__file__).parent)"]).stdout.strip()
    assert str(ROOT) not in installed and "site-packages" in installed, "the wheel's fijiport, not this checkout's"
    # n2v comes without its pins (packaging/no-deps.txt); a wheel user without it is told the command
    r = run([python, "-c", "from fijiport.kinds.n2v import import_n2v; import_n2v()"], check=False)
    assert r.returncode != 0 and "DependencyError" in r.stderr and "pip install --no-deps n2v==0.3.3" in r.stderr, r.stderr[-1500:]
