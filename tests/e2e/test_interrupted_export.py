"""Ctrl-C at any step of `fijiport export` leaves no zip, no partial file and no temporary folder behind, and
the model folder untouched (docs/bad_inputs.md, "Output")."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from fijiport.export import ExportOptions, export_care
from helpers import tree_hashes

pytestmark = pytest.mark.slow


def _steps(care2d_model, out: Path) -> list[str]:
    seen: list[str] = []
    export_care(care2d_model, out / "ok.zip", options=ExportOptions(fiji_zip=out / "ok_fiji.zip"), progress=seen.append)
    return seen


def test_ctrl_c_at_every_export_step_leaves_nothing(care2d_model, tmp_path):
    steps = _steps(care2d_model, tmp_path / "reference")
    assert len(steps) >= 6
    before = tree_hashes(care2d_model)
    temp_before = set(Path(tempfile.gettempdir()).glob("fijiport-export-*"))
    for i, step in enumerate(steps):
        out = tmp_path / f"cut{i}"
        out.mkdir()

        def interrupt(message: str, at=step) -> None:
            if message == at:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            export_care(care2d_model, out / "model.zip", options=ExportOptions(fiji_zip=out / "fiji.zip"), progress=interrupt)
        assert list(out.iterdir()) == [], f"left behind after Ctrl-C at {step!r}: {list(out.iterdir())}"
    assert set(Path(tempfile.gettempdir()).glob("fijiport-export-*")) == temp_before
    assert tree_hashes(care2d_model) == before
