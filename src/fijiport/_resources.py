"""Files from ``packaging/`` (model-card templates, environment files) wherever fijiport runs from.

A wheel installs ``packaging/`` as the data package ``fijiport._packaging``; an editable install
or a source checkout reads the folder itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def packaging_text(name: str) -> str:
    """The text of ``packaging/<name>``."""
    try:
        return resources.files("fijiport._packaging").joinpath(name).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        source_tree = Path(__file__).resolve().parents[2] / "packaging" / name
        return source_tree.read_text()
