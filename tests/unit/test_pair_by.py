"""Pairing real acquisitions: by what the names mean (--pair-by), from a list (--pairs), across nested folders
(--recursive), with a dry run; ambiguous keys refused naming the files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.config import PrepareCareConfig
from fijiport.data import load_manifest, prepare_care
from fijiport.data.pairing import flat_names, pair_acquisitions
from fijiport.errors import ConfigError, DataError
from fijiport.files import sha256_file
from helpers import LIGHTSHEET_PAIR_BY, lightsheet_tree, related_pair, tree_hashes

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_pair_by_pairs_a_nested_light_sheet_tree_by_channel_stack_and_position(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq")
    before = tree_hashes(tmp_path / "acq")
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, test_fraction=0.25)
    manifest = prepare_care(low, gt, tmp_path / "data", config)
    assert tree_hashes(tmp_path / "acq") == before  # originals untouched
    assert len(manifest.pairs) == len(truth) == 12 and not manifest.skipped_unpaired
    by_source = {rec.low.source: rec for rec in manifest.pairs}
    for low_path, gt_path in truth:
        rec = by_source[str(low_path.resolve())]
        assert rec.gt.source == str(gt_path.resolve())  # the right GT, though its name differs
        assert rec.key is not None and set(rec.key) == {"channel", "stack", "x", "y", "z"}
        assert rec.checks is not None and not rec.checks.warnings  # the pair checks ran on the new pairs
        # one unique, flat name: the path below --low with __ between folders
        assert rec.name == "__".join(low_path.relative_to(low).parts) and "/" not in rec.name
        for sub, frec in (("low", rec.low), ("GT", rec.gt)):
            assert sha256_file(tmp_path / "data" / rec.split / sub / rec.name) == frec.sha256
    assert len({r.name for r in manifest.pairs}) == 12
    on_disk = load_manifest(tmp_path / "data")
    assert on_disk.config.pair_by == LIGHTSHEET_PAIR_BY and on_disk.config.recursive
    assert [r.key for r in on_disk.pairs] == [r.key for r in manifest.pairs]


def test_dry_run_lists_pairs_unpaired_files_and_ambiguous_keys_and_writes_nothing(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", stacks=2, positions=1, channels=2)
    stray = gt / "2026-03-14" / "embryo1" / "notes_ch9.tif"
    tifffile.imwrite(stray, np.zeros((8, 8), np.uint16))
    args = ["prepare", "care", "--low", low, "--gt", gt, "-o", tmp_path / "data", "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY]
    result = invoke(*args, "--dry-run", "--allow-unpaired")
    assert result.exit_code == 0, result.output
    assert "4 pair(s)" in result.output and "channel=1 stack=0001 x=01 y=01 z=01" in result.output
    assert "not matched by --pair-by: 1" in result.output and "notes_ch9.tif" in result.output
    assert "dry run" in result.output and not (tmp_path / "data").exists()

    # one position less in the key: every key now stands for two files... of one position only, so add a second
    shutil.copytree(low / "2026-03-14" / "embryo1" / "pos01", low / "2026-03-14" / "embryo1" / "pos01_again")
    result = invoke(*args, "--dry-run", "--allow-unpaired")
    assert result.exit_code == 1
    assert "ambiguous: key channel=0 stack=0000 x=01 y=01 z=01 matches 2 files in --low" in result.output
    assert "pos01_again/ch0/488-20_560-10_her_CamA_ch0_stack0000" in result.output
    assert "--dry-run lists every pair and key" in result.output and not (tmp_path / "data").exists()


def test_a_key_matching_two_files_is_refused_naming_both(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", stacks=2, positions=2, channels=1)
    no_position = r"_ch(?P<channel>\d+)_stack(?P<stack>\d+)_"  # the two positions now share keys
    before = tree_hashes(tmp_path / "acq")
    with pytest.raises(
        DataError, match=r"key channel=0 stack=0000 matches 2 files in --low: 2026-03-14/embryo1/pos01/.*, 2026-03-14/embryo1/pos02/"
    ) as e:
        prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(pair_by=no_position, recursive=True, allow_unpaired=True))
    assert "add the part of the name that tells them apart to --pair-by as a named group" in str(e.value)
    assert not (tmp_path / "data").exists() and tree_hashes(tmp_path / "acq") == before


@pytest.mark.parametrize(
    "pattern,message",
    [
        (r"_ch(\d+)_stack(\d+)", "has no named group, so it gives no key to pair by"),
        (r"_ch(?P<channel>\d+", "is not a regular expression"),
    ],
    ids=["no-named-group", "not-a-regex"],
)
def test_a_pair_by_without_named_groups_is_a_usage_error(tmp_path, pattern, message):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", stacks=1, positions=1, channels=1)
    with pytest.raises(ConfigError, match=message):
        PrepareCareConfig(pair_by=pattern)
    result = invoke("prepare", "care", "--low", low, "--gt", gt, "-o", tmp_path / "data", "--recursive", "--pair-by", pattern)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "data").exists()


def test_a_pair_by_that_pairs_nothing_shows_the_key_of_each_side(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", stacks=1, positions=1, channels=1)
    with pytest.raises(DataError, match=r"no key occurs on both sides .*gives power=20.*gives power=100"):
        prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(pair_by=r"^[^/]*/[^/]*/[^/]*/[^/]*/488-(?P<power>\d+)_", recursive=True))


def test_nested_folders_without_recursive_say_to_pass_it(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", stacks=1, positions=1, channels=1)
    with pytest.raises(DataError, match="its sub-folders do: pass --recursive"):
        prepare_care(low, gt, tmp_path / "data", PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY))


def test_recursive_pairs_identical_paths_and_keeps_same_named_files_apart(tmp_path):
    rng = np.random.default_rng(0)
    for day in ("day1", "day2"):
        for name in ("a.tif", "b.tif"):
            low, gt = related_pair(rng, (32, 32))
            for sub, img in (("low", low), ("GT", gt)):
                (tmp_path / sub / day).mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(tmp_path / sub / day / name, img)
    manifest = prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig(recursive=True))
    assert sorted(r.name for r in manifest.pairs) == ["day1__a.tif", "day1__b.tif", "day2__a.tif", "day2__b.tif"]
    assert all(r.low.source.endswith(r.name.replace("__", "/")) and r.gt.source.endswith(r.name.replace("__", "/")) for r in manifest.pairs)
    # the top level alone holds no TIFF
    with pytest.raises(DataError, match="pass --recursive"):
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data2")


def test_flat_names_stay_unique_and_stable():
    names = flat_names(["a__b/c.tif", "a/b__c.tif", "x/y.tif", "y.tif", "deep/" * 60 + "f.tif"])
    assert names["x/y.tif"] == "x__y.tif" and names["y.tif"] == "y.tif"
    assert names["a__b/c.tif"] != names["a/b__c.tif"] and names["a__b/c.tif"].startswith("a__b__c-")
    long = names["deep/" * 60 + "f.tif"]
    assert len(long.encode()) <= 200 and long.endswith("__deep__f.tif")
    assert len(set(names.values())) == 5
    assert flat_names(["a__b/c.tif", "a/b__c.tif"]) == {k: names[k] for k in ("a__b/c.tif", "a/b__c.tif")}


def _csv_tree(tmp_path, n=3):
    rng = np.random.default_rng(1)
    (tmp_path / "raw" / "5pct").mkdir(parents=True)
    (tmp_path / "raw" / "full").mkdir(parents=True)
    rows = ["low,gt"]
    for i in range(n):
        low, gt = related_pair(rng, (32, 32))
        tifffile.imwrite(tmp_path / "raw" / "5pct" / f"scan_{i}_A.tif", low)
        tifffile.imwrite(tmp_path / "raw" / "full" / f"ref{i:03d}.tif", gt)
        rows.append(f"5pct/scan_{i}_A.tif,full/ref{i:03d}.tif")
    return tmp_path / "raw"


def test_pairs_file_pairs_as_listed(tmp_path):
    raw = _csv_tree(tmp_path)
    (raw / "pairs.csv").write_text("low,gt\n" + "".join(f"5pct/scan_{i}_A.tif,full/ref{i:03d}.tif\n" for i in range(3)))
    result = invoke("prepare", "care", "--pairs", raw / "pairs.csv", "-o", tmp_path / "data", "--dry-run")
    assert result.exit_code == 0 and "3 pair(s) by pairs file" in result.output, result.output
    manifest = prepare_care(None, None, tmp_path / "data", PrepareCareConfig(pairs_file=str(raw / "pairs.csv")))
    assert sorted(r.name for r in manifest.pairs) == ["scan_0_A.tif", "scan_1_A.tif", "scan_2_A.tif"]
    for r in manifest.pairs:
        i = r.name.split("_")[1]
        assert r.gt.source == str((raw / "full" / f"ref{int(i):03d}.tif").resolve())
    assert manifest.config.pairs_file == str((raw / "pairs.csv").resolve())


@pytest.mark.parametrize(
    "rows,message",
    [
        (
            "5pct/scan_0_A.tif,full/ref000.tif\n5pct/scan_0_A.tif,full/ref001.tif\n",
            "the low column of pairs.csv lists .*scan_0_A.tif in 2 rows \\(row 1, row 2\\)",
        ),
        (
            "5pct/scan_0_A.tif,full/ref000.tif\n5pct/scan_1_A.tif,full/ref000.tif\n",
            "the GT column of pairs.csv lists .*ref000.tif in 2 rows",
        ),
        ("5pct/scan_0_A.tif,full/missing.tif\n", "row 1: the GT file .*missing.tif does not exist"),
        ("5pct/scan_0_A.tif\n", "row 1: expected two paths, low,gt"),
        ("low,gt\n", "lists no pairs"),
    ],
    ids=["low-listed-twice", "gt-listed-twice", "missing-file", "one-column", "empty"],
)
def test_bad_pairs_files_are_refused_naming_the_row(tmp_path, rows, message):
    raw = _csv_tree(tmp_path)
    (raw / "pairs.csv").write_text(rows)
    result = invoke("prepare", "care", "--pairs", raw / "pairs.csv", "-o", tmp_path / "data")
    assert result.exit_code == 1 and "Traceback" not in result.output
    with pytest.raises(DataError, match=message):
        prepare_care(None, None, tmp_path / "data", PrepareCareConfig(pairs_file=str(raw / "pairs.csv")))
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--low", "LOW"], "drop --low and --gt"),
        (["--pair-by", "(?P<a>x)"], "drop --pair-by"),
        (["--recursive"], "drop --recursive"),
        ([], "give --low and --gt folders, or --pairs"),
    ],
    ids=["pairs-and-low", "pairs-and-pair-by", "pairs-and-recursive", "neither"],
)
def test_pairing_options_that_exclude_each_other_are_usage_errors(tmp_path, extra, message):
    raw = _csv_tree(tmp_path)
    (raw / "pairs.csv").write_text("5pct/scan_0_A.tif,full/ref000.tif\n")
    given = [raw / "5pct" if a == "LOW" else a for a in extra]
    pairs = [] if message.startswith("give") else ["--pairs", raw / "pairs.csv"]
    result = invoke("prepare", "care", *pairs, *given, "-o", tmp_path / "data")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "data").exists()


def test_pairing_alone_reads_no_pixels(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq", stacks=1, positions=1, channels=2)
    for path in (p for pair in truth for p in pair):
        path.write_bytes(b"not a TIFF, but pairing reads names only")
    result = pair_acquisitions(low, gt, pair_by=LIGHTSHEET_PAIR_BY, recursive=True)
    assert len(result.pairs) == 2 and result.refusal(False) is None
