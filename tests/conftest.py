"""Shared fixtures: small real data (crops of stardist's bundled nuclei images) and tiny trained models.

The test process lives in the Keras 2 world (csbdeep/stardist); bioimageio.core's runners are
exercised in child processes, as fijiport itself does.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from helpers import load_json, read_rdf, run_official_bioimageio_test, tree_hashes  # noqa: F401  (re-exported for tests)


@pytest.fixture(scope="session")
def care2d_raw(tmp_path_factory) -> Path:
    from fijiport.data.synthetic import write_care_pairs

    root = tmp_path_factory.mktemp("care2d_raw")
    write_care_pairs(root, dims=2, seed=0)
    return root


@pytest.fixture(scope="session")
def care3d_raw(tmp_path_factory) -> Path:
    from fijiport.data.synthetic import write_care_pairs

    root = tmp_path_factory.mktemp("care3d_raw")
    write_care_pairs(root, dims=3, seed=0)
    return root


@pytest.fixture(scope="session")
def care2d_data(care2d_raw, tmp_path_factory) -> Path:
    from fijiport.data import prepare_care

    out = tmp_path_factory.mktemp("care2d") / "data"
    prepare_care(care2d_raw / "low", care2d_raw / "GT", out)
    return out


TINY_2D = dict(epochs=1, steps_per_epoch=3, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8, tensorboard=False)


@pytest.fixture(scope="session")
def care2d_model(care2d_data, tmp_path_factory) -> Path:
    """A CARE 2D model folder trained by fijiport (1 epoch × 3 steps)."""
    from fijiport.config import CareTrainConfig
    from fijiport.training import train_care

    model_dir = tmp_path_factory.mktemp("care2d_model") / "care2d"
    train_care(care2d_data, model_dir, CareTrainConfig(**TINY_2D))
    return model_dir


@pytest.fixture(scope="session")
def care2d_zip(care2d_model, tmp_path_factory) -> Path:
    """The bioimage.io package of :func:`care2d_model`."""
    from fijiport.export import export_care

    out = tmp_path_factory.mktemp("care2d_zip") / "care2d.zip"
    export_care(care2d_model, out)
    return out


def _plain_csbdeep_model(
    basedir: Path, name: str, axes: str, shape: tuple[int, ...], kern: int, depth: int, probabilistic: bool = False
) -> Path:
    """Train a CARE model with csbdeep alone (no fijiport), as a lab would have done elsewhere."""
    import tensorflow as tf
    from csbdeep.models import CARE, Config

    tf.keras.utils.set_random_seed(1)  # reproducible weights: same fixture, same model
    rng = np.random.default_rng(1)
    Y = rng.random((8, *shape, 1)).astype(np.float32)
    X = (Y + 0.3 * rng.normal(size=Y.shape)).astype(np.float32)
    config = Config(
        axes,
        n_channel_in=1,
        n_channel_out=1,
        unet_kern_size=kern,
        unet_n_depth=depth,
        unet_n_first=8,
        probabilistic=probabilistic,
        train_epochs=1,
        train_steps_per_epoch=2,
        train_batch_size=2,
        train_tensorboard=False,
    )
    model = CARE(config, name, basedir=str(basedir))
    model.train(X[:6], Y[:6], validation_data=(X[6:], Y[6:]))
    return basedir / name


@pytest.fixture(scope="session")
def plain_care2d(tmp_path_factory) -> Path:
    return _plain_csbdeep_model(tmp_path_factory.mktemp("plain2d"), "plain_care_2d", "YX", (32, 32), kern=3, depth=2)


@pytest.fixture(scope="session")
def plain_care2d_probabilistic(tmp_path_factory) -> Path:
    return _plain_csbdeep_model(tmp_path_factory.mktemp("plainprob"), "plain_prob_2d", "YX", (32, 32), kern=3, depth=2, probabilistic=True)


@pytest.fixture(scope="session")
def plain_care3d(tmp_path_factory) -> Path:
    return _plain_csbdeep_model(tmp_path_factory.mktemp("plain3d"), "plain_care_3d", "ZYX", (8, 16, 16), kern=3, depth=1)


@pytest.fixture(scope="session")
def stardist_model(tmp_path_factory):
    """A StarDist 2D model trained by fijiport long enough to find nuclei (~1-2 min on 2 cores)."""
    import tifffile
    from stardist.data import test_image_nuclei_2d

    from fijiport.config import PrepareStardistConfig, StardistTrainConfig
    from fijiport.data import prepare_stardist
    from fijiport.training import train_stardist

    root = tmp_path_factory.mktemp("stardist")
    img, lbl = test_image_nuclei_2d(return_mask=True)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i, (y, x) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
        tifffile.imwrite(root / "images" / f"n{i}.tif", img[y : y + 256, x : x + 256])
        tifffile.imwrite(root / "masks" / f"n{i}.tif", lbl[y : y + 256, x : x + 256])
    prepare_stardist(root / "images", root / "data", masks_dir=root / "masks", config=PrepareStardistConfig(test_fraction=0.25))
    train_stardist(
        root / "data",
        root / "model",
        StardistTrainConfig(
            epochs=15,
            steps_per_epoch=20,
            patch_size=[96, 96],
            unet_first_filters=16,
            learning_rate=1e-3,
            validation_fraction=0.34,
            tensorboard=False,
        ),
    )
    return root / "model"


@pytest.fixture(scope="session")
def stardist_zip(stardist_model, tmp_path_factory):
    from fijiport.export import ExportOptions, export_stardist

    before = tree_hashes(stardist_model)
    out = tmp_path_factory.mktemp("sd_export")
    result = export_stardist(stardist_model, out / "stardist.zip", options=ExportOptions(fiji_zip=out / "stardist_fiji.zip"))
    assert tree_hashes(stardist_model) == before, "export must not touch the model folder"
    return result


TINY_N2V = dict(epochs=2, steps_per_epoch=3, batch_size=8, patch_size=[32, 32], unet_first_filters=8, tensorboard=False)


@pytest.fixture(scope="session")
def n2v2d_raw(tmp_path_factory) -> Path:
    from fijiport.data.synthetic import write_noisy_images

    root = tmp_path_factory.mktemp("n2v2d_raw")
    write_noisy_images(root, dims=2, seed=0, n=6)
    return root


@pytest.fixture(scope="session")
def n2v2d_data(n2v2d_raw, tmp_path_factory) -> Path:
    from fijiport.data import prepare_n2v

    out = tmp_path_factory.mktemp("n2v2d") / "data"
    prepare_n2v([n2v2d_raw / "noisy"], out, gt_dir=n2v2d_raw / "clean")
    return out


@pytest.fixture(scope="session")
def n2v2d_model(n2v2d_data, tmp_path_factory) -> Path:
    """An N2V 2D model folder trained by fijiport (2 epochs × 3 steps)."""
    from fijiport.config.n2v import N2vTrainConfig
    from fijiport.training import train_n2v

    model_dir = tmp_path_factory.mktemp("n2v2d_model") / "n2v2d"
    train_n2v(n2v2d_data, model_dir, N2vTrainConfig(**TINY_N2V))
    return model_dir


@pytest.fixture(scope="session")
def stardist2d_data(tmp_path_factory) -> Path:
    """A StarDist data folder from four 256² crops of stardist's bundled nuclei image (3 train, 1 test)."""
    import tifffile
    from stardist.data import test_image_nuclei_2d

    from fijiport.config import PrepareStardistConfig
    from fijiport.data import prepare_stardist

    root = tmp_path_factory.mktemp("sd2d")
    img, lbl = test_image_nuclei_2d(return_mask=True)
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for i, (y, x) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
        tifffile.imwrite(root / "images" / f"n{i}.tif", img[y : y + 256, x : x + 256])
        tifffile.imwrite(root / "masks" / f"n{i}.tif", lbl[y : y + 256, x : x + 256])
    prepare_stardist(root / "images", root / "data", masks_dir=root / "masks", config=PrepareStardistConfig(test_fraction=0.25))
    return root / "data"


