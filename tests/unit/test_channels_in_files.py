"""Channels recorded in separate files (a light-sheet microscope writes ``_ch0_`` and ``_ch1_`` files per stack),
joined by ``prepare care --pair-by ... --channels 0,1`` into one multi-channel image per side, calibrated, with every
channel's original recorded; files that lack a channel, keys with two files of one channel and options that cannot
join are refused naming the files and the fix."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.calibration import read_pixel_size
from fijiport.cli import app
from fijiport.config import PrepareCareConfig
from fijiport.data import prepare_care
from fijiport.data.pairing import pair_acquisitions
from fijiport.errors import ConfigError, DataError, OutputExistsError
from fijiport.files import sha256_file
from helpers import LIGHTSHEET_PAIR_BY, LIGHTSHEET_TIME_LAPSE, lightsheet_tree, tree_hashes

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_channel_files_pair_by_the_other_groups_in_the_order_given(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq", stacks=2, positions=2, channels=2)
    result = pair_acquisitions(low, gt, pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["1", "0"])
    assert len(result.pairs) == 4 and not result.unpaired and not result.ambiguous
    partner = {lo: g for lo, g in truth}
    for pair in result.pairs:
        assert pair.key is not None and "channel" not in pair.key and set(pair.key) == {"stack", "x", "y", "z"}
        assert [p.parent.name for p in pair.sources] == ["ch1", "ch0"], "the order of --channels"
        assert [partner[s] for s in pair.sources] == list(pair.targets), "each channel's own GT file"
        assert {re.search(r"_stack\d+_.*_\d+x_", p.name).group(0)[:10] for p in pair.sources + pair.targets} == {  # type: ignore[union-attr]
            f"_stack{pair.key['stack']}"
        }, "one stack"
        assert {re.search(r"_(\d+)x_", p.name).group(1) for p in pair.sources + pair.targets} == {pair.key["x"]}, "one position"  # type: ignore[union-attr]
        assert "_ch1+0_stack" in pair.name and "/" not in pair.name
    assert len({p.name for p in result.pairs}) == 4


def test_a_missing_channel_is_refused_naming_its_partner_and_other_channels_are_left_out(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq", stacks=2, positions=1, channels=3)
    gone = next(g for lo, g in truth if "_ch1_stack0001" in g.name)
    gone.unlink()
    result = pair_acquisitions(low, gt, pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"])
    assert len(result.pairs) == 1
    assert len(result.incomplete) == 3 and all("stack0001" in f for f in result.incomplete), "the key's other files"
    assert len(result.other_channels) == 4 and all("_ch2_" in f for f in result.other_channels)
    refusal = result.refusal(allow_unpaired=False)
    assert refusal is not None and "without every channel of --channels" in refusal and "stack0001" in refusal
    assert "_ch2_" not in refusal, "a channel not listed is no error"
    assert result.refusal(allow_unpaired=True) is None


def test_two_files_of_one_channel_and_key_are_ambiguous(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq", stacks=1, positions=1, channels=2)
    lo = truth[0][0]
    (lo.parent.parent / "ch0_again").mkdir()
    (lo.parent.parent / "ch0_again" / lo.name).write_bytes(lo.read_bytes())
    result = pair_acquisitions(low, gt, pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"])
    refusal = result.refusal(allow_unpaired=True)
    assert refusal is not None and "key stack=0000 x=01 y=01 z=01 channel=0 matches 2 files in --low" in refusal
    assert "ch0_again/" in refusal and not result.pairs


def test_prepare_joins_the_channels_into_one_calibrated_image_and_records_each_file(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", shape=(3, 32, 32), stacks=2, positions=1, channels=2, **LIGHTSHEET_TIME_LAPSE)
    before = tree_hashes(tmp_path / "acq")
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"], test_fraction=0.5)
    manifest = prepare_care(low, gt, tmp_path / "data", config)
    assert tree_hashes(tmp_path / "acq") == before, "the acquisitions are only read"
    assert manifest.axes == "TCYX" and len(manifest.pairs) == 2
    for rec in manifest.pairs:
        for sub, frec in (("low", rec.low), ("GT", rec.gt)):
            path = tmp_path / "data" / rec.split / sub / rec.name
            joined = tifffile.imread(path)
            assert joined.shape == (3, 2, 32, 32) and frec.shape == [3, 2, 32, 32] and frec.placed == "joined"
            assert frec.channel_files is not None and [c.channel for c in frec.channel_files] == ["0", "1"]
            for i, part in enumerate(frec.channel_files):
                assert np.array_equal(joined[:, i], tifffile.imread(part.source)), f"channel {part.channel} in place {i}"
                assert sha256_file(part.source) == part.sha256
            with tifffile.TiffFile(path) as tif:
                assert tif.imagej_metadata is not None and tif.imagej_metadata["channels"] == 2, "a Fiji hyperstack"
            size = read_pixel_size(path)
            assert size is not None and size.um == {"Y": pytest.approx(0.406), "X": pytest.approx(0.406)}
        assert rec.checks is not None, "the pair checks ran on the joined images"
    on_disk = json.loads((tmp_path / "data" / "fijiport_data.json").read_text())
    assert on_disk["config"]["channels"] == ["0", "1"]


def test_channel_files_that_differ_are_refused_naming_both(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq", shape=(32, 32), stacks=1, positions=1, channels=2)
    ch1 = next(lo for lo, _ in truth if "_ch1_" in lo.name)
    tifffile.imwrite(ch1, np.zeros((32, 40), np.uint16))
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"])
    with pytest.raises(DataError, match=r"channels of one image differ: .*_ch0_.* is \(32, 32\) .* but .*_ch1_.*\(32, 40\)"):
        prepare_care(low, gt, tmp_path / "data", config)
    assert not (tmp_path / "data").exists()


def test_files_with_channels_already_are_refused(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", shape=(32, 32, 2), stacks=1, positions=1, channels=2)
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"], axes="YXC")
    with pytest.raises(DataError, match="has channels already .*drop --channels"):
        prepare_care(low, gt, tmp_path / "data", config)


@pytest.mark.parametrize(
    "pair_by, channels, message",
    [
        (None, ["0", "1"], "give --pair-by an expression with a group named channel"),
        (r"_stack(?P<stack>\d+)", ["0", "1"], "group named channel"),
        (LIGHTSHEET_PAIR_BY, ["0"], "list two or more channel values"),
        (LIGHTSHEET_PAIR_BY, ["0", "1", "0"], "lists 0 more than once"),
    ],
)
def test_channels_that_cannot_join_files_are_refused(pair_by, channels, message):
    with pytest.raises(ConfigError, match=message):
        PrepareCareConfig(pair_by=pair_by, channels=channels)


def test_dry_run_lists_every_channel_file_of_a_pair(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", stacks=1, positions=1, channels=3)
    args = ["prepare", "care", "--low", low, "--gt", gt, "-o", tmp_path / "data", "--recursive", "--pair-by", LIGHTSHEET_PAIR_BY]
    result = invoke(*args, "--channels", "0,1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 pair(s)" in result.output and "stack=0000 x=01 y=01 z=01" in result.output
    assert result.output.count("  low  ") == 2 and result.output.count("  GT   ") == 2
    assert "left out: a channel --channels does not list: 2" in result.output
    assert not (tmp_path / "data").exists()
    bad = invoke(*args, "--channels", "0")
    assert bad.exit_code == 2 and "two or more channel values" in bad.output


def test_labels_of_joined_channels_keep_the_joined_name_and_never_replace_a_result(tmp_path):
    from pathlib import PurePosixPath

    from fijiport.predict.channels import ChannelGroup, place_results
    from fijiport.predict.outputs import Prediction

    group = ChannelGroup(
        files=(tmp_path / "in" / "a_ch0_s1.tif", tmp_path / "in" / "a_ch1_s1.tif"),
        places=(PurePosixPath("day1/a_ch0_s1.tif"), PurePosixPath("day1/a_ch1_s1.tif")),
        joined=PurePosixPath("day1/a_ch0+1_s1.tif"),
        key="s=1",
    )
    stage = tmp_path / "stage" / "day1"
    stage.mkdir(parents=True)
    staged = [stage / "a_ch0+1_s1.tif", stage / "a_ch0+1_s1.zip", stage / "a_ch0+1_s1.csv"]
    tifffile.imwrite(staged[0], np.arange(16, dtype=np.uint16).reshape(4, 4))
    for p in staged[1:]:
        p.write_bytes(b"x")
    out = tmp_path / "out"
    result = place_results(Prediction(staged[0], list(staged), n_objects=3), group, out, overwrite=False)
    assert [p.relative_to(out).as_posix() for p in result.outputs] == [f"day1/{p.name}" for p in staged]
    assert result.relative == "day1/a_ch0+1_s1.tif" and result.source == group.files[0]
    assert not any(p.exists() for p in staged), "moved, not copied"
    for p in staged[1:]:
        p.write_bytes(b"y")
    tifffile.imwrite(staged[0], np.zeros((4, 4), np.uint16))
    with pytest.raises(OutputExistsError, match="exists; choose another output"):
        place_results(Prediction(staged[0], list(staged)), group, out, overwrite=False)
    assert tifffile.imread(out / "day1" / "a_ch0+1_s1.tif")[3, 3] == 15, "the earlier result kept"


def test_predict_channels_refuses_an_ome_zarr_among_the_files(tmp_path):
    from pathlib import PurePosixPath

    from fijiport.predict.channels import group_channel_files

    store = tmp_path / "movie_ch0_s1.ome.zarr"
    store.mkdir()
    (store / ".zattrs").write_text('{"multiscales": []}')
    with pytest.raises(DataError, match="is an OME-Zarr image; --channels joins channels recorded in separate TIFF files"):
        group_channel_files([(store, PurePosixPath(store.name))], r"_ch(?P<channel>\d)_s(?P<s>\d)", ["0", "1"])
