"""`fijiport zoo-check` and `fijiport upload --dry-run`: one package that meets every Zoo expectation, and
one broken copy per expectation (each check must fail or warn exactly when its expectation is broken)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.verify.zoo import check_zoo
from helpers import load_json

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def compliant(care2d_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo") / "care_zoo.zip"
    r = invoke(
        "export",
        care2d_model,
        "-o",
        out,
        "--name",
        "CARE nuclei zoo test",
        "--description",
        "CARE denoising of simulated low-light nuclei, for testing the Zoo pre-flight check.",
        "--maintainer",
        "fijiport-tester",
        "--version",
        "1.0.0",
        "--tag",
        "fluorescence-light-microscopy",
        "--tag",
        "nuclei",
        "--tag",
        "2d",
        "--tag",
        "denoising",
    )
    assert r.exit_code == 0, r.output
    return out


def _variant(
    source: Path, target: Path, rdf_edit: Optional[Callable[[dict], None]] = None, files: Optional[dict[str, Optional[bytes]]] = None
) -> Path:
    """A copy of the package with its rdf edited and files replaced (bytes) or dropped (None)."""
    files = files or {}
    with zipfile.ZipFile(source) as src:
        rdf = yaml.safe_load(src.read("rdf.yaml"))
        if rdf_edit:
            rdf_edit(rdf)
        _update_sha256(rdf, {name: data for name, data in files.items() if data is not None})
        with zipfile.ZipFile(target, "w") as dst:
            for info in src.infolist():
                if info.filename == "rdf.yaml" or info.filename in files:
                    continue
                dst.writestr(info, src.read(info))
            for name, data in files.items():
                if data is not None:
                    dst.writestr(name, data)
            dst.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
    return target


def _update_sha256(node, replaced: dict[str, bytes]) -> None:
    """A replaced file keeps a matching sha256 in the rdf, as in a well-formed package (only the Zoo
    expectation under test may be broken, not the package's integrity)."""
    import hashlib

    if isinstance(node, dict):
        if node.get("source") in replaced and "sha256" in node:
            node["sha256"] = hashlib.sha256(replaced[node["source"]]).hexdigest()
        for v in node.values():
            _update_sha256(v, replaced)
    elif isinstance(node, list):
        for v in node:
            _update_sha256(v, replaced)


def _png(width: int, height: int, noise: bool = False) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (height, width, 3), dtype=np.uint8) if noise else np.zeros((height, width, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _statuses(package: Path) -> dict[str, str]:
    return {c.key: c.status for c in check_zoo(package, run_test=False).checks}


def test_compliant_package_passes_strict_with_the_official_test(compliant, tmp_path):
    r = invoke("zoo-check", compliant, "--strict", "--json", tmp_path / "zoo.json")
    assert r.exit_code == 0, r.output
    checks = {c["key"]: c["status"] for c in load_json(tmp_path / "zoo.json")["checks"]}
    assert set(checks.values()) == {"passed"} and {
        "test",
        "readme",
        "covers",
        "maintainers",
        "license",
        "cite",
        "tags",
        "tensors",
        "training_data",
        "version",
        "id",
    } == set(checks)


def _readme_without_validation(package: Path) -> bytes:
    text = zipfile.ZipFile(package).read("README.md").decode()
    return text.replace("## Validation", "## Checks").encode()


def _readme_without_training_data(package: Path) -> bytes:
    text = zipfile.ZipFile(package).read("README.md").decode()
    return text.replace("## Training data", "## Data notes").encode()


def _drop_github_users(rdf: dict) -> None:
    for group in ("maintainers", "authors"):
        for p in rdf.get(group) or []:
            p.pop("github_user", None)
    rdf["maintainers"] = [p for p in rdf.get("maintainers") or [] if p.get("name")]


def _cite_url_only(rdf: dict) -> None:
    rdf["cite"][0].pop("doi")
    rdf["cite"][0]["url"] = "https://example.org/paper"


def _drop_sample_tensor(rdf: dict) -> None:
    rdf["inputs"][0].pop("sample_tensor")


# key -> (how to break it, status expected)
BROKEN = {
    "readme": (lambda p: dict(files={"README.md": _readme_without_validation(p)}), "failed"),
    "covers/none": (lambda p: dict(rdf_edit=lambda r: r.pop("covers")), "failed"),
    "covers/large": (lambda p: dict(files={"cover.png": _png(1000, 500, noise=True)}), "warning"),
    "covers/aspect": (lambda p: dict(files={"cover.png": _png(300, 100)}), "warning"),
    "maintainers": (lambda p: dict(rdf_edit=_drop_github_users), "failed"),
    "license": (lambda p: dict(rdf_edit=lambda r: r.update(license="GPL-2.0")), "warning"),  # a deprecated SPDX id
    "cite": (lambda p: dict(rdf_edit=_cite_url_only), "warning"),
    "tags/none": (lambda p: dict(rdf_edit=lambda r: r.update(tags=["my-lab"])), "failed"),
    "tags/some": (lambda p: dict(rdf_edit=lambda r: r.update(tags=["2d"])), "warning"),
    "tensors": (lambda p: dict(rdf_edit=_drop_sample_tensor), "warning"),
    "training_data": (lambda p: dict(files={"README.md": _readme_without_training_data(p)}), "warning"),
    "version": (lambda p: dict(rdf_edit=lambda r: r.pop("version")), "warning"),
    "id": (lambda p: dict(rdf_edit=lambda r: r.update(id="affable-shark")), "warning"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_expectation_is_reported_when_broken(case, compliant, tmp_path):
    key = case.split("/")[0]
    make, expected = BROKEN[case]
    broken = _variant(compliant, tmp_path / "broken.zip", **make(compliant))
    statuses = _statuses(broken)
    assert statuses[key] == expected, statuses
    assert all(s == "passed" for k, s in statuses.items() if k not in (key, "test")), statuses  # only this one changes
    r = invoke("zoo-check", broken, "--no-test", "--strict")
    assert r.exit_code == 1


def test_failing_official_test_is_reported(compliant, tmp_path):
    with zipfile.ZipFile(compliant) as z:
        wrong = np.load(io.BytesIO(z.read("test_output.npy"))) + 1.0  # outputs no weights reproduce
    buf = io.BytesIO()
    np.save(buf, wrong)
    broken = _variant(compliant, tmp_path / "wrong_output.zip", files={"test_output.npy": buf.getvalue()})
    report = check_zoo(broken, run_test=True)
    test = next(c for c in report.checks if c.key == "test")
    assert test.status == "failed" and "fijiport validate" in test.fix


def test_upload_dry_run_lists_what_would_be_sent(compliant, monkeypatch):
    monkeypatch.delenv("BIOIMAGEIO_HYPHA_UPLOAD_TOKEN", raising=False)
    r = invoke("upload", compliant, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "nothing was sent" in r.output and "hypha" in r.output
    for name in zipfile.ZipFile(compliant).namelist():
        assert name in r.output


def test_upload_without_token_stops_before_sending(compliant, monkeypatch):
    monkeypatch.delenv("BIOIMAGEIO_HYPHA_UPLOAD_TOKEN", raising=False)
    r = invoke("upload", compliant)
    assert r.exit_code == 1
    assert "BIOIMAGEIO_HYPHA_UPLOAD_TOKEN" in r.output and "nothing was sent" in r.output and "web uploader" in r.output


def test_upload_refuses_a_package_that_is_not_ready(compliant, tmp_path, monkeypatch):
    monkeypatch.setenv("BIOIMAGEIO_HYPHA_UPLOAD_TOKEN", "not-a-real-token")
    broken = _variant(compliant, tmp_path / "no_version.zip", rdf_edit=lambda r: r.pop("version"))
    r = invoke("upload", broken)
    assert r.exit_code == 1 and "not ready for the Zoo (version)" in r.output


def test_update_keeps_the_earlier_package_and_records_the_version_history(compliant, care2d_model, tmp_path):
    from helpers import read_rdf

    v11 = tmp_path / "v1.1.zip"
    r = invoke(
        "export", care2d_model, "-o", v11, "--update", compliant, "--version", "1.1.0", "--changes", "trained longer", "--tag", "fiji"
    )
    assert r.exit_code == 0, r.output
    old, new = read_rdf(compliant), read_rdf(v11)
    assert new["version"] == "1.1.0" and new["name"] == old["name"] and new["description"] == old["description"]
    assert new["maintainers"] == old["maintainers"] and new["cite"] == old["cite"]  # no duplicated CARE paper
    assert set(old["tags"]) | {"fiji"} == set(new["tags"])
    card = zipfile.ZipFile(v11).read("README.md").decode()
    assert "## Version history" in card and "- 1.1.0: trained longer (follows version 1.0.0)" in card

    v12 = tmp_path / "v1.2.zip"
    r = invoke("export", care2d_model, "-o", v12, "--update", v11, "--version", "1.2.0", "--changes", "new data")
    assert r.exit_code == 0, r.output
    card = zipfile.ZipFile(v12).read("README.md").decode()
    assert card.index("- 1.2.0: new data") < card.index("- 1.1.0: trained longer")  # newest first, history kept
    assert _statuses(v12)["version"] == "passed"


def test_update_refuses_a_version_that_is_not_newer(compliant, care2d_model, tmp_path):
    r = invoke("export", care2d_model, "-o", tmp_path / "same.zip", "--update", compliant, "--version", "1.0.0")
    assert r.exit_code == 1 and "not newer than the earlier package's 1.0.0" in r.output
    r = invoke("export", care2d_model, "-o", tmp_path / "none.zip", "--update", compliant)
    assert r.exit_code == 1 and "--version" in r.output
    assert not list(tmp_path.iterdir())


def test_parent_records_the_zoo_id(care2d_model, tmp_path):
    from helpers import read_rdf

    out = tmp_path / "child.zip"
    r = invoke("export", care2d_model, "-o", out, "--parent", "affable-shark", "--version", "2.0.0", "--changes", "retrained")
    assert r.exit_code == 0, r.output
    assert read_rdf(out)["id"] == "affable-shark"
    assert "2.0.0: retrained (follows Zoo id affable-shark)" in zipfile.ZipFile(out).read("README.md").decode()
    assert _statuses(out)["id"] == "warning"  # new versions of published models go through the web interface
