"""``fijiport train n2v``: Noise2Void with the n2v package (the implementation ZeroCostDL4Mic and the N2V Fiji
plugin use), on the noisy images alone, with fijiport's progress, records, atomic checkpoints and resume.

The training loop is n2v's own (its ``N2V_DataWrapper`` masks the blind-spot pixels, its pixel manipulators replace
them, its loss scores them), run through Keras' ``fit`` with fijiport's callbacks: n2v's ``train`` cannot resume, and
adds a TensorBoard-image callback whatever the config says, which needs the tensorboard package TensorFlow 2.21 no
longer installs. The network is n2v's U-Net with one net for all channels (``single_net_per_channel`` off): n2v
0.3.3's per-channel nets are fed through late-bound Lambda slices, so every one of them sees the last channel.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__
from ..artifacts.data_folder import load_n2v_manifest
from ..artifacts.model_folder import (
    HISTORY_CSV,
    LOSS_PNG,
    WEIGHTS_BEST,
    WEIGHTS_LAST,
    WEIGHTS_NOW,
    Normalization,
    PatchCounts,
    TrainingProgress,
    TrainingRecord,
    write_training_config,
    write_training_record,
)
from ..axes import spatial_axes
from ..calibration import median_pixel_size
from ..config.n2v import N2vTrainConfig
from ..errors import ConfigError, DataError, TrainingError
from ..files import check_output, read_tiff
from ..kinds.n2v import import_n2v, mean_std
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
    return [64, 64] if n_spatial == 2 else [16, 64, 64]


def train_n2v(
    data_dir: Path,
    model_dir: Path,
    config: Optional[N2vTrainConfig] = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    init_from: Optional[Path] = None,
    progress: Optional[Callable[[TrainProgress], None]] = None,
) -> TrainResult:
    """Train Noise2Void on the noisy images of ``data_dir`` (``prepare n2v``) and write an n2v model folder.

    Parameters
    ----------
    data_dir : written by ``fijiport prepare n2v``; training images in ``train/``, validation images (if any) in
        ``validation/`` (else a share of the training patches validates).
    model_dir : n2v's own layout (``config.json`` with the dataset's means and stds, ``weights_best.h5``,
        ``weights_last.h5``, loadable with ``n2v.models.N2V(None, name, basedir)``) plus fijiport's records.
    config : patch size, blind spot, network, schedule (:class:`~fijiport.config.n2v.N2vTrainConfig`).
    overwrite, resume : replace an existing model folder; continue an interrupted run up to ``config.epochs``.
    init_from : an N2V model folder (fijiport's or n2v's own) or a package exported by fijiport to fine-tune: training
        starts from its weights, the network settings not set in ``config`` and its mean and std (``normalization``)
        are the parent's, the learning rate defaults to :data:`~fijiport.config.training.FINE_TUNE_LEARNING_RATE`,
        and a parent whose network cannot take the data is refused before any slow step, naming what differs.
    progress : called with :class:`TrainProgress` events (patches, steps, epochs).

    Returns
    -------
    TrainResult : the model folder, the config used, the loss history, patch counts and seconds.
    """
    check_init_from(init_from, resume)
    config = config or N2vTrainConfig()
    given = set(config.model_fields_set)
    with open_parent(init_from, "n2v") as parent:
        return _train_n2v(Path(data_dir), Path(model_dir), config, given, parent, overwrite=overwrite, resume=resume, progress=progress)


def _train_n2v(
    data_dir: Path,
    model_dir: Path,
    config: N2vTrainConfig,
    given: set[str],
    parent: Optional[Parent],
    *,
    overwrite: bool,
    resume: bool,
    progress: Optional[Callable[[TrainProgress], None]],
) -> TrainResult:
    manifest = load_n2v_manifest(data_dir)
    state = TrainingProgress()
    if resume:
        config, state = resume_state(model_dir, config, "n2v")
    if config.axes is not None and config.axes != manifest.axes:
        raise ConfigError(f"--axes {config.axes} differs from the data folder's axes {manifest.axes}; drop --axes")
    config = N2vTrainConfig.model_validate({**config.model_dump(), "axes": manifest.axes})
    axes = manifest.axes
    spatial = spatial_axes(axes)
    train_names = manifest.names("train")
    if not train_names:
        raise DataError(f"{data_dir} has no training images; run `fijiport prepare n2v` with smaller fractions")
    train = [_as_samples(read_tiff(manifest.input_path(data_dir, "train", n)), axes) for n in train_names]
    val_names = manifest.names("validation")
    validation = [_as_samples(read_tiff(manifest.input_path(data_dir, "validation", n)), axes) for n in val_names]
    n_channels = train[0].shape[-1]
    if parent is not None:
        config = fine_tune_config(config, given, parent, dict(n_dim=len(spatial), n_channel_in=n_channels))
        if "normalization" not in given:
            config = config.model_copy(update={"normalization": "parent"})
        state.parent = parent.record
    elif config.normalization == "parent" and not resume:
        raise ConfigError("--normalization parent takes the mean and std of the model given with --init-from; give --init-from too")
    config = config.model_copy(update={"learning_rate": config.learning_rate_for(parent is not None),
                                       "normalization": config.normalization or "data"})  # fmt: skip
    network: dict[str, Any] = dict(
        n_dim=len(spatial),
        n_channel_in=n_channels,
        unet_n_depth=config.unet_depth,
        unet_n_first=config.unet_first_filters,
        unet_kern_size=config.unet_kernel_size,
        batch_norm=config.batch_norm,
        single_net_per_channel=False,
        **inherited_network(parent),
    )
    if parent is not None:
        check_parent_fits(parent, network, given)
    if not resume:
        check_output(model_dir, overwrite)
    started = time.monotonic()

    from .._tf import legacy_tensorflow, quiet_stdout

    tf = legacy_tensorflow(gpu_memory_growth=config.gpu_memory_growth)
    n2v = import_n2v()

    min_shape = [min(x.shape[1 + i] for x in train + validation) for i in range(len(spatial))]
    patch_size = _patch_size(config.patch_size, min_shape, 2**config.unet_depth, spatial)
    for name, x in zip(train_names + val_names, train + validation):
        inside = x.shape[1:-1]
        if not (all(p < s for p, s in zip(patch_size, inside)) or list(inside) == list(patch_size)):
            raise DataError(
                f"{name} is {list(inside)} ({spatial}): n2v cuts patches of {patch_size} that fit strictly inside each image "
                "(or images exactly that size); use a smaller --patch-size"
            )
    config = config.model_copy(update={"patch_size": patch_size})

    if progress:
        progress(TrainProgress("patches"))
    seed_everything(tf, config.seed)
    augment = config.augment and patch_size[-1] == patch_size[-2]
    if config.augment and not augment:
        log.warning("patch %s is not square in Y and X: n2v augments square patches only, so none are augmented", patch_size)
    with quiet_stdout():
        datagen = n2v.N2V_DataGenerator()
        X = datagen.generate_patches_from_list(train, shape=tuple(patch_size), augment=augment)
        X_val = datagen.generate_patches_from_list(validation, shape=tuple(patch_size), augment=False) if validation else None
    if X_val is None:  # too few files for validation images: held-out patches validate
        order = np.random.default_rng(config.seed).permutation(len(X))
        n_val = max(1, round(config.validation_fraction * len(X)))
        if len(X) - n_val < 1:
            raise DataError(
                f"the training images give only {len(X)} patch(es) of {patch_size}, too few to split into training and "
                "validation patches; use larger (or more) images, or a smaller --patch-size"
            )
        X, X_val = X[order[n_val:]], X[order[:n_val]]
    log.info("%d training and %d validation patches of shape %s", len(X), len(X_val), X.shape[1:])

    tensorboard = config.tensorboard
    if tensorboard is None:
        tensorboard = importlib.util.find_spec("tensorboard") is not None
    elif tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("--tensorboard (tensorboard: true in the config) needs the tensorboard package: pip install tensorboard")
    config = config.model_copy(update={"tensorboard": tensorboard})

    normalisation = {}
    if parent is not None and config.normalization == "parent":
        normalisation = _parent_normalisation(parent, X)
        parent.record.inherited = sorted({*parent.record.inherited, "normalization"})
    n2v_config = n2v.N2VConfig(
        X,
        **{k: v for k, v in network.items() if k not in ("n_dim", "n_channel_in")},
        **normalisation,
        train_epochs=config.epochs,
        train_steps_per_epoch=config.steps_per_epoch,
        train_batch_size=config.batch_size,
        train_learning_rate=config.learning_rate,
        train_tensorboard=tensorboard,
        n2v_perc_pix=config.masked_pixel_percent,
        n2v_patch_shape=tuple(patch_size),
        n2v_manipulator=config.manipulator,
        n2v_neighborhood_radius=config.neighborhood_radius,
    )
    with quiet_stdout():
        model: Any = start_model(n2v.N2V, n2v_config, model_dir, overwrite=overwrite, resume=resume, state=state)
        if parent is not None:
            load_parent_weights(model.keras_model, parent)
    write_training_config(model_dir, config, "n2v")  # first, so an interrupted run can be resumed
    cfg = model.config
    means = np.array([float(m) for m in cfg.means], ndmin=X.ndim, dtype=np.float32)
    stds = np.array([float(s) for s in cfg.stds], ndmin=X.ndim, dtype=np.float32)
    X, X_val = (X - means) / stds, (X_val - means) / stds
    manipulator = n2v.manipulator(cfg.n2v_manipulator, cfg.n2v_neighborhood_radius)
    with quiet_stdout():
        data = n2v.N2V_DataWrapper(
            X, np.concatenate((X, np.zeros_like(X)), axis=-1), cfg.train_batch_size, length=config.epochs * config.steps_per_epoch,
            perc_pix=cfg.n2v_perc_pix, shape=tuple(cfg.n2v_patch_shape), value_manipulation=manipulator,
        )  # fmt: skip
        Y_val = np.concatenate((X_val, np.zeros_like(X_val)), axis=-1)
        with contextlib.redirect_stderr(io.StringIO()):  # n2v's own tqdm bar would break fijiport's
            n2v.manipulate_val_data(X_val, Y_val, perc_pix=cfg.n2v_perc_pix, shape=X_val.shape[1:-1], value_manipulation=manipulator)
    callbacks = training_callbacks(
        tf, model.callbacks, model_dir, state, epochs=config.epochs, steps=config.steps_per_epoch, progress=progress
    )
    with quiet_stdout():
        with fit_guard(tf, "n2v", state, config.epochs, data_dir, model_dir):
            keras_fit(
                model.keras_model, data, (X_val, Y_val), state, epochs=config.epochs, steps=config.steps_per_epoch, callbacks=callbacks
            )
        _training_finished(model, model_dir)
    hist = state.history
    check_losses_finite(state)
    if not (model_dir / WEIGHTS_BEST).is_file():
        raise TrainingError(f"training finished without writing {model_dir / WEIGHTS_BEST}")
    write_history_csv(hist, model_dir / HISTORY_CSV)
    plot_history(hist, model_dir / LOSS_PNG, title=f"N2V {model_dir.name}")
    seconds = time.monotonic() - started
    write_training_record(
        model_dir,
        TrainingRecord(
            kind="n2v",
            fijiport_version=__version__,
            tensorflow_version=tf.__version__,
            data_dir=str(data_dir.resolve()),
            train_images=train_names,
            validation_images=val_names,
            test_images=manifest.names("test"),
            axes=axes,
            patches=PatchCounts(train=len(X), validation=len(X_val), shape=list(X.shape[1:])),
            normalization=Normalization(means=[float(m) for m in cfg.means], stds=[float(s) for s in cfg.stds]),
            best_val_loss=float(min(hist["val_loss"])) if hist.get("val_loss") else None,
            seconds=round(seconds, 1),
            epoch_seconds=state.epoch_seconds,
            steps_per_second=steps_per_second(state, config.steps_per_epoch),
            pixel_size_um=median_pixel_size([r.image.pixel_size_um for r in manifest.items if r.split == "train"]),
            parent=state.parent,
        ),
    )
    return TrainResult(model_dir, config, hist, len(X), len(X_val), seconds)


def _parent_normalisation(parent: Parent, X: np.ndarray) -> dict[str, list[str]]:
    """The parent's means and stds for n2v's config (as strings, n2v's form), with a warning when the training
    patches' own differ much from them: the network then sees its inputs off the scale it learnt."""
    means, stds = mean_std(parent.folder)
    axes = tuple(range(X.ndim - 1))
    data_means, data_stds = X.mean(axis=axes), X.std(axis=axes)
    off = [
        f"channel {c}: mean {dm:.4g} (parent {pm:.4g}), std {ds:.4g} (parent {ps:.4g})"
        for c, (dm, pm, ds, ps) in enumerate(zip(data_means, means, data_stds, stds))
        if abs(dm - pm) > 0.5 * ps or not 0.67 < ds / ps < 1.5
    ]
    if off:
        log.warning(
            "the training images are on another intensity scale than %s was trained on (%s): its mean and std normalise "
            "them, so the network starts off its scale; pass --normalization data to normalise with the data's own "
            "(n2v's way), or check that these are the right images",
            parent.label,
            "; ".join(off),
        )
    config = parent.folder.config  # n2v's own strings, as they are: the child's normalisation is the parent's exactly
    return {"means": [str(m) for m in config["means"]], "stds": [str(s) for s in config["stds"]]}


def _training_finished(model, model_dir: Path) -> None:
    """What n2v's own ``train`` does after ``fit`` (csbdeep's ``_training_finished`` reads a config key n2v lacks): keep
    the last epoch's weights as ``weights_last.h5`` (written whole or not at all), drop ``weights_now.h5``, and load
    the best ones."""
    from ..files import atomic_file

    with atomic_file(model_dir / WEIGHTS_LAST, overwrite=True) as tmp:
        model.keras_model.save_weights(str(tmp), save_format="h5")
    (model_dir / WEIGHTS_NOW).unlink(missing_ok=True)
    if (model_dir / WEIGHTS_BEST).is_file():
        model.keras_model.load_weights(str(model_dir / WEIGHTS_BEST))


def _as_samples(img: np.ndarray, axes: str) -> np.ndarray:
    """An image as n2v's patch generator takes it: samples first (frames are samples), channels last, float32."""
    from csbdeep.utils import move_image_axes

    x = np.asarray(img, dtype=np.float32)
    if "T" in axes and x.ndim == len(axes) - 1:  # a split of one frame: its T of 1 is dropped when the TIFF is read
        x = np.expand_dims(x, axes.index("T"))
    src = axes if "T" in axes else "S" + axes
    x = x if "T" in axes else x[np.newaxis]
    dst = "S" + spatial_axes(axes) + "C"
    src = src.replace("T", "S")
    if "C" not in src:
        x, src = x[..., np.newaxis], src + "C"
    return move_image_axes(x, src, dst)


def _patch_size(requested: Optional[list[int]], min_shape: list[int], div_by: int, spatial: str) -> list[int]:
    """The requested patch, or the default shrunk to fit: n2v cuts patches that fit strictly inside every image."""
    if requested is not None:
        too_big = [(a, p, s) for a, p, s in zip(spatial, requested, min_shape) if p > s]
        if too_big:
            detail = ", ".join(f"{a}: patch {p} > image {s}" for a, p, s in too_big)
            suggest = [min(p, (s - 1) // div_by * div_by) for p, s in zip(requested, min_shape)]
            raise ConfigError(f"patch_size {requested} does not fit the smallest image ({detail}); try {suggest}")
        return list(requested)
    size = []
    for a, p, s in zip(spatial, default_patch_size(len(spatial)), min_shape):
        fitted = min(p, (s - 1) // div_by * div_by)
        if fitted < div_by:
            raise DataError(f"the images are {s} pixels along {a}, too few for patches of the {div_by} a U-Net of this "
                            "depth needs; use larger images or a smaller --unet-depth")  # fmt: skip
        size.append(fitted)
    return size
