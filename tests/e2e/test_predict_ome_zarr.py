"""``fijiport predict MODEL image.ome.zarr -o OUT``: OME-Zarr in (NGFF 0.4 and 0.5, axes and pixel sizes from its
metadata, read a frame at a time) and out (NGFF 0.4 with the input's axes, calibration and provenance, read back with
ome-zarr-py, the reader napari's plugin uses); the same restored frames as the TIFF time-lapse path; bad stores
refused naming the fix (docs/bad_inputs.md, "OME-Zarr")."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr
from typer.testing import CliRunner

from fijiport.cli import app
from fijiport.errors import DataError
from fijiport.predict import predict_images
from helpers import tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()


def _ngff04(path, data, axes, scale, units):
    """An OME-Zarr 0.4 image written with zarr and hand-made metadata (not fijiport's writer)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("0", data=data, chunks=(1,) + data.shape[1:])
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": a, "type": {"t": "time", "c": "channel"}.get(a, "space"), **({"unit": u} if u else {})}
                for a, u in zip(axes, units)
            ],
            "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
        }
    ]
    return path


@pytest.fixture(scope="module")
def movie():
    rng = np.random.default_rng(5)
    return (rng.gamma(2.0, 200.0, size=(3, 96, 128)) + 100).astype(np.uint16)


