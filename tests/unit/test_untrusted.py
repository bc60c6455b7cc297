"""Untrusted packages given to validate / convert / predict / zoo-check: refused cleanly before any library
opens them, naming the file, writing nothing and running nothing (docs/bad_inputs.md, "untrusted zips")."""

from __future__ import annotations

import contextlib
import hashlib
import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.errors import DataError, FijiportError
from fijiport.package.untrusted import inspect_package

runner = CliRunner()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _rdf(**changes) -> dict:
    weights = b"weights bytes"
    rdf = {
        "type": "model",
        "format_version": "0.5.4",
        "name": "tiny test model",
        "inputs": [
            {
                "id": "input",
                "axes": [{"type": "batch"}, {"type": "space", "id": "y", "size": 64}, {"type": "space", "id": "x", "size": 64}],
                "test_tensor": {"source": "test_input.npy"},
            }
        ],
        "outputs": [
            {
                "id": "output",
                "axes": [{"type": "batch"}, {"type": "space", "id": "y", "size": 64}, {"type": "space", "id": "x", "size": 64}],
                "test_tensor": {"source": "test_output.npy"},
            }
        ],
        "weights": {"onnx": {"source": "weights.onnx", "sha256": hashlib.sha256(weights).hexdigest(), "opset_version": 17}},
    }
    rdf.update(changes)
    return rdf


def _package(path: Path, rdf=None, extra: dict | None = None, rdf_text: str | None = None) -> Path:
    files = {
        "test_input.npy": _npy(np.zeros((1, 64, 64), np.float32)),
        "test_output.npy": _npy(np.zeros((1, 64, 64), np.float32)),
        "weights.onnx": b"weights bytes",
    }
    files.update(extra or {})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("rdf.yaml", rdf_text if rdf_text is not None else yaml.safe_dump(rdf or _rdf()))
        for name, data in files.items():
            if isinstance(data, zipfile.ZipInfo):
                z.writestr(data, b"/etc/passwd")
            elif data is not None:
                z.writestr(name, data)
    return path


