"""docs/bad_inputs.md says, row by row, which test proves each refusal: every test it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def named_tests() -> list[tuple[int, str, str]]:
    """(line, test file, test function) for every test a row of docs/bad_inputs.md names; a name without a file is
    in the file named before it on the row."""
    out = []
    for number, line in enumerate((ROOT / "docs" / "bad_inputs.md").read_text().splitlines(), start=1):
        if "tested:" not in line:
            continue
        current = None
        for ref in re.findall(r"`([^`]+)`", line.split("tested:", 1)[1]):
            path, _, name = ref.rpartition("::")
            if path:
                current = path
            name = re.sub(r"\[.*\]$", "", name)
            if current is None or not name.startswith("test_"):
                continue
            out.append((number, current, name))
    return out


def test_every_test_the_bad_input_table_names_exists():
    refs = named_tests()
    assert len(refs) > 100, "the table's references were read"
    missing = []
    for number, path, name in refs:
        source = ROOT / "tests" / path
        if not source.is_file() or not re.search(rf"^(async )?def {re.escape(name)}\(", source.read_text(), re.M):
            missing.append(f"line {number}: tests/{path}::{name}")
    assert not missing, "docs/bad_inputs.md names tests that do not exist:\n" + "\n".join(missing)
