"""What CARE and StarDist training share: progress events, results, seeding."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

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


def progress_callback(tf, progress: Callable[[TrainProgress], None], epochs: int, steps: int, offset: int = 0):
    class _Progress(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = offset + epoch + 1

        def on_train_batch_end(self, batch, logs=None):
            progress(TrainProgress("step", self.epoch, epochs, batch + 1, steps, _floats(logs)))

        def on_epoch_end(self, epoch, logs=None):
            progress(TrainProgress("epoch", offset + epoch + 1, epochs, steps, steps, _floats(logs)))

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


CONFIG_NAME = "fijiport_config.yaml"
"""The resolved training config, next to the model it trained."""
PROGRESS_NAME = "fijiport_progress.json"
"""Epochs done, best validation loss and the loss history so far: what ``--resume`` continues from."""


def write_config(model_dir: Path, config, kind: str) -> None:
    """The resolved config, written before training starts so an interrupted run can be resumed."""
    import yaml

    from ..files import atomic_file

    with atomic_file(model_dir / CONFIG_NAME, overwrite=True) as tmp:
        tmp.write_text(f"# resolved fijiport training config; reuse with `fijiport train {kind} DATA -o MODEL --config THIS_FILE`\n"
                       + yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def resume_state(model_dir: Path, given, kind: str):
    """The recorded config (with the given total epochs) and progress of an interrupted ``fijiport train {kind}`` run."""
    import json

    import yaml

    from ..errors import ConfigError, DataError

    if not (model_dir / "config.json").is_file() or not any((model_dir / n).is_file() for n in ("weights_now.h5", "weights_best.h5")):
        raise DataError(f"nothing to resume in {model_dir}: it needs config.json and weights_best.h5 from an earlier "
                        f"`fijiport train {kind}` run; drop --resume to start a new training")
    progress_path, config_path = model_dir / PROGRESS_NAME, model_dir / CONFIG_NAME
    if not progress_path.is_file() or not config_path.is_file():
        raise DataError(f"{model_dir} was not trained by fijiport (no {PROGRESS_NAME} / {CONFIG_NAME}), so it cannot be "
                        "resumed; train it anew, or export it as it is")
    state = json.loads(progress_path.read_text())
    try:
        recorded = type(given).model_validate(yaml.safe_load(config_path.read_text()))
    except Exception as e:
        raise DataError(f"{config_path} does not hold `fijiport train {kind}` settings ({str(e).splitlines()[0][:100]}); "
                        "resume a model with the command that trained it") from None
    config = recorded.model_copy(update={"epochs": given.epochs})
    if state["epochs_done"] >= config.epochs:
        raise ConfigError(f"{model_dir} has trained {state['epochs_done']} epochs already; pass a larger --epochs "
                          "(the total number of epochs) to continue")
    return type(given).model_validate(config.model_dump()), state


def progress_recorder(tf, model_dir: Path, state: dict, offset: int = 0):
    """After every epoch, record it in fijiport_progress.json (atomically), for --resume and the history.
    ``offset``: epochs done before this ``fit`` began, when fit counts from 0 (stardist's ``train``)."""
    from ..files import write_json

    import time

    class _Recorder(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            state.setdefault("epoch_seconds", []).append(round(time.perf_counter() - self.started, 3))
            logs = _floats(logs)
            for k, v in logs.items():
                state["history"].setdefault(k, []).append(v)
            state["epochs_done"] = offset + epoch + 1
            if "val_loss" in logs and (state["best_val_loss"] is None or logs["val_loss"] < state["best_val_loss"]):
                state["best_val_loss"] = logs["val_loss"]
            write_json(model_dir / PROGRESS_NAME, state)

    return _Recorder()


def steps_per_second(state: dict, steps_per_epoch: int) -> Optional[float]:
    """Training throughput: steps per second over the epochs after the first (which includes graph tracing)."""
    seconds = state.get("epoch_seconds", [])[1:]
    return round(steps_per_epoch / float(np.median(seconds)), 2) if seconds else None


def start_model(cls, config, model_dir: Path, *, overwrite: bool, resume: bool, state: dict, outputs: tuple = ()):
    """The csbdeep/stardist model to train: a new one (its folder's earlier weights and ``outputs`` removed with
    ``overwrite``), or with ``resume`` the interrupted one, loaded with its last saved weights."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    if model_dir.exists() and overwrite and not resume:
        for name in ("weights_best.h5", "weights_last.h5", "weights_now.h5", "config.json", PROGRESS_NAME, *outputs):
            (model_dir / name).unlink(missing_ok=True)
    if resume:
        model = cls(None, name=model_dir.name, basedir=str(model_dir.parent))
        # the last epoch's weights: weights_now.h5 while training, weights_last.h5 once a run has finished
        start_weights = next(model_dir / n for n in ("weights_now.h5", "weights_last.h5", "weights_best.h5")
                             if (model_dir / n).is_file())
        model.keras_model.load_weights(str(start_weights))
        log.info("resuming after epoch %d from %s", state["epochs_done"], start_weights.name)
    else:
        model = cls(config, name=model_dir.name, basedir=str(model_dir.parent))
    model.prepare_for_training()
    return model


def training_callbacks(tf, model_callbacks: list, model_dir: Path, state: dict, *, epochs: int, steps: int,
                       progress: Optional[Callable[[TrainProgress], None]] = None, offset: int = 0) -> list:
    """The model's own callbacks with atomic checkpoints (a resumed run replaces weights_best.h5 only with better
    weights than the earlier run's best), plus the progress record for --resume and the progress events.
    ``offset``: epochs done before this ``fit`` began, when fit counts from 0 (stardist's ``train``)."""
    callbacks = atomic_checkpoints(tf, list(model_callbacks))
    for cb in callbacks:
        if getattr(cb, "save_best_only", False) and state["best_val_loss"] is not None:
            cb.best = state["best_val_loss"]
    callbacks.append(progress_recorder(tf, model_dir, state, offset))
    if progress:
        callbacks.append(progress_callback(tf, progress, epochs, steps, offset))
    return callbacks


def warn_interrupted(kind: str, state: dict, epochs: int, data_dir: Path, model_dir: Path) -> None:
    """After Ctrl-C: where the best weights are and the command that goes on."""
    log.warning("training interrupted after epoch %d of %d; %s holds the best weights so far. Continue with: "
                "fijiport train %s %s -o %s --resume --epochs %d", state["epochs_done"], epochs,
                model_dir / "weights_best.h5", kind, data_dir, model_dir, epochs)
