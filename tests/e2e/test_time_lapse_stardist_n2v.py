"""StarDist and N2V on time-lapses: labels per frame written as one T stack (ROI sets and the CSV with a frame
column), N2V trained on frames as samples and predicting frame by frame into one stack with T kept."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import roifile
import tifffile

from fijiport.calibration import read_pixel_size
from fijiport.predict import predict_images
from helpers import tree_hashes

pytestmark = pytest.mark.slow
FRAMES = 3


def _write_movie(path, movie, axes="TYX"):
    tifffile.imwrite(path, movie, imagej=True, resolution=(1 / 0.5, 1 / 0.5), metadata={"axes": axes, "unit": "micron", "finterval": 10.0})


def _nuclei_movie():
    """Three 128² crops of stardist's bundled nuclei image as the frames of a T×Y×X time-lapse."""
    from stardist.data import test_image_nuclei_2d

    img = test_image_nuclei_2d()
    return np.stack([img[y : y + 128, x : x + 128] for y, x in ((0, 0), (128, 256), (300, 100))])


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_time_lapse_is_segmented_frame_by_frame_into_one_label_stack(plain_stardist2d, tmp_path):
    movie = _nuclei_movie()
    _write_movie(tmp_path / "movie.tif", movie)
    before = (tmp_path / "movie.tif").read_bytes()
    [result] = predict_images(plain_stardist2d, [tmp_path / "movie.tif"], tmp_path / "out")
    labels_path, rois_path, csv_path = tmp_path / "out" / "movie.tif", tmp_path / "out" / "movie.zip", tmp_path / "out" / "movie.csv"
    assert result.outputs == [labels_path, rois_path, csv_path]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary file left behind
    with tifffile.TiffFile(labels_path) as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == (FRAMES, 128, 128) and tif.series[0].dtype == np.uint16
    labels = tifffile.imread(labels_path)
    found = read_pixel_size(labels_path)
    assert found is not None and found.um == pytest.approx({"Y": 0.5, "X": 0.5}) and found.frame_interval == 10.0

    rows, rois = _rows(csv_path), roifile.roiread(str(rois_path))
    rois = rois if isinstance(rois, list) else [rois]
    assert list(rows[0])[:3] == ["frame", "label", "area"]
    assert result.n_objects == len(rows) == len(rois) == sum(int(f.max()) for f in labels) > 0
    for k in range(FRAMES):  # each frame as the same frame segmented alone: labels, ROIs (at the frame's position), rows
        tifffile.imwrite(tmp_path / f"frame{k}.tif", movie[k])
        [alone] = predict_images(plain_stardist2d, [tmp_path / f"frame{k}.tif"], tmp_path / f"alone{k}")
        np.testing.assert_array_equal(labels[k], tifffile.imread(alone.outputs[0]))
        alone_rois = roifile.roiread(str(alone.outputs[1]))
        alone_rois = alone_rois if isinstance(alone_rois, list) else [alone_rois]
        mine = [r for r in rois if r.position == k + 1]
        assert [r.coordinates().tolist() for r in mine] == [r.coordinates().tolist() for r in alone_rois]
        assert [{c: v for c, v in r.items() if c != "frame"} for r in rows if r["frame"] == str(k + 1)] == _rows(alone.outputs[2])
    assert (tmp_path / "movie.tif").read_bytes() == before


def test_n2v_trains_on_frames_and_restores_a_time_lapse_frame_by_frame(tmp_path):
    from fijiport.config.n2v import N2vTrainConfig, PrepareN2vConfig
    from fijiport.data import prepare_n2v
    from fijiport.training import train_n2v

    rng = np.random.default_rng(0)
    clean = _nuclei_movie().astype(np.float32)
    (tmp_path / "raw").mkdir()
    _write_movie(tmp_path / "raw" / "movie.tif", rng.poisson(clean / clean.max() * 30 + 5).astype(np.uint16))
    before = tree_hashes(tmp_path / "raw")
    prepare_n2v([tmp_path / "raw"], tmp_path / "data", config=PrepareN2vConfig(validation_fraction=0.34, test_fraction=0.0))
    config = N2vTrainConfig(epochs=1, steps_per_epoch=2, batch_size=8, patch_size=[32, 32], unet_first_filters=8, tensorboard=False)
    train_n2v(tmp_path / "data", tmp_path / "model", config)
    record = json.loads((tmp_path / "model" / "fijiport_training.json").read_text())
    assert record["axes"] == "TYX" and json.loads((tmp_path / "model" / "config.json").read_text())["axes"] == "YXC"

    movie = rng.poisson(clean / clean.max() * 30 + 5).astype(np.uint16)
    _write_movie(tmp_path / "movie.tif", movie)
    tifffile.imwrite(tmp_path / "frame2.tif", movie[2])
    [result] = predict_images(tmp_path / "model", [tmp_path / "movie.tif"], tmp_path / "out")
    with tifffile.TiffFile(result.outputs[0]) as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == (FRAMES, 128, 128)
    [alone] = predict_images(tmp_path / "model", [tmp_path / "frame2.tif"], tmp_path / "alone")
    np.testing.assert_array_equal(tifffile.imread(result.outputs[0])[2], tifffile.imread(alone.outputs[0]))
    found = read_pixel_size(result.outputs[0])
    assert found is not None and found.frame_interval == 10.0
    assert tree_hashes(tmp_path / "raw") == before


def test_a_stardist_package_segments_a_time_lapse_frame_by_frame(plain_stardist2d, tmp_path):
    from fijiport.export import ExportOptions, export_stardist

    movie = _nuclei_movie()
    _write_movie(tmp_path / "movie.tif", movie)
    [by_folder] = predict_images(plain_stardist2d, [tmp_path / "movie.tif"], tmp_path / "folder")
    k = int(np.argmax([f.max() for f in tifffile.imread(by_folder.outputs[0])]))  # the frame with most objects
    tifffile.imwrite(tmp_path / "frame.tif", movie[k])
    package = export_stardist(plain_stardist2d, tmp_path / "sd.zip", options=ExportOptions(test_input=tmp_path / "frame.tif")).path
    [result] = predict_images(package, [tmp_path / "movie.tif"], tmp_path / "out")
    [alone] = predict_images(package, [tmp_path / "frame.tif"], tmp_path / "alone")
    labels = tifffile.imread(result.outputs[0])
    assert labels.shape == (FRAMES, 128, 128) and tifffile.TiffFile(result.outputs[0]).series[0].axes == "TYX"
    np.testing.assert_array_equal(labels[k], tifffile.imread(alone.outputs[0]))
    rows = _rows(result.outputs[2])
    assert result.n_objects == len(rows) == sum(int(f.max()) for f in labels) > 0
    assert [{c: v for c, v in r.items() if c != "frame"} for r in rows if r["frame"] == str(k + 1)] == _rows(alone.outputs[2])
    rois = roifile.roiread(str(result.outputs[1]))
    assert sorted({r.position for r in (rois if isinstance(rois, list) else [rois])}) == [t + 1 for t in range(FRAMES) if labels[t].max()]
