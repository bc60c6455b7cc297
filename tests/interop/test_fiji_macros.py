"""The macros of fiji_macros/ in real ImageJ 1.53t (Debian's `imagej`, batch mode under Xvfb).

Mask making runs for real. The plugin macros cannot run here (no Fiji, CSBDeep, StarDist or deepImageJ
jars): their dry run prints the exact option strings they would pass, which are checked against the keys
each plugin parses (../shared/FACTS.md), and a real run stops with the "not installed" message.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage.draw import disk
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.data.rois import rois_to_labels
from helpers import run_imagej_macro, tree_hashes

pytestmark = pytest.mark.slow
MACROS = Path(__file__).parents[2] / "fiji_macros"
PAINT_ROIS = Path(__file__).parents[1] / "data" / "imagej" / "paint_rois.ijm"
runner = CliRunner()

CSBDEEP_KEYS = [
    "input",
    "normalizeinput",
    "percentilebottom",
    "percentiletop",
    "clip",
    "ntiles",
    "blockmultiple",
    "overlap",
    "batchsize",
    "modelfile",
    "showprogressdialog",
]
STARDIST_KEYS = [
    "input",
    "modelChoice",
    "modelFile",
    "normalizeInput",
    "percentileBottom",
    "percentileTop",
    "probThresh",
    "nmsThresh",
    "outputType",
    "nTiles",
    "excludeBoundary",
    "roiPosition",
    "verbose",
    "showCsbdeepProgress",
    "showProbAndDist",
]
DEEPIMAGEJ_RUN_KEYS = ["model_path", "input_path", "output_folder", "display_output"]
DEEPIMAGEJ_STARDIST_KEYS = ["model", "prob_thresh", "min_percentile", "max_percentile"]

DISKS = [(20, 22, 8, 200), (62, 40, 11, 150), (92, 122, 12, 250), (30, 120, 6, 180)]  # row, col, radius, value
TINY = (104, 20, 2)  # 13 pixels, below min_size


def _disk_image() -> tuple[np.ndarray, list[np.ndarray]]:
    """Bright disks on a flat background (any threshold method separates them exactly); one has a hole."""
    img = np.full((120, 160), 12, np.uint16)
    objects = []
    for r, c, rad, value in DISKS:
        rr, cc = disk((r, c), rad, shape=img.shape)
        img[rr, cc] = value
        m = np.zeros(img.shape, bool)
        m[rr, cc] = True
        objects.append(m)
    rr, cc = disk((62, 40), 4, shape=img.shape)
    img[rr, cc] = 12  # a hole: Analyze Particles' "include" fills it in the mask
    rr, cc = disk(TINY[:2], TINY[2], shape=img.shape)
    img[rr, cc] = 220
    return img, objects


def ij_option(options: str, key: str) -> str:
    """A value from an ImageJ option string, as ij.Macro.getValue reads it (key=value or key=[value])."""
    m = re.search(r"(?:^| )" + re.escape(key) + r"=(\[[^\]]*\]|\S+)", options)
    assert m, f"{key}= missing from {options}"
    return m.group(1)[1:-1] if m.group(1).startswith("[") else m.group(1)


def dry_run_calls(stdout: str) -> list[tuple[str, str]]:
    return re.findall(r"^RUN\[([^\]]+)\] (.*)$", stdout, re.M)


@pytest.fixture
def disk_folder(tmp_path) -> Path:
    img, _ = _disk_image()
    folder = tmp_path / "raw images"  # a space, as in real users' paths
    folder.mkdir()
    tifffile.imwrite(folder / "cells.tif", img)
    tifffile.imwrite(folder / "cells flipped.tiff", img[:, ::-1].copy())
    return folder


def test_make_stardist_masks_paints_one_label_per_object(disk_folder, tmp_path):
    before = tree_hashes(disk_folder)
    out = tmp_path / "training data"
    proc = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{disk_folder}] output=[{out}] min_size=20")
    assert "2 of 2 image(s)" in proc.stdout, proc.stdout + proc.stderr
    _, objects = _disk_image()
    for name, flip in (("cells.tif", False), ("cells flipped.tiff", True)):
        mask = tifffile.imread(out / "masks" / name)
        assert mask.dtype == np.uint16 and mask.shape == (120, 160)
        assert sorted(np.unique(mask)) == list(range(len(DISKS) + 1))  # labels 1..N, the tiny object dropped
        for obj in objects:  # each disk is exactly one label, hole filled
            obj = obj[:, ::-1] if flip else obj
            values = np.unique(mask[obj])
            assert len(values) == 1 and values[0] > 0 and np.array_equal(mask == values[0], obj)
        # the saved ROI set paints (ImageJ's rule, in Python) to the same mask
        np.testing.assert_array_equal(rois_to_labels(out / "rois" / f"{Path(name).stem}.zip", mask.shape), mask)
        assert (out / "images" / name).read_bytes() == (disk_folder / name).read_bytes()
    assert tree_hashes(disk_folder) == before

    again = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{disk_folder}] output=[{out}]")
    assert "mask exists already" in again.stdout and "overwrite=true" in again.stdout
    again = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{disk_folder}] output=[{out}] overwrite=true")
    assert "2 of 2 image(s)" in again.stdout
    assert not list(out.rglob(".part_*"))


def test_make_stardist_masks_on_real_nuclei_feeds_prepare_stardist(tmp_path):
    from stardist.data import test_image_nuclei_2d

    raw = tmp_path / "raw"
    raw.mkdir()
    img = np.asarray(test_image_nuclei_2d())
    tifffile.imwrite(raw / "a.tif", img[:256, :256])
    tifffile.imwrite(raw / "b.tif", img[256:, 256:])
    proc = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{raw}] output=[{tmp_path / 'out'}] method=Otsu")
    assert "2 of 2 image(s)" in proc.stdout, proc.stdout + proc.stderr
    for name in ("a.tif", "b.tif"):
        mask = tifffile.imread(tmp_path / "out" / "masks" / name)
        assert mask.max() >= 10  # dozens of nuclei per crop
        np.testing.assert_array_equal(rois_to_labels(tmp_path / "out" / "rois" / name.replace(".tif", ".zip"), mask.shape), mask)
    r = runner.invoke(
        app,
        [
            "prepare",
            "stardist",
            "--images",
            str(tmp_path / "out" / "images"),
            "--masks",
            str(tmp_path / "out" / "masks"),
            "-o",
            str(tmp_path / "data"),
        ],
    )
    assert r.exit_code == 0, r.output


def test_make_stardist_masks_refuses_bad_arguments(disk_folder, tmp_path):
    usage = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{disk_folder}]")
    assert "usage: input=[FOLDER] output=[FOLDER]" in usage.stdout
    wrong = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{disk_folder}] output=[{tmp_path}/o] method=Magic")
    assert "unknown threshold method 'Magic'" in wrong.stdout and "Huang" in wrong.stdout
    same = run_imagej_macro(MACROS / "make_stardist_masks.ijm", f"input=[{disk_folder}] output=[{disk_folder}]")
    assert "must not be the input folder" in same.stdout
    assert not (tmp_path / "o").exists()


def test_rois_to_masks_equals_fijiport_masks_from_real_imagej_rois(tmp_path):
    from stardist.data import test_image_nuclei_2d

    tifffile.imwrite(tmp_path / "img.tif", np.asarray(test_image_nuclei_2d())[100:300, 150:350])
    proc = run_imagej_macro(PAINT_ROIS, f"{tmp_path / 'img.tif'}|{tmp_path}")  # traced, polygon, oval, rect ROIs
    assert (tmp_path / "rois.zip").is_file(), proc.stdout + proc.stderr
    images, rois = tmp_path / "my images", tmp_path / "my rois"
    images.mkdir()
    rois.mkdir()
    shutil.copy(tmp_path / "img.tif", images / "nuclei 1.tif")
    shutil.copy(tmp_path / "rois.zip", rois / "nuclei 1.zip")
    shutil.copy(tmp_path / "img.tif", images / "no rois.tif")
    before = tree_hashes(images), tree_hashes(rois)
    proc = run_imagej_macro(MACROS / "rois_to_masks.ijm", f"images=[{images}] rois=[{rois}] masks=[{tmp_path / 'masks'}]")
    assert "1 mask(s)" in proc.stdout and "no ROI set for no rois.tif" in proc.stdout, proc.stdout + proc.stderr
    mask = tifffile.imread(tmp_path / "masks" / "nuclei 1.tif")
    ours = rois_to_labels(rois / "nuclei 1.zip", mask.shape)
    assert mask.max() >= 8
    np.testing.assert_array_equal(mask, ours)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["nuclei 1.tif"]
    assert (tree_hashes(images), tree_hashes(rois)) == before
    refused = run_imagej_macro(MACROS / "rois_to_masks.ijm", f"images=[{images}] rois=[{rois}] masks=[{images}]")
    assert "must differ from the images folder" in refused.stdout
    exists = run_imagej_macro(MACROS / "rois_to_masks.ijm", f"images=[{images}] rois=[{rois}] masks=[{tmp_path / 'masks'}]")
    assert "mask exists already" in exists.stdout


def _plugin_setup(tmp_path) -> tuple[Path, Path]:
    images = tmp_path / "in put"
    images.mkdir()
    img, _ = _disk_image()
    tifffile.imwrite(images / "a b.tif", img)
    tifffile.imwrite(images / "c.tif", img)
    model = tmp_path / "my model.zip"
    model.write_bytes(b"stand-in file: only its existence is checked before the plugin runs")
    return images, model


def test_care_macro_builds_the_csbdeep_call_and_says_when_the_plugin_is_missing(tmp_path):
    images, model = _plugin_setup(tmp_path)
    args = f"input=[{images}] output=[{tmp_path / 'out'}] model=[{model}] ntiles=4 p_low=2 p_high=99.9"
    calls = dry_run_calls(run_imagej_macro(MACROS / "care_predict_folder.ijm", args + " dry_run=true").stdout)
    assert [c for c, _ in calls] == ["Run your network"] * 2
    options = calls[0][1]
    assert re.findall(r"(\w+)=", options) == CSBDEEP_KEYS
    assert ij_option(options, "input") == "a b.tif" and ij_option(options, "modelfile") == str(model)
    assert (ij_option(options, "ntiles"), ij_option(options, "percentilebottom"), ij_option(options, "percentiletop")) == ("4", "2", "99.9")
    proc = run_imagej_macro(MACROS / "care_predict_folder.ijm", args)
    assert "CSBDeep-Fiji is not installed" in proc.stdout and "update sites" in proc.stdout
    assert not (tmp_path / "out").exists()
    missing = run_imagej_macro(
        MACROS / "care_predict_folder.ijm", f"input=[{images}] output=[{tmp_path / 'out'}] model=[{tmp_path}/none.zip]"
    )
    assert "model file not found" in missing.stdout and "fijiport export" in missing.stdout


def test_stardist_macro_builds_the_stardist_call_and_says_when_the_plugin_is_missing(tmp_path):
    images, model = _plugin_setup(tmp_path)
    args = f"input=[{images}] output=[{tmp_path / 'out'}] model=[{model}] prob_thresh=0.61 nms_thresh=0.35"
    calls = dry_run_calls(run_imagej_macro(MACROS / "stardist_segment_folder.ijm", args + " dry_run=true").stdout)
    assert [c for c, _ in calls] == ["Command From Macro"] * 2
    options = calls[0][1]
    assert ij_option(options, "command") == "de.csbdresden.stardist.StarDist2D" and ij_option(options, "process") == "false"
    pairs = dict(re.findall(r"'(\w+)':'([^']*)'", options))
    assert re.findall(r"'(\w+)':", options) == STARDIST_KEYS
    assert (pairs["input"], pairs["modelFile"], pairs["probThresh"], pairs["nmsThresh"]) == ("a b.tif", str(model), "0.61", "0.35")
    proc = run_imagej_macro(MACROS / "stardist_segment_folder.ijm", args)
    assert "StarDist-Fiji is not installed" in proc.stdout
    assert not (tmp_path / "out").exists()


def test_deepimagej_macro_reads_stardist_thresholds_from_the_rdf(stardist_zip, care2d_zip, tmp_path):
    import zipfile

    import yaml

    images, _ = _plugin_setup(tmp_path)
    sd_dir, care_dir = tmp_path / "models" / "sd model", tmp_path / "models" / "care"
    zipfile.ZipFile(stardist_zip.path).extractall(sd_dir)
    zipfile.ZipFile(care2d_zip).extractall(care_dir)
    rdf = yaml.safe_load((sd_dir / "rdf.yaml").read_text())
    prob = rdf["config"]["stardist"]["thresholds"]["prob"]

    calls = dry_run_calls(
        run_imagej_macro(
            MACROS / "deepimagej_predict_folder.ijm", f"model=[{sd_dir}] input=[{images}] output=[{tmp_path / 'o'}] dry_run=true"
        ).stdout
    )
    assert [c for c, _ in calls] == ["DeepImageJ StarDist"] * 2
    options = calls[0][1]
    assert re.findall(r"(\w+)=", options) == DEEPIMAGEJ_STARDIST_KEYS
    assert ij_option(options, "model") == str(sd_dir) and float(ij_option(options, "prob_thresh")) == pytest.approx(prob)
    assert (ij_option(options, "min_percentile"), ij_option(options, "max_percentile")) == ("1.0", "99.8")

    calls = dry_run_calls(
        run_imagej_macro(
            MACROS / "deepimagej_predict_folder.ijm", f"model=[{care_dir}] input=[{images}] output=[{tmp_path / 'o'}] dry_run=true"
        ).stdout
    )
    assert [c for c, _ in calls] == ["DeepImageJ Run"] * 2
    assert re.findall(r"(\w+)=", calls[0][1]) == DEEPIMAGEJ_RUN_KEYS
    assert ij_option(calls[0][1], "input_path") == str(images / "a b.tif")
    proc = run_imagej_macro(MACROS / "deepimagej_predict_folder.ijm", f"model=[{care_dir}] input=[{images}] output=[{tmp_path / 'o'}]")
    assert "deepImageJ is not installed" in proc.stdout
    zipped = run_imagej_macro(MACROS / "deepimagej_predict_folder.ijm", f"model=[{care2d_zip}] input=[{images}] output=[{tmp_path / 'o'}]")
    assert "unzipped model folder" in zipped.stdout
    assert not (tmp_path / "o").exists()


def test_macros_list_and_install(tmp_path):
    r = runner.invoke(app, ["macros", "list"])
    assert r.exit_code == 0 and "make_stardist_masks.ijm" in r.output and "deepimagej_predict_folder.ijm" in r.output
    fiji = tmp_path / "Fiji.app"
    (fiji / "jars").mkdir(parents=True)
    r = runner.invoke(app, ["macros", "install", "--fiji", str(fiji)])
    assert r.exit_code == 0, r.output
    installed = sorted((fiji / "scripts" / "Plugins" / "fijiport").iterdir())
    assert [p.name for p in installed] == sorted(p.name for p in MACROS.glob("*.ijm"))
    assert all(p.read_bytes() == (MACROS / p.name).read_bytes() for p in installed)
    assert all("#@" not in p.read_text() for p in installed)  # plain ImageJ 1.x stops at script parameters
    r = runner.invoke(app, ["macros", "install", "--fiji", str(fiji)])
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = runner.invoke(app, ["macros", "install", "--fiji", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "not a folder" in r.output