@pytest.fixture(scope="session")
def plain_stardist2d(stardist2d_data, tmp_path_factory) -> Path:
    """A StarDist 2D model folder trained with stardist alone (no fijiport), as stardist's own notebooks and its
    downloadable ``2D_versatile_fluo`` folder are: config.json, weights_best.h5, weights_last.h5, thresholds.json
    and nothing fijiport writes. Tiny (16 rays, depth 2, 8 filters, 3 epochs × 10 steps; ~15 s)."""
    import tensorflow as tf
    import tifffile
    from csbdeep.utils import normalize
    from stardist.models import Config2D, StarDist2D

    tf.keras.utils.set_random_seed(0)
    names = sorted(p.name for p in (stardist2d_data / "train" / "images").iterdir())
    X = [normalize(tifffile.imread(stardist2d_data / "train" / "images" / n).astype(np.float32), 1, 99.8) for n in names]
    Y = [tifffile.imread(stardist2d_data / "train" / "masks" / n) for n in names]
    config = Config2D(
        n_rays=16,
        grid=(2, 2),
        n_channel_in=1,
        unet_n_depth=2,
        unet_n_filter_base=8,
        train_patch_size=(64, 64),
        train_batch_size=4,
        train_epochs=3,
        train_steps_per_epoch=10,
        train_learning_rate=1e-3,
        train_tensorboard=False,
    )
    basedir = tmp_path_factory.mktemp("plain_sd")
    model = StarDist2D(config, name="plain_stardist_2d", basedir=str(basedir))
    model.train(X[:-1], Y[:-1], validation_data=(X[-1:], Y[-1:]), epochs=3, steps_per_epoch=10)
    model.optimize_thresholds(X[-1:], Y[-1:], optimize_kwargs=dict(verbose=0))
    return basedir / "plain_stardist_2d"
