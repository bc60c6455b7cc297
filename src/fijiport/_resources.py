"""Files from ``packaging/`` (model-card templates, environment files) and ``fiji_macros/`` wherever
fijiport runs from.

A wheel installs those folders as the data packages ``fijiport._packaging`` and
``fijiport._fiji_macros``; an editable install or a source checkout reads the folders themselves.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _text(package: str, folder: str, name: str) -> str:
    try:
        return resources.files(package).joinpath(name).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parents[2] / folder / name).read_text()


def packaging_text(name: str) -> str:
    """The text of ``packaging/<name>``."""
    return _text("fijiport._packaging", "packaging", name)


def macro_text(name: str) -> str:
    """The text of ``fiji_macros/<name>``."""
    return _text("fijiport._fiji_macros", "fiji_macros", name)
