"""``fijiport train care``: patches as csbdeep's ``create_patches`` makes them (streamed, one pair in memory at a
time) → csbdeep ``CARE``, with progress, records and resume."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__
from ..artifacts.data_folder import DataManifest, load_manifest
from ..artifacts.model_folder import (
    HISTORY_CSV,
    LOSS_PNG,
    WEIGHTS_BEST,
    Normalization,
    PatchCounts,
    TrainingProgress,
    TrainingRecord,
    write_training_config,
    write_training_record,
)
from ..axes import spatial_axes
from ..calibration import median_pixel_size
from ..config.care import CareTrainConfig
from ..data.patches import sample_care_patches
from ..errors import ConfigError, DataError, TrainingError
from ..files import available_memory, check_output
from .common import (
    Parent,
    TrainProgress,
    TrainResult,
    check_init_from,
    check_losses_finite,
    check_parent_fits,
    fine_tune_config,
    fit_guard,
    inherited_network,
    keras_fit,
    load_parent_weights,
    open_parent,
    resume_state,
    seed_everything,
    start_model,
    steps_per_second,
    training_callbacks,
)
from .history import plot_history, write_history_csv

log = logging.getLogger(__name__)


def default_patch_size(n_spatial: int) -> list[int]:
    return [128, 128] if n_spatial == 2 else [16, 64, 64]


def fit_patch_size(requested: Optional[list[int]], min_shape: list[int], div_by: int, axes: str) -> list[int]:
    """The patch size to use: the requested one, or the default shrunk to fit the smallest image."""
    spatial = spatial_axes(axes)
    if requested is not None:
        too_big = [(a, p, s) for a, p, s in zip(spatial, requested, min_shape) if p > s]
        if too_big:
            detail = ", ".join(f"{a}: patch {p} > image {s}" for a, p, s in too_big)
            suggest = [min(p, s // div_by * div_by) for p, s in zip(requested, min_shape)]
            raise ConfigError(f"patch_size {requested} does not fit the smallest training image ({detail}); try {suggest}")
        return list(requested)
    size = []
    for a, p, s in zip(spatial, default_patch_size(len(spatial)), min_shape):
        fitted = min(p, s // div_by * div_by)
        if fitted < div_by:
            raise DataError(
                f"training images are {s} pixels along {a}, fewer than the {div_by} a U-Net of this depth needs; "
                "use larger images or a smaller --unet-depth"
            )
        size.append(fitted)
    return size


def train_care(
    data_dir: Path,
    model_dir: Path,
    config: Optional[CareTrainConfig] = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    init_from: Optional[Path] = None,
    progress: Optional[Callable[[TrainProgress], None]] = None,
) -> TrainResult:
    """Train a CARE network on ``data_dir/train`` and write a standard csbdeep model folder.

    ``model_dir`` gets ``config.json``, ``weights_best.h5``, ``weights_last.h5`` (csbdeep's own
    layout, loadable with ``csbdeep.models.CARE(None, name, basedir)``) plus the resolved
    ``fijiport_config.yaml``, ``history.csv``, ``loss.png`` and ``fijiport_training.json``.

    Checkpoints are written atomically, so an interrupted run (Ctrl-C) leaves the last good
    ``weights_best.h5``; ``resume=True`` continues such a run from its last saved epoch up to
    ``config.epochs`` with the network and patch settings recorded in the model folder.

    ``init_from`` (a CARE model folder, fijiport's or csbdeep's, or a package exported by fijiport) starts
    from that model's weights instead of random ones (fine-tuning): the network settings and normalisation
    percentiles not set in ``config`` are the parent's, the learning rate defaults to
    :data:`~fijiport.config.training.FINE_TUNE_LEARNING_RATE`, and a parent whose network cannot take the data
    is refused before any slow step, naming what differs. The training record names the parent.

    Parameters
    ----------
    data_dir
        The data folder written by ``prepare_care``.
    model_dir
        The model folder to write.
    config
        The training options (defaults: :class:`~fijiport.config.care.CareTrainConfig`); written out
        as ``fijiport_config.yaml``.
    overwrite
        Start anew in an existing ``model_dir`` (its earlier weights are removed).
    resume
        Continue an interrupted run in ``model_dir`` up to ``config.epochs``.
    init_from
        A parent model (folder or package) to fine-tune.
    progress
        Called with a :class:`~fijiport.training.common.TrainProgress` for patch sampling, every step and every
        epoch (e.g. :class:`fijiport.notebook.TrainingMonitor`, which plots the loss).

    Returns
    -------
    TrainResult
        The model folder, the resolved config, the loss history, the patch counts and the seconds it took.
    """
    check_init_from(init_from, resume)
    config = config or CareTrainConfig()
    given = set(config.model_fields_set)
    with open_parent(init_from, "care") as parent:
        return _train_care(Path(data_dir), Path(model_dir), config, given, parent, overwrite=overwrite, resume=resume, progress=progress)


def _train_care(
    data_dir: Path,
    model_dir: Path,
    config: CareTrainConfig,
    given: set[str],
    parent: Optional[Parent],
    *,
    overwrite: bool,
    resume: bool,
    progress: Optional[Callable[[TrainProgress], None]],
) -> TrainResult:
    manifest = load_manifest(data_dir)
    state = TrainingProgress()
    if resume:
        config, state = resume_state(model_dir, config, "care")
    train_names = manifest.names("train")
    if not train_names:
        raise DataError(f"{data_dir} has no training images; run `fijiport prepare` with a smaller --test-fraction")
    axes = manifest.axes
    n_dim = len(spatial_axes(axes))
    shapes = [p.low.shape for p in manifest.pairs if p.split == "train"]
    n_channels, n_out = manifest.channel_counts()  # prepare checked that every pair has them
    if parent is not None:
        data = dict(n_dim=n_dim, n_channel_in=n_channels, n_channel_out=n_out)
        config = fine_tune_config(config, given, parent, data)
        state.parent = parent.record
    config = _resolve_config(config, manifest)
    network: dict[str, Any] = dict(
        n_dim=n_dim,
        n_channel_in=n_channels,
        n_channel_out=n_out,
        probabilistic=config.probabilistic,
        unet_n_depth=config.unet_depth,
        unet_kern_size=config.kernel_size_for(n_dim),
        unet_n_first=config.unet_first_filters,
        **inherited_network(parent),
    )
    if parent is not None:
        check_parent_fits(parent, network, given)
    if not resume:
        check_output(model_dir, overwrite)
    started = time.monotonic()

    from .._tf import legacy_tensorflow, quiet_stdout

    tf = legacy_tensorflow(gpu_memory_growth=config.gpu_memory_growth)
    from csbdeep.internals import train as csb_train
    from csbdeep.models import CARE, Config
    from csbdeep.utils import move_image_axes

    div_by = 2**config.unet_depth
    spatial_idx = [i for i, a in enumerate(axes) if a in "ZYX"]
    min_shape = [min(s[i] for s in shapes) for i in spatial_idx]
    patch_size = fit_patch_size(config.patch_size, min_shape, div_by, axes)
    config = config.model_copy(update={"patch_size": patch_size})

    if progress:
        progress(TrainProgress("patches"))
    seed_everything(tf, config.seed)
    pairs = [(manifest.input_path(data_dir, "train", n), manifest.target_path(data_dir, "train", n)) for n in sorted(train_names)]
    patch_shape = tuple(n_channels if a == "C" else patch_size[spatial_axes(axes).index(a)] for a in axes if a != "T")
    check_patch_memory(manifest, train_names, axes, patch_shape, config.patches_per_image)
    X, Y, xy_axes = sample_care_patches(
        pairs,
        axes,
        patch_shape,
        config.patches_per_image,
        (config.percentile_low, config.percentile_high),
        gt_axes=manifest.gt_axes,
        progress=progress and (lambda i, n: progress(TrainProgress("patches", step=i, steps=n))),
    )
    net_axes = "S" + spatial_axes(axes) + "C"
    X = move_image_axes(X, xy_axes, net_axes)
    Y = move_image_axes(Y, xy_axes, net_axes)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(X))
    n_val = max(1, round(config.validation_fraction * len(X)))
    if len(X) - n_val < 1:
        raise DataError(f"only {len(X)} patches were sampled; increase --patches-per-image")
    val_idx, train_idx = order[:n_val], order[n_val:]
    X_val, Y_val, X_train, Y_train = X[val_idx], Y[val_idx], X[train_idx], Y[train_idx]
    log.info("%d training and %d validation patches of shape %s", len(X_train), len(X_val), X.shape[1:])

    tensorboard = config.tensorboard
    if tensorboard is None:
        tensorboard = importlib.util.find_spec("tensorboard") is not None
    elif tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard (tensorboard: true in the config) needs the tensorboard package: pip install tensorboard")
    # the values used, not the Nones that stood for defaults: fijiport_config.yaml says what trained the model
    config = config.model_copy(
        update={
            "unet_kernel_size": config.kernel_size_for(n_dim),
            "loss": config.resolved_loss,
            "tensorboard": tensorboard,
            "learning_rate": config.learning_rate_for(parent is not None),
        }
    )

    csb_config = Config(
        net_axes[1:],  # the network's axes (channels last, as csbdeep needs), whatever the files' order (CYX)
        **{k: v for k, v in network.items() if k != "n_dim"},
        train_loss=config.resolved_loss,
        train_epochs=config.epochs,
        train_steps_per_epoch=config.steps_per_epoch,
        train_learning_rate=config.learning_rate,
        train_batch_size=config.batch_size,
        train_tensorboard=tensorboard,
    )
    with quiet_stdout():
        model = start_model(CARE, csb_config, model_dir, overwrite=overwrite, resume=resume, state=state)
        if parent is not None:
            load_parent_weights(model.keras_model, parent)
    write_training_config(model_dir, config, "care")  # first, so an interrupted run can be resumed
    # fit starts at initial_epoch, so its epoch numbers are already the run's own (no offset)
    callbacks = training_callbacks(
        tf, model.callbacks, model_dir, state, epochs=config.epochs, steps=config.steps_per_epoch, progress=progress
    )
    data = csb_train.DataWrapper(X_train, Y_train, config.batch_size, length=config.epochs * config.steps_per_epoch)
    with quiet_stdout():
        with fit_guard(tf, "care", state, config.epochs, data_dir, model_dir):
            keras_fit(
                model.keras_model, data, (X_val, Y_val), state, epochs=config.epochs, steps=config.steps_per_epoch, callbacks=callbacks
            )
        model._training_finished()
    hist = state.history
    check_losses_finite(state)
    if not (model_dir / WEIGHTS_BEST).is_file():
        raise TrainingError(f"training finished without writing {model_dir / WEIGHTS_BEST}")

    write_history_csv(hist, model_dir / HISTORY_CSV)
    plot_history(hist, model_dir / LOSS_PNG, title=f"CARE {model_dir.name}")
    seconds = time.monotonic() - started
    write_training_record(
        model_dir,
        TrainingRecord(
            kind="care",
            fijiport_version=__version__,
            tensorflow_version=tf.__version__,
            data_dir=str(data_dir.resolve()),
            train_images=train_names,
            test_images=manifest.names("test"),
            axes=axes,
            patches=PatchCounts(train=len(X_train), validation=len(X_val), shape=list(X.shape[1:])),
            normalization=Normalization(percentile_low=config.percentile_low, percentile_high=config.percentile_high),
            best_val_loss=float(min(hist["val_loss"])) if hist.get("val_loss") else None,
            seconds=round(seconds, 1),
            epoch_seconds=state.epoch_seconds,
            steps_per_second=steps_per_second(state, config.steps_per_epoch),
            parent=state.parent,
            pixel_size_um=median_pixel_size(manifest.pixel_sizes("train")),
        ),
    )
    return TrainResult(model_dir, config, hist, len(X_train), len(X_val), seconds)


def check_patch_memory(
    manifest: DataManifest, names: list[str], axes: str, patch_shape: tuple[int, ...], per_image: int, available: Optional[int] = None
) -> None:
    """Refuse, before any pixel is read, patches that would not fit in memory (source and target, float32): a
    time-lapse gives ``per_image`` patches from every frame, so long movies multiply them."""
    frames = sum(p.low.shape[axes.index("T")] if "T" in axes else 1 for p in manifest.pairs if p.name in set(names))
    need = 2 * 4 * frames * per_image * int(np.prod(patch_shape))
    free = available if available is not None else available_memory()
    if free is not None and need > free // 2:
        fits = max(1, int(per_image * (free // 2) / need))
        per = "frame" if "T" in axes else "image"
        raise DataError(
            f"{frames} training {per}s × {per_image} patches of {list(patch_shape)} need {need / 1e9:.1f} GB of memory and "
            f"{free / 1e9:.1f} GB are free; lower --patches-per-image to {fits} or less (patches come from every {per})"
        )


def _resolve_config(config: CareTrainConfig, manifest: DataManifest) -> CareTrainConfig:
    if config.axes is not None and config.axes != manifest.axes:
        raise ConfigError(
            f"--axes {config.axes} differs from the data folder's axes {manifest.axes}; "
            "run `fijiport prepare care --axes ...` again or drop --axes"
        )
    resolved = config.model_copy(update={"axes": manifest.axes})
    # re-run the validators with the axes known (patch_size length)
    return CareTrainConfig.model_validate(resolved.model_dump())
