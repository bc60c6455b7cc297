"""StarDist on time-lapses from preparation to QC: T×Y×X movies with label stacks (or ROI sets drawn on each frame)
make a data folder, StarDist trains on every frame as an image of its own, and QC scores every frame; a movie's QC
equals the QC of its frames given as separate images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from fijiport.config import PrepareStardistConfig
from fijiport.data import prepare_stardist
from fijiport.data.rois import labels_to_rois
from fijiport.errors import DataError
from helpers import tree_hashes

pytestmark = pytest.mark.slow
CORNERS = [
    [(0, 0), (0, 128), (128, 0)],
    [(128, 128), (256, 0), (256, 128)],
    [(0, 256), (128, 256), (256, 256)],
    [(300, 300), (0, 380), (380, 0)],
]


def _movies(root):
    """Four 3-frame T×Y×X movies (128² crops of stardist's nuclei image as frames) with their label stacks."""
    from stardist.data import test_image_nuclei_2d

    img, lbl = test_image_nuclei_2d(return_mask=True)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, corners in enumerate(CORNERS):
        movie = np.stack([img[y : y + 128, x : x + 128] for y, x in corners])
        labels = np.stack([lbl[y : y + 128, x : x + 128] for y, x in corners]).astype(np.uint16)
        tifffile.imwrite(root / "images" / f"m{i}.tif", movie, imagej=True, metadata={"axes": "TYX"})
        tifffile.imwrite(root / "masks" / f"m{i}.tif", labels, imagej=True, metadata={"axes": "TYX"})
    return root / "images", root / "masks"


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd_movies")
    images, masks = _movies(root / "acq")
    before = tree_hashes(root / "acq")
    manifest = prepare_stardist(images, root / "data", masks_dir=masks, config=PrepareStardistConfig(test_fraction=0.25))
    assert tree_hashes(root / "acq") == before, "inputs only read"
    return root, manifest


def test_label_stacks_make_a_data_folder_of_frames(movies):
    root, manifest = movies
    assert manifest.axes == "TYX" and len(manifest.items) == 4
    for rec in manifest.items:
        mask = tifffile.imread(root / "data" / rec.split / "masks" / rec.name)
        given = tifffile.imread(root / "acq" / "masks" / rec.name)
        assert mask.shape == given.shape == (3, 128, 128)
        for k in range(3):  # each frame relabelled 1..n on its own, the objects kept
            assert int(mask[k].max()) == len(np.unique(given[k])) - 1
            assert np.array_equal(mask[k] > 0, given[k] > 0)
        assert rec.report["n_objects"] == sum(int(m.max()) for m in mask)


def test_roi_sets_drawn_on_each_frame_give_the_label_stacks(movies, tmp_path):
    import roifile

    root, manifest = movies
    (tmp_path / "rois").mkdir()
    for i in range(4):
        labels = tifffile.imread(root / "acq" / "masks" / f"m{i}.tif")
        rois = []
        for k, frame in enumerate(labels):
            for roi in labels_to_rois(frame):
                roi.t_position = k + 1  # as the ROI Manager stores a ROI added on frame k+1 of a hyperstack
                roi.name = f"{k + 1:04d}-{roi.name}"  # and names it, uniquely in the set
                rois.append(roi)
        roifile.roiwrite(tmp_path / "rois" / f"m{i}.zip", rois)
    from_rois = prepare_stardist(
        root / "acq" / "images", tmp_path / "data", rois_dir=tmp_path / "rois", config=PrepareStardistConfig(test_fraction=0.25)
    )
    for rec, ref in zip(from_rois.items, manifest.items):
        a = tifffile.imread(tmp_path / "data" / rec.split / "masks" / rec.name)
        b = tifffile.imread(root / "data" / ref.split / "masks" / ref.name)
        assert a.shape == b.shape and all(np.array_equal(a[k] > 0, b[k] > 0) for k in range(3)), f"{rec.name}: ImageJ's filling"
        assert [int(f.max()) for f in a] == [int(f.max()) for f in b]

    rois = roifile.roiread(tmp_path / "rois" / "m0.zip")
    rois[0].t_position = 0
    roifile.roiwrite(tmp_path / "rois" / "m0.zip", rois, mode="w")
    with pytest.raises(DataError, match=r"ROI \S+ in .*m0.zip has no frame.*Add \[t\]"):
        prepare_stardist(root / "acq" / "images", tmp_path / "bad", rois_dir=tmp_path / "rois")
    assert not (tmp_path / "bad").exists()


def test_a_single_label_image_for_a_time_lapse_is_refused_saying_how_to_make_a_stack(movies, tmp_path):
    root, _ = movies
    (tmp_path / "masks").mkdir()
    for i in range(4):
        tifffile.imwrite(tmp_path / "masks" / f"m{i}.tif", tifffile.imread(root / "acq" / "masks" / f"m{i}.tif")[0])
    with pytest.raises(DataError, match=r"time-lapse of 3 frames .*one label image per frame.*Images to Stack"):
        prepare_stardist(root / "acq" / "images", tmp_path / "data", masks_dir=tmp_path / "masks")
    assert not (tmp_path / "data").exists()


def test_training_takes_every_frame_and_qc_scores_them_as_separate_images_would_be(movies, tmp_path):
    from fijiport.config.stardist import StardistTrainConfig
    from fijiport.qc import qc_stardist
    from fijiport.training import train_stardist

    root, manifest = movies
    model = tmp_path / "model"
    train_stardist(root / "data", model, StardistTrainConfig(n_rays=16, unet_depth=2, unet_first_filters=8, epochs=1,
                   steps_per_epoch=2, batch_size=2, patch_size=[64, 64], tensorboard=False))  # fmt: skip
    record = json.loads((model / "fijiport_training.json").read_text())
    seen = record["train_images"] + record["validation_images"]
    assert len(seen) == 3 * 3 and all(" (frame " in s for s in seen), "every frame of the three training movies"

    report = qc_stardist(model, root / "data" / "test", tmp_path / "qc", save_predictions=True)
    [test_name] = manifest.names("test")
    assert report.n_images == 1 and report.images[0]["name"] == test_name
    truth = tifffile.imread(root / "data" / "test" / "masks" / test_name)
    assert report.images[0]["objects_true"] == sum(int(f.max()) for f in truth)
    assert tifffile.imread(tmp_path / "qc" / "predictions" / test_name).shape == (3, 128, 128), "labels per frame, T kept"
    assert (tmp_path / "qc" / "panels" / f"{test_name[:-4]}.png").is_file()

    frames = tmp_path / "frames"  # the same frames as separate images: the QC of the single-image path
    (frames / "images").mkdir(parents=True)
    (frames / "masks").mkdir()
    movie = tifffile.imread(root / "data" / "test" / "images" / test_name)
    for k in range(3):
        tifffile.imwrite(frames / "images" / f"f{k}.tif", movie[k])
        tifffile.imwrite(frames / "masks" / f"f{k}.tif", truth[k])
    alone = qc_stardist(model, frames, tmp_path / "qc_frames")
    assert alone.n_images == 3
    for a, b in zip(report.per_threshold, alone.per_threshold):
        assert (a["tp"], a["fp"], a["fn"]) == (b["tp"], b["fp"], b["fn"]) and a["f1"] == b["f1"], (
            f"IoU {a['iou']}: the movie scores as its frames"
        )
