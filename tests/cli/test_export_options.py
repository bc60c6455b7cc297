"""Export options and metadata are checked before the first slow step (issue 21, items 12 and 13): one line each,
no traceback, and nothing is loaded or written. The model folder does not even need to exist for these."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fijiport.cli import app

runner = CliRunner()

BAD = {
    "percentiles-reversed": (["--percentiles", "99.8,2"], 2, "did you mean --percentiles 2,99.8"),
    "percentiles-fractions": (["--percentiles", "0.02,0.998"], 2, "percentiles are in percent"),
    "percentiles-out-of-range": (["--percentiles", "-1,120"], 2, "0 <= LOW < HIGH <= 100"),
    "license-not-spdx": (["--license", "CC BY 4.0"], 1, "use 'CC-BY-4.0'"),
    "name-too-short": (["--name", "A"], 1, "the Model Zoo takes 5 to 128"),
    "doi-malformed": (["--cite", "Some paper|not-a-doi"], 1, "must look like 10."),
    "repo-not-a-url": (["--git-repo", "my repo"], 1, "must be a web address"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_export_option_is_one_line_before_any_work(case, tmp_path):
    args, code, message = BAD[case]
    r = runner.invoke(app, ["export", str(tmp_path / "no_model"), "-o", str(tmp_path / "out.zip"), *args])
    text = " ".join(r.output.split())
    assert r.exit_code == code, r.output
    assert message in text and "Traceback" not in text and "validation error" not in text, text
    assert len(text) < 400, f"one short line expected, got {len(text)} characters: {text}"
    assert not list(tmp_path.iterdir()), "nothing may be written"


@pytest.mark.parametrize("name", ["fiji]model.zip", "modèle_fiji.zip"], ids=["bracket", "non-ascii"])
def test_fiji_zip_paths_imagej_cannot_pass_are_refused_before_any_work(name, tmp_path):
    r = runner.invoke(app, ["export", str(tmp_path / "no_model"), "-o", str(tmp_path / "out.zip"), "--fiji-zip", str(tmp_path / name)])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "the Fiji macro cannot pass" in text and "--fiji-zip" in text, text
    assert not list(tmp_path.iterdir())


def test_valid_options_get_past_the_checks_to_the_model_folder(tmp_path):
    r = runner.invoke(app, ["export", str(tmp_path / "no_model"), "-o", str(tmp_path / "out.zip"), "--percentiles", "2,99.8",
                            "--license", "MIT", "--name", "A fine model", "--cite", "Paper|10.1234/abcd"])  # fmt: skip
    assert r.exit_code == 1 and "does not exist" in r.output, r.output