def test_an_ome_zarr_time_lapse_is_restored_frame_by_frame_as_its_tiff_is(care2d_model, movie, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    store = _ngff04(tmp_path / "in" / "movie.ome.zarr", movie, "tyx", [5.0, 0.2, 0.2], ["second", "micrometer", "micrometer"])
    tifffile.imwrite(tmp_path / "in" / "movie.tif", movie, imagej=True, resolution=(5.0, 5.0), metadata={"axes": "TYX", "unit": "micron"})
    before = tree_hashes(tmp_path / "in")
    r = runner.invoke(app, ["predict", str(care2d_model), str(store), str(tmp_path / "in" / "movie.tif"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert tree_hashes(tmp_path / "in") == before, "inputs are only read"

    out = tmp_path / "out" / "movie.ome.zarr"
    [node] = list(Reader(parse_url(str(out)))())  # what napari's ome-zarr plugin reads
    assert [a["name"] for a in node.metadata["axes"]] == ["t", "y", "x"]
    assert node.metadata["coordinateTransformations"][0][0]["scale"] == [5.0, 0.2, 0.2]
    assert [a.get("unit") for a in node.metadata["axes"]] == ["second", "micrometer", "micrometer"]
    restored = np.asarray(node.data[0])
    assert restored.shape == movie.shape and restored.dtype == np.float32
    from_tiff = tifffile.imread(tmp_path / "out" / "movie.tif")
    assert np.abs(restored - from_tiff).max() == 0, "the same frames, normalised per frame, as the TIFF time-lapse path"
    attrs = zarr.open_group(str(out), mode="r").attrs["fijiport"]
    assert attrs["model"] == str(care2d_model.resolve()) and attrs["input"] == str(store.resolve()) and attrs["intensity"] == "input"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no partial store left"

    # an existing result is kept unless --overwrite; --skip-existing goes on
    r = runner.invoke(app, ["predict", str(care2d_model), str(store), "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "exists" in r.stderr
    [res] = predict_images(care2d_model, [store], tmp_path / "out", skip_existing=True)
    assert res.skipped


def test_ngff_05_and_channels_first_are_read_from_the_metadata(care2d_zip, movie, tmp_path):
    """An NGFF 0.5 store (zarr v3, written by ome-zarr-py) of one 2D image; a package runs on it as on the TIFF."""
    from ome_zarr.writer import write_image

    g = zarr.open_group(str(tmp_path / "plane.ome.zarr"), mode="w")
    write_image(movie[0], g, axes="yx", scale_factors=[])
    assert g.attrs["ome"]["version"] == "0.5"
    tifffile.imwrite(tmp_path / "plane.tif", movie[0])
    [z, t] = predict_images(care2d_zip, [tmp_path / "plane.ome.zarr", tmp_path / "plane.tif"], tmp_path / "out")
    got = np.asarray(zarr.open_group(str(z.outputs[0]), mode="r")["0"][...])
    assert np.abs(got - tifffile.imread(t.outputs[0])).max() == 0


def test_a_store_that_is_not_an_ome_zarr_image_is_refused_naming_the_fix(care2d_model, movie, tmp_path):
    bare = zarr.open_group(str(tmp_path / "bare.zarr"), mode="w", zarr_format=2)
    bare.create_array("0", data=movie)
    with pytest.raises(DataError, match="no OME-Zarr 'multiscales' metadata"):
        predict_images(care2d_model, [tmp_path / "bare.zarr"], tmp_path / "out")
    odd = _ngff04(tmp_path / "odd.ome.zarr", movie, "tyq", [1, 1, 1], [None, None, None])
    with pytest.raises(DataError, match="axes among t, c, z, y, x"):
        predict_images(care2d_model, [odd], tmp_path / "out")
    strings = _ngff04(tmp_path / "strings.ome.zarr", np.array([["a", "b"]]), "yx", [1, 1], [None, None])
    with pytest.raises(DataError, match="integer or float pixels only"):
        predict_images(care2d_model, [strings], tmp_path / "out")
    stack = _ngff04(tmp_path / "stack.ome.zarr", movie, "zyx", [1, 1, 1], [None, None, None])
    with pytest.raises(DataError, match="frames of axes ZYX"):
        predict_images(care2d_model, [stack], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_bad_frame_mid_run_leaves_no_store(care2d_model, movie, tmp_path):
    """Frames after the first are checked as they are read; a NaN in the last stops the run with no output left."""
    bad = movie.astype(np.float32)
    bad[2, 10, 10] = np.nan
    store = _ngff04(tmp_path / "bad.ome.zarr", bad, "tyx", [1, 1, 1], [None, None, None])
    with pytest.raises(DataError, match="NaN|not finite|non-finite"):
        predict_images(care2d_model, [store], tmp_path / "out")
    assert not any((tmp_path / "out").iterdir()), "the store is written whole or not at all"


def test_stardist_segments_an_ome_zarr_time_lapse_into_an_ome_zarr_label_image(stardist_model, tmp_path):
    """Labels per frame identical to the TIFF time-lapse path's; the store is an NGFF label image (napari: a labels
    layer) with the input's calibration; the ROI set and the CSV (frame column) beside it."""
    import csv

    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader
    from stardist.data import test_image_nuclei_2d

    img = test_image_nuclei_2d()
    movie = np.stack([img[:256, :256], img[256:, 256:]])
    store = _ngff04(tmp_path / "nuclei.ome.zarr", movie, "tyx", [60.0, 0.5, 0.5], ["second", "micrometer", "micrometer"])
    tifffile.imwrite(tmp_path / "nuclei.tif", movie, imagej=True, metadata={"axes": "TYX"})
    with pytest.raises(DataError, match="would both write"):
        predict_images(stardist_model, [store, tmp_path / "nuclei.tif"], tmp_path / "out")
    tifffile.imwrite(tmp_path / "as_tiff.tif", movie, imagej=True, metadata={"axes": "TYX"})
    z, t = predict_images(stardist_model, [store, tmp_path / "as_tiff.tif"], tmp_path / "out")
    assert [p.name for p in z.outputs] == ["nuclei.ome.zarr", "nuclei.zip", "nuclei.csv"]
    [node] = list(Reader(parse_url(str(z.outputs[0])))())
    assert any(isinstance(spec, Label) for spec in node.specs), "read as a label image"
    labels = np.asarray(node.data[0])
    assert labels.shape == movie.shape and node.metadata["coordinateTransformations"][0][0]["scale"] == [60.0, 0.5, 0.5]
    assert np.array_equal(labels, tifffile.imread(t.outputs[0])) and z.n_objects == t.n_objects > 10
    with open(z.outputs[2]) as fh:
        assert {row["frame"] for row in csv.DictReader(fh)} == {"1", "2"}


def test_memory_is_judged_by_one_frame_of_an_ome_zarr(movie, tmp_path):
    """A store is never read whole: a time-lapse whose frame fits is accepted though the whole would not; a frame that
    does not fit is refused before any pixel is read, naming the figures and the fix."""
    from fijiport.ngff import ZarrImage
    from fijiport.predict import MEMORY_FACTOR, check_memory

    store = _ngff04(tmp_path / "movie.ome.zarr", movie, "tyx", [1, 1, 1], [None, None, None])
    frame_need = 96 * 128 * 4 * MEMORY_FACTOR
    stores = {store: ZarrImage.open(store)}
    check_memory([store], available=2 * frame_need, stores=stores)  # 3 frames would need 1.5× that
    with pytest.raises(DataError, match=r"96×128 pixels .* GB of memory .* write it as smaller images"):
        check_memory([store], available=frame_need // 2, stores=stores)
