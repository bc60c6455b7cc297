"""A segmented time-lapse written frame by frame: one label stack with T, one ROI set with each ROI at its frame, one
CSV with a frame column; all or nothing."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import roifile
import tifffile

from fijiport.errors import DataError
from fijiport.predict.outputs import LabelFrame, label_targets, write_label_frames


def _frames(n_objects):
    for t, n in enumerate(n_objects):
        labels = np.zeros((32, 40), np.int32)
        for i in range(n):
            labels[2 + 6 * i : 6 + 6 * i, 3 + t : 9 + t] = i + 1
        yield LabelFrame(labels, None, (labels * 10).astype(np.float32), "YX")


def _source(tmp_path, frames):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.zeros((frames, 32, 40), np.uint16), imagej=True, metadata={"axes": "TYX"})
    return path


def test_frames_are_written_as_one_stack_one_roi_set_and_one_csv(tmp_path):
    _source(tmp_path, 3)
    targets = label_targets(tmp_path / "out", "movie.tif")
    written, n_objects, warnings = write_label_frames(_frames([2, 0, 3]), 3, targets, False, tmp_path / "movie.tif")
    assert written == list(targets) and n_objects == 5 and warnings == []
    with tifffile.TiffFile(targets[0]) as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == (3, 32, 40) and tif.series[0].dtype == np.uint16
    labels = tifffile.imread(targets[0])
    assert [int(f.max()) for f in labels] == [2, 0, 3]
    rois = roifile.roiread(str(targets[1]))
    assert [r.position for r in rois] == [1, 1, 3, 3, 3]
    with open(targets[2], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["frame"], r["label"], r["area"]) for r in rows] == [
        ("1", "1", "24"),
        ("1", "2", "24"),
        ("3", "1", "24"),
        ("3", "2", "24"),
        ("3", "3", "24"),
    ]
    assert float(rows[2]["centroid_x"]) == pytest.approx(7.5)  # frame 3's objects where frame 3 has them


def test_a_frame_with_more_objects_than_16_bits_hold_is_refused_and_nothing_is_left(tmp_path):
    def frames():
        yield from _frames([1])
        crowded = np.arange(65537 - 32 * 40 + 1, 65537 + 1, dtype=np.int32).reshape(32, 40)  # ids up to 65537
        yield LabelFrame(crowded, None, crowded.astype(np.float32), "YX")

    _source(tmp_path, 2)
    targets = label_targets(tmp_path / "out", "movie.tif")
    with pytest.raises(DataError, match=r"movie\.tif: frame 2 has 65537 objects, more than a 16-bit label stack holds"):
        write_label_frames(frames(), 2, targets, False, tmp_path / "movie.tif")
    assert not list((tmp_path / "out").iterdir())  # no label stack, ROI set, CSV or temporary file
