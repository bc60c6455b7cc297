"""The notebooks in notebooks/: committed without outputs, and every cell runs (tiny settings, a kernel of this
Python environment, as papermill would run them: the values below are injected after the cell tagged ``parameters``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TINY = {
    "care.ipynb": dict(PATCH_SIZE=[32, 32], PATCHES_PER_IMAGE=4, EPOCHS=2, STEPS_PER_EPOCH=3, BATCH_SIZE=4, UNET_FIRST_FILTERS=8),
    "stardist.ipynb": dict(EPOCHS=5, STEPS_PER_EPOCH=10),  # fewer steps leave non-maximum suppression unstable: export refuses
    "n2v.ipynb": dict(PATCH_SIZE=[32, 32], EPOCHS=2, STEPS_PER_EPOCH=3, BATCH_SIZE=8, UNET_FIRST_FILTERS=8),
}


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_is_committed_without_outputs(name):
    """Outputs hold images, paths and timings of whoever ran it last: they bloat diffs and go stale. Strip them with
    `make strip-notebooks` (python notebooks/strip_outputs.py) before committing."""
    nb = json.loads((NOTEBOOKS / name).read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{name}: cells {dirty} hold outputs or execution counts; run `make strip-notebooks`"
    assert "widgets" not in nb["metadata"], f"{name} holds widget state; run `make strip-notebooks`"


def test_a_notebook_with_outputs_is_refused(tmp_path):
    """The check above, on a notebook that was run (the invalid case beside the valid one)."""
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        from strip_outputs import has_outputs, strip
    finally:
        sys.path.remove(str(NOTEBOOKS))
    nb = json.loads((NOTEBOOKS / "care.ipynb").read_text())
    assert not has_outputs(nb)
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    code["execution_count"] = 3
    assert has_outputs(nb)
    assert not has_outputs(strip(nb)) and code["outputs"] == [] and code["execution_count"] is None


@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_structure(name):
    nb = json.loads((NOTEBOOKS / name).read_text())
    codes = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "google.colab" in "".join(codes[0]["source"]), "the first code cell installs fijiport on Colab"
    params = [c for c in codes if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "one cell tagged `parameters` (papermill's convention)"
    for line in "".join(params[0]["source"]).splitlines():
        if "=" in line and not line.startswith("#"):
            assert "  # " in line, f"{name}: parameter without a line of advice: {line}"
    assert set(TINY[name]) <= {line.split("=")[0].strip() for line in "".join(params[0]["source"]).splitlines() if "=" in line}


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernel spec for this very interpreter (the project's venv), found through JUPYTER_PATH."""
    from fijiport.runtimes import default_cache_dir, runtime_status

    missing = [s.name for s in runtime_status() if not s.installed]
    if missing:
        pytest.fail(f"runtimes {missing} are not installed in {default_cache_dir()}: run `make runtimes`")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "fijiport-test"
    spec.mkdir(parents=True)
    import fijiport

    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    # the fijiport under test, whatever the kernel's working directory (a relative PYTHONPATH would not follow it)
    path = os.pathsep.join([str(Path(fijiport.__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {"PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "fijiport test", "language": "python", "env": env}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root)
    yield "fijiport-test"
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def run_notebook(path: Path, params: dict, cwd: Path, kernel_name: str):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, injected)
    NotebookClient(nb, timeout=900, kernel_name=kernel_name, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs_of(nb) -> tuple[str, set[str]]:
    text, kinds = [], set()
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o["output_type"] == "stream":
                text.append(o["text"])
            for mime, value in o.get("data", {}).items():
                kinds.add(mime)
                if mime in ("text/plain", "text/markdown"):
                    text.append(value)
    return "\n".join(text), kinds


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_runs(name, kernel_env, tmp_path):
    nb = run_notebook(NOTEBOOKS / name, {"WORK_DIR": "work", **TINY[name]}, tmp_path, kernel_env)
    text, kinds = outputs_of(nb)
    assert "image/png" in kinds and "text/markdown" in kinds, "figures and tables are shown inline"
    assert "validation: PASSED" in text
    assert "| CSBDeep-Fiji |" in text or "| StarDist-Fiji |" in text, "the runtime matrix is shown as a table"
    plots = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") in ("display_data", "update_display_data")]
    assert any("image/png" in o.get("data", {}) for o in plots)
    zips = sorted(p.name for p in (tmp_path / "work").glob("*.zip"))
    assert len(zips) >= 2, zips  # the package and the Fiji zip
