"""Label outputs far from the training data's objects are flagged (issue 21, item 4): a barely trained StarDist model
found 63,504 one-pixel objects on a 512×512 image, reported without a word."""

from __future__ import annotations

import numpy as np

from fijiport.data.labels import implausible_objects, object_stats


def _disks(shape=(256, 256), radius=8, step=32) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    n = 0
    for cy in range(step // 2, shape[0], step):
        for cx in range(step // 2, shape[1], step):
            n += 1
            labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = n
    return labels


def test_object_stats_count_and_size_the_objects():
    stats = object_stats([_disks()])
    assert stats["objects"] == 64 and 190 <= stats["median_area"] <= 210
    assert stats["objects_per_megapixel"] == round(64 / 256**2 * 1e6, 3)


def test_one_pixel_speckle_is_implausible_against_nuclei_but_nuclei_are_not():
    reference = object_stats([_disks()])
    speckle = np.arange(1, 256 * 256 + 1, dtype=np.int32).reshape(256, 256) * (np.indices((256, 256)).sum(0) % 2)
    why = implausible_objects(object_stats([speckle]), reference)
    assert why is not None and "median area 1 px" in why and "barely trained" in why
    assert implausible_objects(object_stats([_disks(radius=7)]), reference) is None
    assert implausible_objects(object_stats([np.zeros((64, 64), np.int32)]), reference) is None  # nothing found: no claim
