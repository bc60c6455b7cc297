"""Strip outputs, execution counts and widget state from notebooks before committing them.

    python notebooks/strip_outputs.py            # every notebook in this folder
    python notebooks/strip_outputs.py a.ipynb    # just these

The test suite refuses a notebook committed with outputs (tests/notebooks/test_notebooks.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def has_outputs(nb: dict[str, Any]) -> bool:
    """Whether any code cell holds outputs or an execution count, or the notebook holds widget state."""
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    return "widgets" in nb.get("metadata", {}) or any(c.get("outputs") or c.get("execution_count") is not None for c in cells)


def strip(nb: dict[str, Any]) -> dict[str, Any]:
    """The notebook without outputs, execution counts and widget state (changed in place, and returned)."""
    nb.get("metadata", {}).pop("widgets", None)
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"] = []
            c["execution_count"] = None
            c.get("metadata", {}).pop("execution", None)
    return nb


def main(paths: list[str]) -> None:
    for path in [Path(p) for p in paths] or sorted(Path(__file__).parent.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        if has_outputs(nb):
            path.write_text(json.dumps(strip(nb), sort_keys=True, indent=1, ensure_ascii=False) + "\n")
            print(f"stripped {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
