"""The API reference (mkdocs + mkdocstrings, mkdocs.yml): it builds offline with --strict, a broken docstring fails
the build, and every public function on its pages documents its parameters and what it returns (numpydoc)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_api_pages_build_offline_and_strict(tmp_path):
    r = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert r.returncode == 0, r.stderr[-3000:]
    page = (tmp_path / "site" / "api" / "training" / "index.html").read_text()
    assert "train_care" in page and "Parameters" in page and "Returns" in page
    assert ":func:" not in page and ":class:" not in page, "Sphinx roles are rendered as code"


BROKEN = '''
def good(x: int) -> int:
    """See :func:`bad`.

    Parameters
    ----------
    x
        A number.

    Returns
    -------
    int
        The number.
    """
    return x


def bad(x: int) -> int:
    """{doc}"""
    return x
'''


@pytest.mark.parametrize(
    "doc, complaint",
    [
        ("Like :func:`no_such_function`.", "broken reference `no_such_function`"),
        ("Half.\n\n    Parameters\n    ----------\n    y\n        Not a parameter.\n    ", "Parameter 'y' does not appear"),
    ],
    ids=["unresolved reference", "unknown parameter"],
)
def test_a_broken_docstring_fails_the_build(tmp_path, doc, complaint):
    (tmp_path / "src" / "demo_pkg").mkdir(parents=True)
    (tmp_path / "src" / "demo_pkg" / "__init__.py").write_text(BROKEN.format(doc=doc))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# demo\n\n::: demo_pkg\n")
    config = (ROOT / "mkdocs.yml").read_text()
    config = re.sub(r"nav:\n(  - .*\n)+", "", config).replace("docs/griffe_roles.py", str(ROOT / "docs" / "griffe_roles.py"))
    (tmp_path / "mkdocs.yml").write_text(config)
    ok = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    (tmp_path / "src" / "demo_pkg" / "__init__.py").write_text(BROKEN.format(doc="Fine."))
    assert mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site").returncode == 0, "the valid twin builds"
    assert ok.returncode != 0 and complaint in ok.stderr, ok.stderr[-2000:]


def documented_functions():
    """The functions the API pages show: each ``::: target`` that is a function, and a module's public functions."""
    import griffe

    pkg = griffe.load("fijiport", search_paths=[str(ROOT / "src")], resolve_aliases=True, resolve_external=False)
    out = {}
    for page in PAGES:
        for target in re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.M):
            obj = pkg[target.removeprefix("fijiport.")]
            obj = obj.final_target if obj.is_alias else obj
            if obj.is_function:
                out[target] = obj
            elif obj.is_module:
                for name, member in obj.members.items():
                    if not name.startswith("_") and not member.is_alias and member.is_function:
                        out[f"{target}.{name}"] = member
    return out


def test_public_functions_have_parameters_and_returns():
    problems = []
    for path, fn in documented_functions().items():
        if fn.docstring is None:
            problems.append(f"{path}: no docstring")
            continue
        sections = {s.kind.value: s for s in fn.docstring.parse("numpy")}
        wanted = [
            p.name
            for p in fn.parameters
            if p.name not in ("self", "cls") and p.kind.value not in ("variadic positional", "variadic keyword")
        ]
        documented = {p.name for p in sections["parameters"].value} if "parameters" in sections else set()
        if missing := [p for p in wanted if p not in documented]:
            problems.append(f"{path}: parameters not in its Parameters section: {', '.join(missing)}")
        if fn.returns is not None and str(fn.returns) not in ("None",) and "returns" not in sections:
            problems.append(f"{path}: no Returns section")
    assert not problems, "\n".join(problems)
