"""What CARE and StarDist training share: progress events, results, seeding, resuming, and starting from a
trained model (``--init-from``: the parent opened, its settings taken, its fit checked, its weights loaded)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar

import numpy as np
from pydantic import BaseModel

from ..artifacts.model_folder import (
    CONFIG_JSON,
    PROGRESS_JSON,
    TRAINING_CONFIG,
    WEIGHTS_BEST,
    WEIGHTS_CANDIDATES,
    ModelFolder,
    ParentRecord,
    TrainingProgress,
    read_network_config,
    read_progress,
    read_training_config,
    write_progress,
)
from ..artifacts.packaged_model import is_package, unpacked_model_folder
from ..config.loading import validate_config
from ..errors import ConfigError, DataError, TrainingError, UsageError
from ..kinds import kind_named, kind_of_config
from ..kinds.base import ModelKind, check_fine_tune

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
    return {k: float(np.asarray(v)) for k, v in (logs or {}).items() if np.isscalar(v)}


def atomic_checkpoints(tf, callbacks: list) -> list:
    """Keras ModelCheckpoint callbacks replaced by ones that write to a temporary file and rename it, so a
    Ctrl-C or a crash during a save never leaves a truncated weights file (the previous one stays usable)."""
    import os

    base = tf.keras.callbacks.ModelCheckpoint
    if not callable(getattr(base, "_save_handler", None)):
        raise TrainingError(
            f"tf_keras {tf.keras.__version__} has no ModelCheckpoint._save_handler, through which fijiport writes checkpoints "
            "atomically; install the versions in packaging/constraints.txt (pip install -c packaging/constraints.txt -e .)"
        )

    class AtomicCheckpoint(base):
        def _save_handler(self, filepath):  # tf_keras: where every checkpoint file is written
            head, name = os.path.split(filepath)
            partial = os.path.join(head, f".{name}.partial{os.path.splitext(name)[1]}")  # same suffix, same format
            try:
                super()._save_handler(partial)
                os.replace(partial, filepath)
                log.debug("checkpoint %s written atomically", name)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)

    out = []
    for cb in callbacks:
        if isinstance(cb, base):
            new = AtomicCheckpoint(
                cb.filepath,
                monitor=cb.monitor,
                save_best_only=cb.save_best_only,
                save_weights_only=cb.save_weights_only,
                mode="min" if cb.monitor_op == np.less else "max",
                verbose=0,
            )
            new.best = cb.best
            out.append(new)
        else:
            out.append(cb)
    return out


def resume_state(model_dir: Path, given, kind: str):
    """The recorded config (with the given total epochs) and progress of an interrupted ``fijiport train {kind}`` run."""
    import yaml

    if not (model_dir / CONFIG_JSON).is_file() or not any((model_dir / n).is_file() for n in ("weights_now.h5", WEIGHTS_BEST)):
        raise DataError(
            f"nothing to resume in {model_dir}: it needs config.json and weights_best.h5 from an earlier "
            f"`fijiport train {kind}` run; drop --resume to start a new training"
        )
    progress, config_path = read_progress(model_dir), model_dir / TRAINING_CONFIG
    if progress is None or not config_path.is_file():
        raise DataError(
            f"{model_dir} was not trained by fijiport (no {PROGRESS_JSON} / {TRAINING_CONFIG}), so it cannot be "
            "resumed; train it anew, or export it as it is"
        )
    try:
        recorded = type(given).model_validate(yaml.safe_load(config_path.read_text()))
    except Exception as e:
        raise DataError(
            f"{config_path} does not hold `fijiport train {kind}` settings ({str(e).splitlines()[0][:100]}); "
            "resume a model with the command that trained it"
        ) from None
    config = recorded.model_copy(update={"epochs": given.epochs})
    if progress.epochs_done >= config.epochs:
        raise ConfigError(
            f"{model_dir} has trained {progress.epochs_done} epochs already; pass a larger --epochs "
            "(the total number of epochs) to continue"
        )
    return type(given).model_validate(config.model_dump()), progress


def progress_recorder(tf, model_dir: Path, state: TrainingProgress, offset: int = 0):
    """After every epoch, record it in fijiport_progress.json (atomically), for --resume and the history.
    ``offset``: epochs done before this ``fit`` began, when fit counts from 0 (stardist's ``train``)."""
    import time

    class _Recorder(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            state.record_epoch(offset + epoch + 1, _floats(logs), time.perf_counter() - self.started)
            write_progress(model_dir, state)

    return _Recorder()


def steps_per_second(state: TrainingProgress, steps_per_epoch: int) -> Optional[float]:
    """Training throughput: steps per second over the epochs after the first (which includes graph tracing)."""
    seconds = state.epoch_seconds[1:]
    return round(steps_per_epoch / float(np.median(seconds)), 2) if seconds else None


def start_model(cls, config, model_dir: Path, *, overwrite: bool, resume: bool, state: TrainingProgress, outputs: tuple = ()):
    """The csbdeep/stardist model to train: a new one (its folder's earlier weights and ``outputs`` removed with
    ``overwrite``), or with ``resume`` the interrupted one, loaded with its last saved weights."""
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    if model_dir.exists() and overwrite and not resume:
        for name in (*WEIGHTS_CANDIDATES, CONFIG_JSON, PROGRESS_JSON, *outputs):
            (model_dir / name).unlink(missing_ok=True)
    if resume:
        model = cls(None, name=model_dir.name, basedir=str(model_dir.parent))
        # the last epoch's weights: weights_now.h5 while training, weights_last.h5 once a run has finished
        start_weights = next(model_dir / n for n in ("weights_now.h5", "weights_last.h5", "weights_best.h5") if (model_dir / n).is_file())
        model.keras_model.load_weights(str(start_weights))
        log.info("resuming after epoch %d from %s", state.epochs_done, start_weights.name)
    else:
        model = cls(config, name=model_dir.name, basedir=str(model_dir.parent))
    model.prepare_for_training()
    return model


def training_callbacks(
    tf,
    model_callbacks: list,
    model_dir: Path,
    state: TrainingProgress,
    *,
    epochs: int,
    steps: int,
    progress: Optional[Callable[[TrainProgress], None]] = None,
    offset: int = 0,
) -> list:
    """The model's own callbacks with atomic checkpoints (a resumed run replaces weights_best.h5 only with better
    weights than the earlier run's best), plus the progress record for --resume and the progress events.
    ``offset``: epochs done before this ``fit`` began, when fit counts from 0 (stardist's ``train``)."""
    callbacks = atomic_checkpoints(tf, list(model_callbacks))
    for cb in callbacks:
        if getattr(cb, "save_best_only", False) and state.best_val_loss is not None:
            cb.best = state.best_val_loss
    callbacks.append(progress_recorder(tf, model_dir, state, offset))
    if progress:
        callbacks.append(progress_callback(tf, progress, epochs, steps, offset))
    return callbacks


@contextmanager
def fit_guard(tf, kind: str, state: TrainingProgress, epochs: int, data_dir: Path, model_dir: Path) -> Iterator[None]:
    """Around a training ``fit``: TensorFlow running out of memory becomes a :class:`TrainingError` naming the fix;
    after Ctrl-C, :func:`warn_interrupted` says where the best weights are and how to go on."""
    try:
        yield
    except tf.errors.ResourceExhaustedError as e:
        raise TrainingError(f"out of memory during training ({e.message.splitlines()[0]}); lower --batch-size or --patch-size") from None
    except KeyboardInterrupt:
        warn_interrupted(kind, state, epochs, data_dir, model_dir)
        raise


def keras_fit(keras_model, data, validation: tuple, state: TrainingProgress, *, epochs: int, steps: int, callbacks: list) -> None:
    """``fit`` from the epoch a resumed run stopped at (its epoch numbers are the run's own), silent: progress comes
    from ``callbacks``."""
    keras_model.fit(
        iter(data),
        validation_data=validation,
        initial_epoch=state.epochs_done,
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=0,
    )


def check_losses_finite(state: TrainingProgress) -> None:
    if any(not np.isfinite(v) for v in state.history.get("loss", [])):
        raise TrainingError("the training loss became NaN/inf; lower --learning-rate or check the images for NaN values")


def warn_interrupted(kind: str, state: TrainingProgress, epochs: int, data_dir: Path, model_dir: Path) -> None:
    """After Ctrl-C: where the best weights are and the command that goes on."""
    log.warning(
        "training interrupted after epoch %d of %d; %s holds the best weights so far. Continue with: "
        "fijiport train %s %s -o %s --resume --epochs %d",
        state.epochs_done,
        epochs,
        model_dir / "weights_best.h5",
        kind,
        data_dir,
        model_dir,
        epochs,
    )


# --- starting from a trained model (--init-from) ----------------------------------------------------------------

C = TypeVar("C", bound=BaseModel)

PERCENTILES = ("percentile_low", "percentile_high")


@dataclass
class Parent:
    """The model a fine-tuning starts from (``train KIND --init-from MODEL``), opened: its model folder (a package's
    unpacked to a temporary folder) and what the training record says about it."""

    folder: ModelFolder
    record: ParentRecord

    @property
    def label(self) -> str:
        return f"--init-from {self.record.path} ({self.record.describe()})"


def check_init_from(init_from: Optional[Path], resume: bool) -> None:
    if init_from is not None and resume:
        raise UsageError(
            "--init-from starts a new training from another model's weights and --resume continues an interrupted "
            "training in OUTPUT; give one of them (a resumed fine-tuning continues from its own weights)"
        )


@contextmanager
def open_parent(source: Optional[Path], kind: str) -> Iterator[Optional[Parent]]:
    """The parent ``--init-from`` names, open for as long as the block runs (None without one): a model folder of
    ``kind`` (fijiport's, csbdeep's or stardist's own) or a bioimage.io package carrying one. Refused, naming the
    fix, when it is missing, of another kind, or a package without Keras weights and the library's config."""
    if source is None:
        yield None
        return
    source = Path(source)
    if not source.exists():
        raise DataError(
            f"--init-from {source} does not exist; pass a model folder (config.json + weights_best.h5) or a "
            "bioimage.io package (.zip) of the model to start from"
        )
    if is_package(source):
        with unpacked_model_folder(source, purpose="--init-from", hint="start from the model folder it was exported from instead") as (
            folder_dir,
            origin,
        ):
            found = kind_of_config(read_network_config(folder_dir), source)
            _check_kind(found, source, kind)
            pct, pct_source = (origin.percentiles, "package") if origin.percentiles else (found.default_percentiles, "default")
            folder = ModelFolder.open(folder_dir, percentiles=pct, percentiles_source=pct_source)
            yield Parent(
                folder,
                ParentRecord(
                    path=str(source.resolve()),
                    source="package",
                    kind=folder.kind.name,
                    name=origin.name,
                    weights=origin.weights,
                    weights_sha256=folder.weights_sha256(),
                    zoo_id=origin.zoo_id,
                    version=origin.version,
                    doi=origin.doi,
                ),
            )
        return
    found = kind_of_config(read_network_config(source), source / CONFIG_JSON)
    _check_kind(found, source, kind)
    recorded = read_training_config(source) or {}
    if all(k in recorded for k in PERCENTILES):
        folder = ModelFolder.open(source)
    else:  # said once the parent is known to fit (fine_tune_config), not before a refusal
        folder = ModelFolder.open(source, percentiles=found.default_percentiles, percentiles_source="default")
    yield Parent(
        folder,
        ParentRecord(
            path=str(source.resolve()),
            source="model folder",
            kind=folder.kind.name,
            name=folder.name,
            weights=folder.weights_path.name,
            weights_sha256=folder.weights_sha256(),
        ),
    )


def _check_kind(found: ModelKind, source: Path, kind: str) -> None:
    if found.name != kind:
        wanted = kind_named(kind).title
        raise ConfigError(
            f"--init-from {source} is a {found.title} model; `fijiport train {kind}` fine-tunes {wanted} models "
            f"only: start from a {wanted} model, or fine-tune this one with `fijiport train {found.name} --init-from`"
        )


def fine_tune_config(config: C, given: set[str], parent: Parent, data: dict[str, Any]) -> C:
    """The training config of a fine-tuning: the network options (the kind's ``fine_tune_settings``) and the
    normalisation percentiles the user did not give are the parent's. The options taken go to
    ``parent.record.inherited``. ``data``: the settings the data decides (``n_dim``, ``n_channel_in``), checked
    against the parent's first: no option can mend them."""
    kind, parent_config = parent.folder.kind, parent.folder.config
    check_fine_tune(kind, parent_config, {**parent_config, **data}, parent_name=parent.label)
    fields = type(config).model_fields
    updates: dict[str, Any] = {}
    for s in kind.fine_tune_settings:
        if s.option and s.option in fields and s.option not in given:
            value = kind.option_value(s, kind.setting_value(s, parent_config))
            if value is not None:
                updates[s.option] = value
    if kind.uses_percentiles:
        for name, value in zip(PERCENTILES, parent.folder.percentiles):
            if name not in given:
                updates[name] = value
    parent.record.inherited = sorted(updates)
    return validate_config(type(config), {**config.model_dump(), **updates}, source=f"options with the settings of {parent.label}")


def check_parent_fits(parent: Parent, network: dict[str, Any], given: set[str]) -> None:
    """Refuse, before the slow steps, a parent whose weights cannot load into ``network`` (the library config the
    training builds, with the kind's ``inherited_settings`` taken from the parent)."""
    kind = parent.folder.kind
    check_fine_tune(kind, parent.folder.config, network, parent_name=parent.label, given=given)
    if kind.uses_percentiles and parent.folder.percentiles_source == "default" and not set(PERCENTILES) <= given:
        log.warning(
            "%s does not record its normalisation percentiles; fine-tuning with %s %s/%s (pass --percentile-low and "
            "--percentile-high if it was trained with others)",
            parent.record.path,
            kind.default_percentiles_origin,
            *parent.folder.percentiles,
        )


def inherited_network(parent: Optional[Parent]) -> dict[str, Any]:
    """The library config values a fine-tuned network takes from its parent as they are (the kind's
    ``inherited_settings`` the parent's config.json holds); empty without a parent."""
    if parent is None:
        return {}
    config = parent.folder.config
    return {k: config[k] for k in parent.folder.kind.inherited_settings if k in config}


def load_parent_weights(keras_model, parent: Parent) -> None:
    """Load the parent's weights into the network about to be trained (built with the parent's settings, so the
    layers match one to one)."""
    path = parent.folder.weights_path
    try:
        keras_model.load_weights(str(path))
    except Exception as e:  # h5py and Keras raise many types for weights that do not fit
        first = str(e).splitlines()[0] if str(e) else ""
        raise TrainingError(
            f"the weights of {parent.label} ({path.name}) do not load into the network built from its config.json "
            f"({type(e).__name__}: {first[:200]}): the weights belong to another network or are damaged; copy the "
            "parent again, whole, or train from scratch"
        ) from None
    log.info("starting from the weights of %s (%s)", parent.record.describe(), path.name)
