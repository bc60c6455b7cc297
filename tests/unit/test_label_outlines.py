"""Outlines traced from label images fill back, by ImageJ's pixel-centre rule, to each object's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_fill_holes, gaussian_filter
from skimage.draw import disk
from skimage.measure import label

from fijiport.data.rois import labels_to_rois, read_rois, roi_mask, write_rois


def _disks(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.zeros((120, 170), np.uint16)
    for i in range(1, 30):  # overlapping disks make concave objects; later ones cut into earlier ones
        rr, cc = disk((rng.integers(0, 120), rng.integers(0, 170)), rng.integers(1, 14), shape=lab.shape)
        lab[rr, cc] = i
    lab[0, 0] = 30  # one pixel in a corner
    lab[60, :] = np.where(lab[60, :] == 0, 31, lab[60, :])  # one-pixel-wide pieces of a line
    return lab


def _blobs(seed: int) -> np.ndarray:
    noise = gaussian_filter(np.random.default_rng(seed).random((100, 100)), 1.5)
    return label(noise > np.percentile(noise, 60), connectivity=2).astype(np.uint16)  # diagonal-only contacts, holes


@pytest.mark.parametrize("make,seed", [(_disks, 0), (_disks, 1), (_blobs, 2), (_blobs, 3)])
def test_traced_outline_fills_back_to_the_object(make, seed, tmp_path):
    lab = make(seed)
    rois = labels_to_rois(lab)
    write_rois(rois, tmp_path / "rois.zip")
    back = read_rois(tmp_path / "rois.zip")
    assert [r.name for r in back] == [f"{v:05d}" for v in np.unique(lab)[1:]]
    for roi in back:
        obj = lab == int(roi.name)
        pieces, n = label(obj, connectivity=2, return_num=True)
        if n > 1:  # an object in pieces is outlined by its largest piece
            obj = pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1
        assert np.array_equal(roi_mask(roi, lab.shape), binary_fill_holes(obj)), roi.name


def test_empty_label_image_gives_an_empty_roi_set(tmp_path):
    write_rois(labels_to_rois(np.zeros((10, 10), np.uint16)), tmp_path / "none.zip")
    assert read_rois(tmp_path / "none.zip") == []
