"""StarDist 3D end to end: train on 3D images of star-convex objects, export, validate (official test and the
consumer runtimes), and predict from the package with the model folder's labels.

bioimageio.core 0.11 cannot run StarDist's 3D postprocessing (it asserts int32 labels, stardist 0.9
renders uint16), so 3D packages output probability and distances and fijiport makes the labels.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.runtimes.matrix import check_runtimes
from helpers import blobs_3d, read_rdf, run_official_bioimageio_test, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def stardist3d(tmp_path_factory):
    """A StarDist 3D model that finds the objects (~2.5 min on 2 cores: 400 steps of a small network on small
    patches; stardist's real 3D nuclei stack needed 10 min of a bigger one), and its package."""
    root = tmp_path_factory.mktemp("stardist3d")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i in range(4):
        img, lbl = blobs_3d(i)  # 32 x 64 x 64, 14 objects each
        tifffile.imwrite(root / "images" / f"n{i}.tif", img)
        tifffile.imwrite(root / "masks" / f"n{i}.tif", lbl)
    r = invoke("prepare", "stardist", "--images", root / "images", "--masks", root / "masks", "-o", root / "data")
    assert r.exit_code == 0, r.output
    r = invoke(
        "train",
        "stardist",
        root / "data",
        "-o",
        root / "model",
        "--n-rays",
        32,
        "--grid",
        "1,2,2",
        "--patch-size",
        "16,32,32",
        "--batch-size",
        2,
        "--epochs",
        10,
        "--steps-per-epoch",
        40,
        "--unet-depth",
        2,
        "--unet-first-filters",
        8,
        "--learning-rate",
        3e-3,
        "--validation-fraction",
        0.34,
        "--no-tensorboard",
    )
    assert r.exit_code == 0, r.output
    before = tree_hashes(root / "model")
    r = invoke("export", root / "model", "-o", root / "sd3d.zip")
    assert r.exit_code == 0, r.output
    assert tree_hashes(root / "model") == before
    return root


def test_3d_package_outputs_prob_and_dist_with_stardist_config(stardist3d):
    rdf = read_rdf(stardist3d / "sd3d.zip")
    out = rdf["outputs"][0]
    assert [a["type"] for a in out["axes"]] == ["batch", "space", "space", "space", "channel"]
    assert len(out["axes"][-1]["channel_names"]) == 33 and not out.get("postprocessing")
    assert rdf["config"]["stardist"]["thresholds"].keys() >= {"prob", "nms"}
    assert "3d" in rdf["tags"]


def test_3d_package_passes_the_official_test_and_every_applicable_runtime(stardist3d, runtimes_dir, tmp_path):
    proc = run_official_bioimageio_test(stardist3d / "sd3d.zip", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    matrix = check_runtimes(stardist3d / "sd3d.zip", runtimes_dir)
    rows = {r.name: r for r in matrix.checks}
    assert rows["StarDist-Fiji"].status == "n/a" and "2D" in rows["StarDist-Fiji"].details
    ran = {c for c, r in rows.items() if r.status != "n/a"}
    assert ran == {"deepImageJ (TF1)", "deepImageJ (TF2)", "deepImageJ (ONNX)", "KNIME"}
    assert all(rows[c].status == "passed" and rows[c].max_abs_diff < 1e-4 for c in ran), matrix.checks
    assert matrix.passed


def test_3d_package_predicts_the_model_folders_labels(stardist3d, tmp_path):
    # an image of a size the package accepts as it is (z, y, x multiples of 8, at least 40)
    img, truth = blobs_3d(7)  # an image it has not seen
    stack = np.ascontiguousarray(np.concatenate([img, img[::-1]])[:48, :56, :56])
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "stack.tif", stack)
    assert invoke("predict", stardist3d / "model", tmp_path / "in", "-o", tmp_path / "folder").exit_code == 0
    r = invoke("predict", stardist3d / "sd3d.zip", tmp_path / "in", "-o", tmp_path / "package")
    assert r.exit_code == 0, r.output
    want = tifffile.imread(tmp_path / "folder" / "stack.tif")
    got = tifffile.imread(tmp_path / "package" / "stack.tif")
    assert want.max() >= 5, "the model should find the objects"
    assert np.array_equal(got, want), f"{(got != want).sum()} voxels differ"
    from stardist.matching import matching

    mirrored = np.where(truth[::-1] > 0, truth[::-1] + truth.max(), 0)  # the mirrored half's objects are others
    found = matching(np.concatenate([truth, mirrored])[:48, :56, :56], want, thresh=0.5)
    assert found.f1 > 0.7, f"the model segments them: {found}"
    assert sorted(p.name for p in (tmp_path / "package").iterdir()) == ["stack.csv", "stack.tif"]  # no 2D ROI set
    with open(tmp_path / "package" / "stack.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == got.max() and {"centroid_z", "centroid_y", "centroid_x"} <= set(rows[0])


def test_3d_package_predicts_the_model_folders_labels_at_sizes_off_the_step(stardist3d, tmp_path):
    """Stacks whose sizes are not multiples of the network's steps (4 along Z, 8 along Y and X for grid 1,2,2): the
    package declares each axis' own step, so it pads as stardist does, and its labels equal the model folder's
    (issue 21, item 2: 3D packages padded Z to a multiple of 8, and cropped before the border rule)."""
    img, _ = blobs_3d(8)
    big = np.concatenate([img, img[::-1]], axis=0)  # 64 x 64 x 64
    (tmp_path / "in").mkdir()
    for z, y, x in [(45, 61, 57), (47, 59, 53), (62, 61, 57)]:
        tifffile.imwrite(tmp_path / "in" / f"s{z}x{y}x{x}.tif", np.ascontiguousarray(big[:z, :y, :x]))
    assert invoke("predict", stardist3d / "model", tmp_path / "in", "-o", tmp_path / "folder").exit_code == 0
    r = invoke("predict", stardist3d / "sd3d.zip", tmp_path / "in", "-o", tmp_path / "package")
    assert r.exit_code == 0, r.output
    steps = [a["size"]["step"] for a in read_rdf(stardist3d / "sd3d.zip")["inputs"][0]["axes"] if a["type"] == "space"]
    assert steps == [4, 8, 8]
    for path in sorted((tmp_path / "in").glob("*.tif")):
        want = tifffile.imread(tmp_path / "folder" / path.name)
        got = tifffile.imread(tmp_path / "package" / path.name)
        assert want.max() >= 5, "the model should find the objects"
        assert np.array_equal(got, want), f"{path.name}: {(got != want).sum()} voxels differ"


def test_3d_fiji_zip_is_refused_before_any_work(stardist3d, tmp_path):
    r = invoke("export", stardist3d / "model", "-o", tmp_path / "x.zip", "--fiji-zip", tmp_path / "x_fiji.zip")
    assert r.exit_code == 1 and "2D images only" in r.output
    assert not list(tmp_path.iterdir())
