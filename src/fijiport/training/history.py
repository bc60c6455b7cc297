"""Training history: CSV and loss-curve plot written next to the model."""

from __future__ import annotations

import csv
from pathlib import Path


def write_history_csv(history: dict[str, list[float]], path: Path) -> None:
    keys = list(history)
    n = max((len(v) for v in history.values()), default=0)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", *keys])
        for i in range(n):
            writer.writerow([i + 1, *(history[k][i] if i < len(history[k]) else "" for k in keys)])


MAX_COLUMNS = 3
"""Panels per row of ``loss.png``: StarDist records 7 metrics, which in one row made a 3150×350 px strip."""


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Loss (and other metrics) against epoch, training and validation in one panel each, at most
    :data:`MAX_COLUMNS` panels per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [k for k in history if not k.startswith("val_") and k not in ("lr", "learning_rate")]
    n = max(1, len(metrics))
    n_cols = min(n, MAX_COLUMNS)
    n_rows = -(-n // n_cols)
    fig, axs = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.5 * n_rows + 0.4), squeeze=False)
    for ax in axs.flat[len(metrics) :]:
        ax.set_axis_off()
    for ax, key in zip(axs.flat, metrics):
        epochs = range(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], "o-", label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(key)
        if len(history[key]) > 2 and min(history[key]) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
