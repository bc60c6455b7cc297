"""The training history written next to a model: history.csv and a readable loss.png."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fijiport.training.history import plot_history, write_history_csv

STARDIST_METRICS = ["loss", "prob_loss", "dist_loss", "prob_kld", "dist_relevant_mae", "dist_relevant_mse", "dist_dist_iou_metric"]


def _history(metrics, epochs=5):
    rng = np.random.default_rng(0)
    history = {}
    for key in metrics:
        history[key] = list(np.sort(rng.random(epochs))[::-1] + 0.1)
        history[f"val_{key}"] = list(np.sort(rng.random(epochs))[::-1] + 0.1)
    history["lr"] = [3e-4] * epochs
    return history


def test_stardist_loss_plot_is_a_grid_not_a_strip(tmp_path):
    """Issue 21: StarDist's 7 metrics made loss.png 3150×350 px, 7 panels in a row."""
    plot_history(_history(STARDIST_METRICS), tmp_path / "loss.png", title="StarDist test")
    with Image.open(tmp_path / "loss.png") as im:
        width, height = im.size
    assert 0.75 <= width / height <= 2.0, (width, height)
    assert width <= 1600 and height >= 700, (width, height)  # 3 columns of panels at their usual size


def test_care_loss_plot_keeps_one_row(tmp_path):
    plot_history(_history(["loss", "mse", "mae"]), tmp_path / "loss.png", title="CARE test")
    with Image.open(tmp_path / "loss.png") as im:
        width, height = im.size
    assert width <= 1600 and height < 500, (width, height)


def test_history_csv_has_one_row_per_epoch(tmp_path):
    write_history_csv(_history(["loss"], epochs=3), tmp_path / "history.csv")
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,val_loss,lr" and len(lines) == 4
