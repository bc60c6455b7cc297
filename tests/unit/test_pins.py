"""Dependencies: pyproject.toml carries ranges (so fijiport installs beside other bioimage.io tools), the tested exact
versions live in packaging/constraints.txt and lie inside those ranges; the private bioimageio.spec function fijiport
patches fails with a clear message if a release renames it."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "packaging" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-").replace(".", "-")] = version.strip()
    return pins


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_pyproject_holds_ranges_and_constraints_the_exact_versions_inside_them():
    pins = _constraints()
    for req in _requirements():
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{req}: an exact pin belongs in packaging/constraints.txt"
        if _key(req.name) in pins:
            assert req.specifier.contains(pins[_key(req.name)], prereleases=True), (
                f"constraints.txt pins {req.name}=={pins[_key(req.name)]}, outside {req}"
            )
    direct = {_key(r.name) for r in _requirements()}
    assert {"tensorflow", "csbdeep", "stardist", "bioimageio-core", "bioimageio-spec", "tf2onnx", "pydantic"} <= direct & set(pins)


def test_the_github_user_patch_fails_loudly_if_bioimageio_spec_renames_it(monkeypatch):
    from bioimageio.spec._internal import field_validation

    from fijiport.errors import DependencyError
    from fijiport.package.read import offline_tolerant_github_check

    with offline_tolerant_github_check():  # the installed bioimageio.spec has it
        pass
    monkeypatch.delattr(field_validation, "validate_github_user")
    expected = r"bioimageio.spec [\d.]+ no longer has validate_github_user .* packaging/constraints.txt"
    with pytest.raises(DependencyError, match=expected), offline_tolerant_github_check():
        pass
