"""Same seed, same result (README, "Command line conventions"): two trainings with one seed give the same weights,
within float round-off; another seed gives other weights, so the comparison can tell them apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fijiport.config import CareTrainConfig
from fijiport.training import train_care

pytestmark = pytest.mark.slow
TINY = dict(epochs=1, steps_per_epoch=3, batch_size=4, patch_size=[32, 32], patches_per_image=4, unet_first_filters=8, tensorboard=False)


def _weights(model_dir: Path) -> list[np.ndarray]:
    """The trained weights in the network's own order (layer names differ between models built in one process)."""
    from fijiport.artifacts import ModelFolder

    return ModelFolder.open(model_dir, weights="weights_last.h5").load_keras().keras_model.get_weights()


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b) and a and all(x.shape == y.shape for x, y in zip(a, b))
    return max(float(np.abs(x.astype(np.float64) - y).max()) for x, y in zip(a, b))


def test_the_same_seed_trains_the_same_weights(care2d_data, tmp_path):
    runs = {}
    for name, seed in (("first", 3), ("again", 3), ("other seed", 4)):
        train_care(care2d_data, tmp_path / name, CareTrainConfig(seed=seed, **TINY))
        runs[name] = _weights(tmp_path / name)
    assert _max_diff(runs["first"], runs["again"]) <= 1e-6
    assert _max_diff(runs["first"], runs["other seed"]) > 1e-4
