"""CARE on time-lapses (T×Y×X, T×Z×Y×X): patches from every frame, QC and prediction frame by frame (each frame
normalised on its own), one output stack with T kept, memory bounded by a frame."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from fijiport.calibration import read_pixel_size
from fijiport.cli import app
from fijiport.config import CareTrainConfig, PrepareCareConfig
from fijiport.data import load_manifest, prepare_care
from fijiport.errors import DataError
from fijiport.files import TiffFrames
from fijiport.predict import predict_images
from fijiport.training import train_care
from helpers import related_pair, tree_hashes

pytestmark = pytest.mark.slow
runner = CliRunner()
TINY = dict(epochs=1, steps_per_epoch=3, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8, tensorboard=False)
FRAMES = 4


def _movie(rng, shape, frames=FRAMES):
    pairs = [related_pair(rng, shape) for _ in range(frames)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _write_movie(path, movie, axes="TYX", **kw):
    tifffile.imwrite(
        path, movie, imagej=True, resolution=(1 / 0.2, 1 / 0.2), metadata={"axes": axes, "unit": "micron", "finterval": 5.0}, **kw
    )


@pytest.fixture(scope="module")
def movie_model(tmp_path_factory):
    """A tiny CARE 2D model trained on three T×Y×X ImageJ time-lapse pairs (4 frames of 64×64 each)."""
    root = tmp_path_factory.mktemp("movies")
    rng = np.random.default_rng(0)
    for sub in ("low", "GT"):
        (root / "raw" / sub).mkdir(parents=True)
    for i in range(3):
        low, gt = _movie(rng, (64, 64))
        _write_movie(root / "raw" / "low" / f"movie{i}.tif", low)
        _write_movie(root / "raw" / "GT" / f"movie{i}.tif", gt, compression="zlib")  # read page by page, not mapped
    before = tree_hashes(root / "raw")
    manifest = prepare_care(root / "raw" / "low", root / "raw" / "GT", root / "data", PrepareCareConfig(test_fraction=0.34))
    assert manifest.axes == "TYX" and all(p.checks is not None for p in manifest.pairs)  # pair checks on the first frame
    train_care(root / "data", root / "model", CareTrainConfig(**TINY))
    assert tree_hashes(root / "raw") == before
    return root


def test_training_draws_patches_from_every_frame(movie_model):
    record = json.loads((movie_model / "model" / "fijiport_training.json").read_text())
    n_train = len(load_manifest(movie_model / "data").names("train"))
    assert record["axes"] == "TYX" and record["patches"]["shape"] == [32, 32, 1]
    assert record["patches"]["train"] + record["patches"]["validation"] == n_train * FRAMES * TINY["patches_per_image"]
    assert json.loads((movie_model / "model" / "config.json").read_text())["axes"] == "YXC"  # the network takes frames
    assert record["pixel_size_um"] == pytest.approx({"Y": 0.2, "X": 0.2})


def test_qc_goes_frame_by_frame(movie_model, tmp_path):
    from fijiport.qc import qc_care

    result = qc_care(movie_model / "model", movie_model / "data" / "test", tmp_path / "qc", save_predictions=True)
    [image] = result.images
    assert image.shape == [FRAMES, 64, 64]
    saved = tmp_path / "qc" / "predictions" / image.name
    assert tifffile.imread(saved).shape == (FRAMES, 64, 64) and tifffile.TiffFile(saved).series[0].axes == "TYX"


def test_a_time_lapse_larger_than_a_tile_is_predicted_frame_by_frame_into_one_stack(movie_model, tmp_path):
    rng = np.random.default_rng(3)
    movie, _ = _movie(rng, (1100, 1040), frames=3)  # each frame over the ~1 MP tile size: tiled
    _write_movie(tmp_path / "big.tif", movie)
    tifffile.imwrite(tmp_path / "frame1.tif", movie[1])
    [result] = predict_images(movie_model / "model", [tmp_path / "big.tif"], tmp_path / "out")
    assert result.n_tiles == (2, 1)
    with tifffile.TiffFile(result.outputs[0]) as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == (3, 1100, 1040)
    restored = tifffile.imread(result.outputs[0])
    # every frame is normalised on its own, exactly as the same frame predicted alone
    [alone] = predict_images(movie_model / "model", [tmp_path / "frame1.tif"], tmp_path / "alone")
    np.testing.assert_array_equal(restored[1], tifffile.imread(alone.outputs[0]))
    found = read_pixel_size(result.outputs[0])  # calibration and frame interval kept
    assert found is not None and found.um == pytest.approx({"Y": 0.2, "X": 0.2}) and found.frame_interval == 5.0


def test_memory_follows_a_frame_not_the_file(movie_model, tmp_path):
    rng = np.random.default_rng(4)
    frame = (related_pair(rng, (256, 256))[0]).astype(np.uint16)
    peaks = {}
    for frames in (4, 48):
        path = tmp_path / f"movie{frames}.tif"
        _write_movie(path, np.stack([frame] * frames), compression="zlib" if frames == 48 else None)
        predict_images(movie_model / "model", [path], tmp_path / f"warm{frames}")  # libraries loaded, caches filled
        tracemalloc.start()
        predict_images(movie_model / "model", [path], tmp_path / f"out{frames}")
        peaks[frames] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    whole = 48 * 256 * 256 * 4  # the 48-frame stack as float32
    # 44 frames more add far less than a quarter of the stack (after some earlier tests the 48-frame run also carries
    # ~2 MB that do not grow with frames: a ratio of the two peaks failed there before any change to prediction)
    assert peaks[48] - peaks[4] < whole / 4 and peaks[48] < whole / 2, (peaks, whole)


def test_the_package_of_a_time_lapse_model_restores_time_lapses(movie_model, tmp_path):
    from fijiport.export import export_care

    package = tmp_path / "movie.zip"
    export_care(movie_model / "model", package)  # its test input: a test movie's first frame
    movie, _ = _movie(np.random.default_rng(5), (64, 64), frames=3)
    _write_movie(tmp_path / "movie.tif", movie)
    [result] = predict_images(package, [tmp_path / "movie.tif"], tmp_path / "out")
    assert tifffile.imread(result.outputs[0]).shape == (3, 64, 64) and tifffile.TiffFile(result.outputs[0]).series[0].axes == "TYX"


def test_time_lapses_the_model_cannot_take_are_refused_before_any_prediction(movie_model, plain_stardist2d, tmp_path):
    rng = np.random.default_rng(6)
    stacks = np.stack([np.stack(_movie(rng, (64, 64), frames=3)[0]) for _ in range(2)])  # T=2, Z=3
    _write_movie(tmp_path / "stacks.tif", stacks.astype(np.float32), axes="TZYX")
    r = runner.invoke(app, ["predict", str(movie_model / "model"), str(tmp_path / "stacks.tif"), "-o", str(tmp_path / "o1")])
    assert r.exit_code == 1 and "time-lapse whose frames are ZYX" in " ".join(r.output.split()) and not (tmp_path / "o1").exists()

    movie, _ = _movie(rng, (64, 64), frames=2)
    _write_movie(tmp_path / "movie.tif", movie)
    r = runner.invoke(app, ["predict", str(plain_stardist2d), str(tmp_path / "stacks.tif"), "-o", str(tmp_path / "o2")])
    assert r.exit_code == 1 and "time-lapse whose frames are ZYX" in " ".join(r.output.split())
    assert not (tmp_path / "o2").exists()

    # a movie without metadata saying so stays a stack the 2D model cannot take, with the fix
    tifffile.imwrite(tmp_path / "undeclared.tif", movie)
    r = runner.invoke(app, ["predict", str(movie_model / "model"), str(tmp_path / "undeclared.tif"), "-o", str(tmp_path / "o3")])
    assert r.exit_code == 1 and "Image > Properties...: frames" in " ".join(r.output.split())


def test_t_given_for_files_without_frames_is_refused(tmp_path):
    from helpers import imagej_calibrated

    rng = np.random.default_rng(7)
    for sub in ("low", "GT"):
        (tmp_path / sub).mkdir()
    low, gt = _movie(rng, (32, 32), frames=3)
    imagej_calibrated(tmp_path / "low" / "a.tif", low, 0.2, 1.0)  # ImageJ says ZYX: a stack, not a time-lapse
    imagej_calibrated(tmp_path / "GT" / "a.tif", gt, 0.2, 1.0)
    with pytest.raises(DataError, match=r"--axes TYX but .*a\.tif declares ZYX in its ImageJ metadata"):
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig(axes="TYX"))
    with pytest.raises(DataError, match="has 3 letters but the image has 2 dimensions"):
        tifffile.imwrite(tmp_path / "low" / "a.tif", low[0])
        tifffile.imwrite(tmp_path / "GT" / "a.tif", gt[0])
        prepare_care(tmp_path / "low", tmp_path / "GT", tmp_path / "data", PrepareCareConfig(axes="TYX"))
    with pytest.raises(ValueError, match=r"CARE trains on axes made of T \(frames of a time-lapse\), Z, Y, X and C; got 'SYX'"):
        CareTrainConfig(axes="SYX")


def test_patches_of_every_frame_that_would_not_fit_in_memory_are_refused(movie_model):
    from fijiport.training.care import check_patch_memory

    manifest = load_manifest(movie_model / "data")
    names = manifest.names("train")
    check_patch_memory(manifest, names, "TYX", (32, 32), 4, available=10**9)
    with pytest.raises(DataError, match=r"8 training frames × 64 patches of \[32, 32\] need .* lower --patches-per-image to \d+"):
        check_patch_memory(manifest, names, "TYX", (32, 32), 64, available=2 * 10**6)


def test_frames_are_read_one_at_a_time_whatever_the_layout(tmp_path):
    movie = np.arange(5 * 3 * 8 * 6, dtype=np.uint16).reshape(5, 3, 8, 6)
    for name, kw in (("plain", {}), ("zlib", {"compression": "zlib"})):
        _write_movie(tmp_path / f"{name}.tif", movie, axes="TZYX", **kw)
        frames = TiffFrames(tmp_path / f"{name}.tif", 0)
        assert len(frames) == 5 and frames.shape == (3, 8, 6)
        np.testing.assert_array_equal(np.stack(list(frames)), movie)
