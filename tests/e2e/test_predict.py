"""`fijiport predict` on model folders and bioimage.io packages: restored images (CARE), labels + ROI
sets + CSV (StarDist)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from typer.testing import CliRunner

from fijiport.cli import app
from helpers import tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()
IJ_JAR = Path("/usr/share/java/ij.jar")
COUNT_MACRO = Path(__file__).parents[1] / "data" / "imagej" / "count_rois.ijm"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_predict_care_folder_and_tiling(care2d_model, care2d_raw, tmp_path):
    before = tree_hashes(care2d_raw)
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (care2d_raw / "low").iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    whole = tifffile.imread(tmp_path / "out" / names[0])
    assert whole.dtype == np.float32 and whole.shape == tifffile.imread(care2d_raw / "low" / names[0]).shape
    r = invoke("predict", care2d_model, care2d_raw / "low" / names[0], "-o", tmp_path / "tiled", "--tiles", "2,2")
    assert r.exit_code == 0, r.output
    tiled = tifffile.imread(tmp_path / "tiled" / names[0])
    assert np.abs(tiled - whole).max() < 1e-3 * max(1.0, np.abs(whole).max())
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", care2d_raw / "low")
    assert r.exit_code == 1 and "never overwritten" in r.output
    assert tree_hashes(care2d_raw) == before


def test_predict_stardist_writes_labels_rois_and_measurements(stardist_model, tmp_path):
    images = stardist_model.parent / "images"
    r = invoke("predict", stardist_model, images, "-o", tmp_path / "seg")
    assert r.exit_code == 0, r.output
    for img in sorted(images.glob("*.tif")):
        labels = tifffile.imread(tmp_path / "seg" / img.name)
        n = len(np.unique(labels)) - 1
        assert n > 0 and labels.shape == tifffile.imread(img).shape
        with open(tmp_path / "seg" / f"{img.stem}.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == n and set(rows[0]) == {"label", "area", "centroid_y", "centroid_x", "mean_intensity"}
        assert sum(int(r["area"]) for r in rows) == int((labels > 0).sum())
        assert (tmp_path / "seg" / f"{img.stem}.zip").is_file()


@pytest.mark.parametrize("source", ["folder", "package"])
def test_roi_sets_open_in_real_imagej(source, stardist_model, stardist_zip, tmp_path):
    """stardist's polygons (folder) and outlines traced from the labels (package) both load in ImageJ."""
    if not IJ_JAR.is_file() or shutil.which("xvfb-run") is None:
        pytest.fail("ImageJ (Debian package imagej) and xvfb are needed: run `make runtimes`")
    image = sorted((stardist_model.parent / "images").glob("*.tif"))[0]
    model = stardist_model if source == "folder" else stardist_zip.path
    r = invoke("predict", model, image, "-o", tmp_path / "seg")
    assert r.exit_code == 0, r.output
    labels = tifffile.imread(tmp_path / "seg" / image.name)
    proc = subprocess.run(
        ["xvfb-run", "-a", "java", "-jar", str(IJ_JAR), "-batch", str(COUNT_MACRO), str(tmp_path / "seg" / f"{image.stem}.zip")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = re.search(r"rois=(\d+)", proc.stdout + proc.stderr)
    assert found, proc.stdout + proc.stderr
    assert int(found.group(1)) == len(np.unique(labels)) - 1


def test_predict_stardist_package_equals_model_folder(stardist_model, stardist_zip, tmp_path):
    """The package's ONNX weights + bioimageio.core's StarDist postprocessing give the model folder's labels;
    its ROI sets (outlines traced from the labels) fill back to exactly each object's pixels."""
    from scipy.ndimage import binary_fill_holes

    from fijiport.data.rois import read_rois, roi_mask

    images = stardist_model.parent / "images"
    before = tree_hashes(images), tree_hashes(stardist_zip.path.parent)
    assert invoke("predict", stardist_model, images, "-o", tmp_path / "folder").exit_code == 0
    r = invoke("predict", stardist_zip.path, images, "-o", tmp_path / "package")
    assert r.exit_code == 0, r.output
    for img in sorted(images.glob("*.tif")):
        want = tifffile.imread(tmp_path / "folder" / img.name)
        got = tifffile.imread(tmp_path / "package" / img.name)
        assert got.shape == want.shape and want.max() > 0
        assert np.array_equal(got, want), f"{img.name}: {(got != want).sum()} label pixels differ"
        rois = read_rois(tmp_path / "package" / f"{img.stem}.zip")
        assert len(rois) == got.max()
        for roi in rois:  # named by their label; traced outlines do not cut holes
            assert np.array_equal(roi_mask(roi, got.shape), binary_fill_holes(got == int(roi.name)))
        with open(tmp_path / "package" / f"{img.stem}.csv") as fh:
            assert len(list(csv.DictReader(fh))) == got.max()
    # tiled: the network per tile on the StarDist grid, NMS on the whole image: the same labels
    r = invoke("predict", stardist_zip.path, images, "-o", tmp_path / "tiled", "--tiles", "2,3")
    assert r.exit_code == 0, r.output
    for img in sorted(images.glob("*.tif")):
        tiled, whole = (tifffile.imread(tmp_path / d / img.name) for d in ("tiled", "package"))
        assert np.array_equal(tiled, whole), f"{img.name}: {(tiled != whole).sum()} label pixels differ when tiled"
    assert (tree_hashes(images), tree_hashes(stardist_zip.path.parent)) == before


def test_predict_stardist_package_equals_model_folder_at_sizes_off_the_step(stardist_model, stardist_zip, tmp_path):
    """Images whose size is not a multiple of the network's step: stardist drops candidates in its border at the
    end of the padded image (then those past the image), so the package's postprocessing must see the output
    past the image end too; tiled and untiled alike."""
    from stardist.data import test_image_nuclei_2d

    full = test_image_nuclei_2d()
    (tmp_path / "in").mkdir()
    for h, w in [(300, 300), (250, 333), (257, 301), (200, 203)]:
        tifffile.imwrite(tmp_path / "in" / f"s{h}x{w}.tif", full[:h, :w])
    assert invoke("predict", stardist_model, tmp_path / "in", "-o", tmp_path / "folder").exit_code == 0
    for out, extra in (("package", ()), ("tiled", ("--tiles", "2,2"))):
        r = invoke("predict", stardist_zip.path, tmp_path / "in", "-o", tmp_path / out, *extra)
        assert r.exit_code == 0, r.output
    for img in sorted((tmp_path / "in").glob("*.tif")):
        want = tifffile.imread(tmp_path / "folder" / img.name)
        assert want.max() > 0
        for out in ("package", "tiled"):
            got = tifffile.imread(tmp_path / out / img.name)
            assert np.array_equal(got, want), f"{img.name} ({out}): {(got != want).sum()} label pixels differ"


def test_predict_care_package_onnx_keras_and_tiles(care2d_model, care2d_zip, care2d_raw, tmp_path):
    """ONNX through bioimageio.core is csbdeep's network up to csbdeep's de-normalisation; tiles change
    nothing; --weights keras runs the csbdeep model the package carries."""
    name = sorted((care2d_raw / "low").iterdir())[0].name
    image = care2d_raw / "low" / name
    for args, out in [
        ((care2d_model,), "folder"),
        ((care2d_zip,), "onnx"),
        ((care2d_zip, "--weights", "keras"), "keras"),
        ((care2d_zip, "--tiles", "3,3"), "tiled"),
    ]:
        r = invoke("predict", *args[:1], image, "-o", tmp_path / out, *args[1:])
        assert r.exit_code == 0, r.output
    folder, onnx, keras, tiled = (tifffile.imread(tmp_path / d / name) for d in ("folder", "onnx", "keras", "tiled"))
    assert onnx.shape == folder.shape == image_shape(image)
    np.testing.assert_array_equal(keras, folder)
    # the package returns the network's normalised output; csbdeep maps it back to the input's range
    a = np.stack([onnx.ravel(), np.ones(onnx.size)], axis=1)
    coef, *_ = np.linalg.lstsq(a, folder.ravel().astype(np.float64), rcond=None)
    assert coef[0] > 0 and np.abs(a @ coef - folder.ravel()).max() < 1e-4 * np.abs(folder).max()
    # tiles read real context within the halo (csbdeep's scheme), so they equal the untiled prediction everywhere
    assert np.abs(tiled - onnx).max() < 1e-5 * max(1.0, np.abs(onnx).max())


def image_shape(path: Path) -> tuple[int, ...]:
    return tifffile.imread(path).shape


def test_predict_package_without_onnx_says_how_to_add_it(care2d_zip, care2d_raw, tmp_path):
    rdf = yaml.safe_load(zipfile.ZipFile(care2d_zip).read("rdf.yaml"))
    del rdf["weights"]["onnx"]
    stripped = tmp_path / "no_onnx.zip"
    with zipfile.ZipFile(care2d_zip) as src, zipfile.ZipFile(stripped, "w") as dst:
        for info in src.infolist():
            if info.filename != "rdf.yaml" and not info.filename.endswith(".onnx"):
                dst.writestr(info, src.read(info))
        dst.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
    r = invoke("predict", stripped, care2d_raw / "low", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "fijiport convert" in r.output and "no_onnx.zip" in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_predict_refuses_folder_with_onnx_and_non_models(care2d_model, care2d_raw, tmp_path):
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", tmp_path / "out", "--weights", "onnx")
    assert r.exit_code == 1 and "fijiport export" in r.output
    r = invoke("predict", care2d_raw / "low", care2d_raw / "low", "-o", tmp_path / "out")
    assert r.exit_code == 1 and "config.json" in r.output
    assert not (tmp_path / "out").exists()


def _bad_last(kind: str):
    """The bad image and what the refusal must say: the problem, the model's axes where they matter, the Fiji fix."""
    if kind == "NaN pixels":
        a = np.ones((64, 64), np.float32)
        a[5, 5] = np.nan
        return a, ["NaN or infinite", "Process > Math > Remove NaNs"]
    if kind == "truncated TIFF":
        return b"truncated", ["cannot read", "File > Save As > Tiff"]
    if kind == "RGB colour image":
        return np.zeros((64, 64, 3), np.uint8), ["RGB colour image", "the model expects YX", "Image > Type > 16-bit"]
    return np.zeros((3, 64, 64), np.float32), ["has shape (3, 64, 64) but the model expects YX", "Image > Stacks > Stack to Images"]


@pytest.mark.parametrize("kind", ["NaN pixels", "truncated TIFF", "RGB colour image", "a stack for a 2D model"])
@pytest.mark.parametrize("model", ["folder", "package"])
def test_bad_image_is_refused_before_any_prediction(kind, model, care2d_model, care2d_zip, care2d_raw, tmp_path):
    """The last of three images is bad: refused up front, naming it, and nothing is written (no empty folder)."""
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((care2d_raw / "low").glob("*.tif"))[:2]:
        shutil.copy(p, images / p.name)
    data, expected = _bad_last(kind)
    last = images / "zz_last.tif"
    if isinstance(data, bytes):
        good = (images / sorted(q.name for q in images.iterdir())[0]).read_bytes()
        last.write_bytes(good[: len(good) // 2])
    elif data.ndim == 3 and data.shape[-1] == 3:
        tifffile.imwrite(last, data, photometric="rgb")
    else:
        tifffile.imwrite(last, data)
    before = tree_hashes(images)
    r = invoke("predict", care2d_model if model == "folder" else care2d_zip, images, "-o", tmp_path / "out")
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "zz_last.tif" in text and all(e in text for e in expected), text
    assert not (tmp_path / "out").exists()
    assert tree_hashes(images) == before


def test_wrong_number_of_tiles_says_what_to_give(care2d_model, care2d_raw, tmp_path):
    r = invoke("predict", care2d_model, care2d_raw / "low", "-o", tmp_path / "out", "--tiles", "1,2,2")
    assert r.exit_code == 1 and "one number per image axis (YX), e.g. --tiles 2,2" in r.output, r.output
    assert not (tmp_path / "out").exists()


def test_two_inputs_with_one_name_are_refused_before_predicting(care2d_model, care2d_raw, tmp_path):
    name = sorted((care2d_raw / "low").glob("*.tif"))[0].name
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(care2d_raw / "low" / name, tmp_path / sub / name)
    r = invoke("predict", care2d_model, tmp_path / "a", tmp_path / "b", "-o", tmp_path / "out", "--overwrite")
    assert r.exit_code == 1 and f"two inputs are named {name}" in " ".join(r.output.split())
    assert not (tmp_path / "out").exists()