def _symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip_without_rdf(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("README.md", "hi")
    return path


CANARY = Path("/tmp/fijiport_untrusted_canary")

CASES = {
    "dotdot entry": (lambda p: _package(p, extra={f"../../..{CANARY}": b"x"}), "points outside the package"),
    "absolute entry": (lambda p: _package(p, extra={str(CANARY): b"x"}), "points outside the package"),
    "symlink entry": (lambda p: _package(p, extra={"link": _symlink_entry("link")}), "symbolic link"),
    "zip bomb": (lambda p: _package(p, extra={"big.bin": bytes(64 * 1024**2)}), "zip bomb"),
    "yaml object tag": (
        lambda p: _package(p, rdf_text=f"name: !!python/object/apply:os.system ['touch {CANARY}']\n"),
        "YAML tag that would build Python objects",
    ),
    "pickled npy": (lambda p: _package(p, extra={"test_input.npy": _npy(np.array([{"a": 1}], dtype=object))}), "pickled Python objects"),
    "huge tensor": (
        lambda p: _package(
            p,
            rdf=_rdf(
                inputs=[{"id": "input", "axes": [{"type": "space", "id": "y", "size": 10**7}, {"type": "space", "id": "x", "size": 10**7}]}]
            ),
        ),
        "no machine can run",
    ),
    "sha256 mismatch": (lambda p: _package(p, extra={"weights.onnx": b"altered weights"}), "does not match the sha256"),
    "custom code": (
        lambda p: _package(
            p,
            rdf=_rdf(weights={"pytorch_state_dict": {"source": "weights.pt", "architecture": {"source": "unet.py", "callable": "UNet"}}}),
            extra={"unet.py": b"import os\nos.system('touch /tmp/x')\n", "weights.pt": b"w"},
        ),
        "--trust-code",
    ),
    "not a zip": (lambda p: _write(p, b"<html>404 not found</html>"), "not a readable zip"),
    "rdf not a mapping": (lambda p: _package(p, rdf_text="- just\n- a list\n"), "not a YAML mapping"),
    "invalid yaml": (lambda p: _package(p, rdf_text="name: [unclosed\n"), "not valid YAML"),
    "no rdf": (lambda p: _zip_without_rdf(p), "no rdf.yaml"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_inspect_refuses_crafted_packages(case, tmp_path):
    make, message = CASES[case]
    pkg = make(tmp_path / "model.zip")
    with pytest.raises(DataError, match=message) as e:
        inspect_package(pkg)
    assert str(pkg) in str(e.value)
    assert not CANARY.exists()


@pytest.mark.parametrize("command", ["validate", "convert", "predict", "zoo-check"])
@pytest.mark.parametrize("case", ["dotdot entry", "yaml object tag", "sha256 mismatch", "custom code", "pickled npy"])
def test_commands_refuse_crafted_packages_writing_nothing(command, case, tmp_path):
    make, message = CASES[case]
    pkg = make(tmp_path / "model.zip")
    before = pkg.read_bytes()
    (tmp_path / "img").mkdir()
    args = {
        "validate": [str(pkg)],
        "convert": [str(pkg), "-o", str(tmp_path / "out.zip")],
        "predict": [str(pkg), str(tmp_path / "img"), "-o", str(tmp_path / "out")],
        "zoo-check": [str(pkg), "--no-test"],
    }[command]
    if command == "predict":
        import tifffile

        tifffile.imwrite(tmp_path / "img" / "a.tif", np.zeros((64, 64), np.uint16))
    r = runner.invoke(app, [command, *args])
    assert r.exit_code == 1, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "model.zip"]  # no output, not even a partial one
    assert pkg.read_bytes() == before and not CANARY.exists()


@pytest.mark.parametrize("case", ["dotdot entry", "yaml object tag", "sha256 mismatch", "pickled npy", "symlink entry", "zip bomb"])
def test_runtimes_check_refuses_crafted_packages_writing_nothing(case, tmp_path):
    """`runtimes check` runs no package code (it loads TensorFlow and ONNX weights only), but refuses every other crafted
    package as the other commands do, before anything opens it."""
    make, message = CASES[case]
    pkg = make(tmp_path / "model.zip")
    before = pkg.read_bytes()
    r = runner.invoke(app, ["runtimes", "check", str(pkg), "--cache-dir", str(tmp_path / "no-runtimes")])
    assert r.exit_code == 1, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip"]
    assert pkg.read_bytes() == before and not CANARY.exists()


def test_zip_bomb_by_total_size_is_refused(tmp_path, monkeypatch):
    """Entries that compress normally but unpack, all together, beyond the limit (8 GiB; lowered here to 32 MiB so the
    test writes 40 MiB, not 8 GiB): refused from the zip's directory, before anything is unpacked."""
    from fijiport.package import untrusted

    monkeypatch.setattr(untrusted, "MAX_UNPACKED_BYTES", 32 * 1024**2)
    rng = np.random.default_rng(0)
    pkg = _package(tmp_path / "model.zip", extra={f"part{i}.bin": rng.bytes(8 * 1024**2) for i in range(5)})  # ratio ~1
    with pytest.raises(DataError, match=r"would unpack to 40 MiB \(limit 32 MiB, FIJIPORT_MAX_PACKAGE_BYTES\); refusing a likely zip bomb"):
        inspect_package(pkg)
    monkeypatch.setattr(untrusted, "MAX_UNPACKED_BYTES", 64 * 1024**2)
    assert inspect_package(pkg)["name"] == "tiny test model"


def test_trust_code_lets_inspection_pass(tmp_path):
    pkg = CASES["custom code"][0](tmp_path / "model.zip")
    assert inspect_package(pkg, trust_code=True)["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "UNet"


def test_plain_package_passes(tmp_path):
    assert inspect_package(_package(tmp_path / "ok.zip"))["name"] == "tiny test model"


names = st.sampled_from(["rdf.yaml", "weights.onnx", "test_input.npy", "a/../b", "/abs", "x.py", "dir/rdf.yaml", "ok.bin"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=20))
yaml_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=30
)
rdf_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["model", "dataset", 3]),
        "format_version": st.sampled_from(["0.5.4", "0.4.10", "9"]),
        "name": yaml_values,
        "inputs": yaml_values,
        "outputs": yaml_values,
        "weights": yaml_values,
        "config": yaml_values,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rdf=st.one_of(rdf_like, yaml_values),
    entries=st.lists(st.tuples(names, st.binary(max_size=64)), max_size=5),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_malformed_packages_only_ever_raise_fijiport_errors(rdf, entries, raw, tmp_path_factory):
    """Generated rdf content and zip layouts: the reader either accepts them or raises a FijiportError."""
    from fijiport.package.read import read_model_package

    path = tmp_path_factory.mktemp("h") / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("rdf.yaml", raw if raw is not None else yaml.safe_dump(rdf, allow_unicode=True))
        for name, data in dict(entries).items():  # one entry per name
            if name != "rdf.yaml":
                z.writestr(name, data)
    for read in (inspect_package, read_model_package):
        with contextlib.suppress(FijiportError):
            read(path)


def test_a_package_without_a_stardist_block_is_not_taken_for_stardist():
    """bioimage.io.spec 0.5 models every known config block; an unset one must not count as present."""
    from fijiport.kinds import N2V, kind_of_package
    from fijiport.package.read import config_dict

    class Descr:
        class config:
            @staticmethod
            def model_dump(mode="json"):
                return {"bioimageio": {}, "stardist": None}

    assert config_dict(Descr()) == {"bioimageio": {}}
    assert kind_of_package(config_dict(Descr()), "care nuclei") is None
    assert kind_of_package({}, "denoiser", ["2d", "n2v"]) is N2V
