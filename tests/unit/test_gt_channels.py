"""Ground truth of other channels than the input (CARE's ``n_channel_out``): ``prepare care --channels 0,1
--gt-channels 0`` for channels in separate files, or GT files that hold other channels than the input's; patches
whose targets have the GT's channels, drawn as csbdeep draws them; the baseline QC scores (the input channels of
GT's values, or none)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.config import PrepareCareConfig
from fijiport.data import prepare_care
from fijiport.data.patches import sample_care_patches
from fijiport.errors import ConfigError, DataError
from helpers import LIGHTSHEET_PAIR_BY, csbdeep_patches, lightsheet_tree, related_pair, tree_hashes

runner = CliRunner()
PERCENTILES = (2.0, 99.8)


@pytest.mark.parametrize("layout", ["YXC", "CYX"])
@pytest.mark.parametrize("direction", ["2-in-1-out", "1-in-2-out"])
def test_patches_of_other_channel_counts_equal_csbdeeps_with_the_single_channel_repeated(tmp_path, layout, direction):
    """csbdeep's create_patches needs one shape on both sides; with the single-channel side repeated to the other's
    channel count it draws the same centres (the patch filter keeps channels apart), so its patches, that side cut
    back to one channel, are what fijiport must give for the pair as it is."""
    rng = np.random.default_rng(3)
    c = layout.index("C")
    pairs, files = [], []
    for i, shape in enumerate([(64, 80), (72, 64)]):
        lows, gts = zip(*(related_pair(rng, shape) for _ in range(2)))
        x2, y2 = np.stack(lows, axis=c), np.stack(gts, axis=c)
        if direction == "2-in-1-out":
            x, y, gt_axes = x2, gts[0], "YX"
            ref = (x2, np.stack([gts[0]] * 2, axis=c))
        else:
            x, y, gt_axes = lows[0], y2, layout
            ref = (np.stack([lows[0]] * 2, axis=c), y2)
        for side, img in (("low", x), ("GT", y)):
            (tmp_path / side).mkdir(exist_ok=True)
            tifffile.imwrite(tmp_path / side / f"im{i}.tif", img)
        files.append((tmp_path / "low" / f"im{i}.tif", tmp_path / "GT" / f"im{i}.tif"))
        pairs.append(ref)
    patch = tuple(2 if a == "C" else 16 for a in layout)
    X_ref, Y_ref, axes_ref = csbdeep_patches(pairs, layout, patch, 10, 4, PERCENTILES)
    np.random.seed(4)
    axes = layout if direction == "2-in-1-out" else "YX"
    X, Y, got_axes = sample_care_patches(files, axes, patch if "C" in axes else (16, 16), 10, PERCENTILES, gt_axes=gt_axes)
    assert got_axes == axes_ref == "SCYX"
    if direction == "2-in-1-out":
        assert X.shape[1] == 2 and Y.shape[1] == 1
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(Y, Y_ref[:, :1])
    else:
        assert X.shape[1] == 1 and Y.shape[1] == 2
        np.testing.assert_array_equal(X, X_ref[:, :1])
        np.testing.assert_array_equal(Y, Y_ref)


def test_gt_channels_join_only_the_ground_truths_channels_and_say_which_input_channel_is_each(tmp_path):
    low, gt, truth = lightsheet_tree(tmp_path / "acq", shape=(40, 40), stacks=2, positions=1, channels=2)
    before = tree_hashes(tmp_path / "acq")
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"], gt_channels=["1"], test_fraction=0.5)
    manifest = prepare_care(low, gt, tmp_path / "data", config)
    assert tree_hashes(tmp_path / "acq") == before
    assert manifest.axes == "CYX" and manifest.gt_axes == "YX" and manifest.channel_counts() == (2, 1)
    assert manifest.baseline_channels() == [1], "GT channel 1 is the input's second channel"
    partner = dict(truth)
    for rec in manifest.pairs:
        assert rec.gt.channel_files is not None and [f.channel for f in rec.gt.channel_files] == ["1"]
        assert "/ch1/" in rec.gt.source
        gt_img = tifffile.imread(tmp_path / "data" / rec.split / "GT" / rec.name)
        low_img = tifffile.imread(tmp_path / "data" / rec.split / "low" / rec.name)
        assert gt_img.shape == (40, 40) and low_img.shape == (2, 40, 40)
        ch1_low = next(f.source for f in rec.low.channel_files or [] if f.channel == "1")
        np.testing.assert_array_equal(gt_img, tifffile.imread(partner[next(p for p in partner if str(p) == ch1_low)]))
        assert rec.checks is not None and rec.checks.correlation is not None and rec.checks.correlation > 0.5, "ch1 against ch1"
    assert any("/ch0/" in f and "488-100" in f for f in manifest.skipped_unpaired), "GT's channel 0 is left out"


@pytest.mark.parametrize("gt_channels, baseline", [(["1", "0"], [1, 0]), (["0", "2"], None)])
def test_as_many_gt_channels_as_input_channels_still_map_by_value(tmp_path, gt_channels, baseline):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", shape=(40, 40), stacks=2, positions=1, channels=3)
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"], gt_channels=gt_channels, test_fraction=0.5)
    manifest = prepare_care(low, gt, tmp_path / "data", config)
    assert manifest.channel_counts() == (2, 2) and manifest.baseline_channels() == baseline


def test_a_single_channel_input_with_several_gt_channels_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    for side in ("low", "GT"):
        (tmp_path / side).mkdir()
    (a, ga), (_, gb) = related_pair(rng, (40, 40)), related_pair(rng, (40, 40))
    tifffile.imwrite(tmp_path / "low" / "im0.tif", a)
    tifffile.imwrite(tmp_path / "GT" / "im0.tif", np.stack([ga, gb]), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(DataError, match=r"im0\.tif: the ground truth has 2 channels but its input 1; .*a data folder of its own"):
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig(check_pairs=False))
    assert not (tmp_path / "data").exists()


def test_a_gt_channel_the_input_lacks_has_no_baseline_and_no_pair_comparison(tmp_path):
    low, gt, _ = lightsheet_tree(tmp_path / "acq", shape=(40, 40), stacks=2, positions=1, channels=3)
    config = PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, recursive=True, channels=["0", "1"], gt_channels=["2"], test_fraction=0.5)
    manifest = prepare_care(low, gt, tmp_path / "data", config)
    assert manifest.baseline_channels() is None and manifest.channel_counts() == (2, 1)
    for rec in manifest.pairs:
        assert rec.checks is not None and rec.checks.correlation is None and rec.checks.saturated_gt is not None


def test_gt_files_with_other_channels_are_taken_and_recorded(tmp_path):
    rng = np.random.default_rng(0)
    for side in ("low", "GT"):
        (tmp_path / side).mkdir()
    for i in range(3):
        (a, ga), (b, _) = related_pair(rng, (40, 40)), related_pair(rng, (40, 40))
        tifffile.imwrite(tmp_path / "low" / f"im{i}.tif", np.stack([a, b]), imagej=True, metadata={"axes": "CYX"})
        tifffile.imwrite(tmp_path / "GT" / f"im{i}.tif", ga)
    result = runner.invoke(
        app, ["prepare", "care", "--low", str(tmp_path / "low"), "--gt", str(tmp_path / "GT"), "-o", str(tmp_path / "data")]
    )
    assert result.exit_code == 0, result.output
    assert "2 channel(s) in, 1 in the ground truth" in result.output and "no input baseline in QC" in result.output
    from fijiport.artifacts.data_folder import load_manifest

    manifest = load_manifest(tmp_path / "data")
    assert manifest.axes == "CYX" and manifest.gt_axes == "YX" and manifest.baseline_channels() is None
    assert all(rec.checks is not None and rec.checks.correlation is None for rec in manifest.pairs), "which channel is GT's is unknown"
    # --axes for the input reads the GT files without its C
    manifest = prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data2", PrepareCareConfig(axes="CYX"))
    assert manifest.gt_axes == "YX"


def test_pairs_with_other_channel_counts_and_gt_of_other_size_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for side in ("low", "GT"):
        (tmp_path / side).mkdir()
    (a, ga), (b, gb) = related_pair(rng, (40, 40)), related_pair(rng, (40, 40))
    tifffile.imwrite(tmp_path / "low" / "im0.tif", np.stack([a, b]), imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "GT" / "im0.tif", ga)
    tifffile.imwrite(tmp_path / "low" / "im1.tif", np.stack([a, b]), imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "GT" / "im1.tif", np.stack([ga, gb]), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(DataError, match=r"GT mixes images with 2 and 3 dimensions \(im0\.tif: \(40, 40\), im1\.tif: \(2, 40, 40\)\)"):
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig())
    tifffile.imwrite(tmp_path / "GT" / "im0.tif", np.stack([ga, gb, ga]), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(DataError, match=r"pairs differ in their numbers of channels: im0\.tif has 2 in and 3 in GT, im1\.tif has 2 and 2"):
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig())
    tifffile.imwrite(tmp_path / "GT" / "im0.tif", ga)
    tifffile.imwrite(tmp_path / "GT" / "im1.tif", ga[:, :36])
    with pytest.raises(DataError, match=r"shape mismatch for im1\.tif.*\(2, 40, 40\) \(CYX\).*\(40, 36\) \(YX\)"):
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig())
    assert not (tmp_path / "data").exists()


def test_gt_channels_need_channels_and_values():
    with pytest.raises(ConfigError, match="--gt-channels 0 chooses among channels in separate files: give --channels"):
        PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, gt_channels=["0"])
    with pytest.raises(ConfigError, match="--gt-channels lists 0 more than once"):
        PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, channels=["0", "1"], gt_channels=["0", "0"])
    with pytest.raises(ConfigError, match="--gt-channels '': list one or more channel values"):
        PrepareCareConfig(pair_by=LIGHTSHEET_PAIR_BY, channels=["0", "1"], gt_channels=[""])
    help_text = runner.invoke(app, ["prepare", "care", "--help"], env={"COLUMNS": "200"}).output
    assert "--gt-channels" in help_text and "--channels 0,1 --gt-channels 0" in help_text  # the example
