"""What CARE and StarDist training share: progress events, results, seeding."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class TrainProgress:
    """One progress event: ``stage`` is ``patches``, ``step`` or ``epoch``."""

    stage: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    logs: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    model_dir: Path
    config: Any
    history: dict[str, list[float]]
    n_patches_train: int
    n_patches_val: int
    seconds: float

    @property
    def best_val_loss(self) -> float:
        return float(min(self.history.get("val_loss", [float("nan")])))


def seed_everything(tf, seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception as e:  # pragma: no cover - older TF
        log.debug("op determinism not available: %s", e)


def progress_callback(tf, progress: Callable[[TrainProgress], None], epochs: int, steps: int):
    class _Progress(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            progress(TrainProgress("step", self.epoch, epochs, batch + 1, steps, _floats(logs)))

        def on_epoch_end(self, epoch, logs=None):
            progress(TrainProgress("epoch", epoch + 1, epochs, steps, steps, _floats(logs)))

    return _Progress()


def _floats(logs) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v)}


def atomic_checkpoints(tf, callbacks: list) -> list:
    """Keras ModelCheckpoint callbacks replaced by ones that write to a temporary file and rename it, so a
    Ctrl-C or a crash during a save never leaves a truncated weights file (the previous one stays usable)."""
    import os

    base = tf.keras.callbacks.ModelCheckpoint

    class AtomicCheckpoint(base):
        def _save_handler(self, filepath):  # tf_keras: where every checkpoint file is written
            head, name = os.path.split(filepath)
            partial = os.path.join(head, f".{name}.partial{os.path.splitext(name)[1]}")  # same suffix, same format
            try:
                super()._save_handler(partial)
                os.replace(partial, filepath)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)

    out = []
    for cb in callbacks:
        if isinstance(cb, base):
            new = AtomicCheckpoint(cb.filepath, monitor=cb.monitor, save_best_only=cb.save_best_only,
                                   save_weights_only=cb.save_weights_only, mode="min" if cb.monitor_op == np.less else "max",
                                   verbose=0)
            new.best = cb.best
            out.append(new)
        else:
            out.append(cb)
    return out
