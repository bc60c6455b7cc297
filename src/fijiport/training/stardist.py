"""``fijiport train stardist``: stardist's StarDist2D/3D with augmentation and threshold optimisation."""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__
from ..artifacts.data_folder import load_stardist_manifest
from ..artifacts.model_folder import (
    HISTORY_CSV,
    LOSS_PNG,
    THRESHOLDS_JSON,
    Normalization,
    TrainingProgress,
    TrainingRecord,
    write_thresholds,
    write_training_config,
    write_training_record,
)
from ..axes import spatial_axes
from ..calibration import median_pixel_size
from ..config.loading import validate_config
from ..config.stardist import StardistTrainConfig
from ..data.labels import object_stats
from ..errors import ConfigError, DataError, UsageError
from ..files import check_output, read_tiff
from ..kinds.stardist import normalize_image
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


def make_augmenter(rng: np.random.Generator, n_spatial: int):
    """Flips and 90° rotations in the YX plane (image and mask together), and intensity scale/shift."""

    def augment(x: np.ndarray, y: np.ndarray):
        yx = (n_spatial - 2, n_spatial - 1)
        if x.shape[yx[0]] == x.shape[yx[1]]:
            k = int(rng.integers(4))
            x, y = np.rot90(x, k, axes=yx), np.rot90(y, k, axes=yx)
        for ax in range(n_spatial):
            if rng.random() < 0.5:
                x, y = np.flip(x, ax), np.flip(y, ax)
        x = x * rng.uniform(0.6, 2.0) + rng.uniform(-0.2, 0.2)
        return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)

    return augment


def train_stardist(
    data_dir: Path,
    model_dir: Path,
    config: Optional[StardistTrainConfig] = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    init_from: Optional[Path] = None,
    progress: Optional[Callable[[TrainProgress], None]] = None,
) -> TrainResult:
    """Train StarDist on ``data_dir/train`` and write a standard stardist model folder
    (``config.json``, ``weights_best.h5``, ``weights_last.h5``, ``thresholds.json``) plus the resolved
    ``fijiport_config.yaml``, ``history.csv``, ``loss.png`` and ``fijiport_training.json``.

    As for CARE, checkpoints are atomic and ``resume=True`` continues an interrupted run from its last
    saved epoch up to ``config.epochs`` (stardist restarts its learning-rate schedule there).

    ``init_from`` (a StarDist model folder, fijiport's or stardist's own such as ``2D_versatile_fluo``, or a
    StarDist package) starts from that model's weights (fine-tuning): the network settings, normalisation
    percentiles and thresholds not set in ``config`` are the parent's, the learning rate defaults to
    :data:`~fijiport.config.training.FINE_TUNE_LEARNING_RATE`, and a parent whose network cannot take the data
    (dimensions, channels, rays, grid, depth, filters, kernel) is refused before any slow step.

    Parameters
    ----------
    data_dir
        The data folder written by ``prepare_stardist``.
    model_dir
        The model folder to write.
    config
        The training options (defaults: :class:`~fijiport.config.stardist.StardistTrainConfig`); written out
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
    config = config or StardistTrainConfig()
    given = set(config.model_fields_set)
    with open_parent(init_from, "stardist") as parent:
        return _train_stardist(
            Path(data_dir), Path(model_dir), config, given, parent, overwrite=overwrite, resume=resume, progress=progress
        )


def _train_stardist(
    data_dir: Path,
    model_dir: Path,
    config: StardistTrainConfig,
    given: set[str],
    parent: Optional[Parent],
    *,
    overwrite: bool,
    resume: bool,
    progress: Optional[Callable[[TrainProgress], None]],
) -> TrainResult:
    manifest = load_stardist_manifest(data_dir)
    state = TrainingProgress()
    if resume:
        config, state = resume_state(model_dir, config, "stardist")
    if config.axes is not None and config.axes != manifest.axes:
        raise ConfigError(f"--axes {config.axes} differs from the data folder's axes {manifest.axes}")
    axes = manifest.axes
    spatial = spatial_axes(axes)
    n_dim = len(spatial)
    train_items = [r for r in manifest.items if r.split == "train"]
    n_channel = train_items[0].image.shape[axes.index("C")] if "C" in axes and train_items else 1
    if parent is not None:
        config = fine_tune_config(config, given, parent, dict(n_dim=n_dim, n_channel_in=n_channel))
        state.parent = parent.record
    config = validate_config(StardistTrainConfig, {**config.model_dump(), "axes": manifest.axes}, source="options")
    thresholds_setting = _thresholds_setting(config, parent)
    if parent is not None:
        network = _network(config, n_dim, n_channel, config.n_rays, config.grid, parent)
        check_parent_fits(parent, network, given)
    if not resume:
        check_output(model_dir, overwrite)
    started = time.monotonic()

    from .._tf import legacy_tensorflow, quiet_stdout

    tf = legacy_tensorflow(gpu_memory_growth=config.gpu_memory_growth)
    from stardist import calculate_extents, fill_label_holes
    from stardist.models import Config2D, Config3D, StarDist2D, StarDist3D

    names = manifest.names("train")
    if progress:
        progress(TrainProgress("patches"))
    X, Y, samples = [], [], []  # samples: the name each image of X comes from (a time-lapse gives one per frame)
    frame_axes = axes.replace("T", "")
    for n in names:  # a time-lapse's frames are images of their own, each normalised on its own (as predict does)
        x = normalize_image(read_tiff(manifest.input_path(data_dir, "train", n)), axes, config.percentile_low, config.percentile_high)
        y = read_tiff(manifest.target_path(data_dir, "train", n))
        if "T" in axes:
            X += list(np.moveaxis(x, axes.index("T"), 0))
            Y += [fill_label_holes(frame) for frame in y]
            samples += [f"{n} (frame {k + 1})" for k in range(len(y))]
        else:
            X.append(x)
            Y.append(fill_label_holes(y))
            samples.append(n)
    if len(X) < 2:
        raise DataError(
            f"{data_dir} has {len(X)} training image(s); StarDist needs at least 2 "
            "(one is kept for validation and threshold optimisation): add images or lower --test-fraction"
        )
    if "C" in frame_axes:
        X = [np.moveaxis(x, frame_axes.index("C"), -1) for x in X]

    seed_everything(tf, config.seed)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(X))
    n_val = max(1, round(config.validation_fraction * len(X)))
    val_idx, trn_idx = order[:n_val], order[n_val:]
    X_val, Y_val = [X[i] for i in val_idx], [Y[i] for i in val_idx]
    X_trn, Y_trn = [X[i] for i in trn_idx], [Y[i] for i in trn_idx]

    extents = calculate_extents(Y)
    anisotropy = tuple(float(np.max(extents) / e) for e in extents)
    if config.grid is not None:
        grid = tuple(config.grid)
    elif n_dim == 2:
        grid = (2, 2)
    else:
        grid = tuple(1 if a > 1.5 else 2 for a in anisotropy)
    n_rays = config.n_rays or (32 if n_dim == 2 else 96)
    div_by = [2**config.unet_depth * g for g in grid]
    min_shape = [min(y.shape[i] for y in Y) for i in range(n_dim)]
    patch_size = _patch_size(config.patch_size, min_shape, div_by, spatial, n_dim)
    config = config.model_copy(update={"patch_size": patch_size, "grid": list(grid), "n_rays": n_rays})

    tensorboard = config.tensorboard
    if tensorboard is None:
        tensorboard = importlib.util.find_spec("tensorboard") is not None
    # the values used, for fijiport_config.yaml
    config = config.model_copy(
        update={
            "tensorboard": tensorboard,
            "learning_rate": config.learning_rate_for(parent is not None),
            "thresholds": thresholds_setting,
        }
    )
    network = _network(config, n_dim, n_channel, n_rays, list(grid), parent)
    common: dict[str, Any] = dict(
        **{k: v for k, v in network.items() if k not in ("n_dim", "n_rays", "n_classes")},
        train_patch_size=tuple(patch_size),
        train_epochs=config.epochs,
        train_steps_per_epoch=config.steps_per_epoch,
        train_learning_rate=config.learning_rate,
        train_batch_size=config.batch_size,
        train_tensorboard=tensorboard,
        use_gpu=False,
    )
    with quiet_stdout():
        if n_dim == 2:
            sd_config, cls = Config2D(n_rays=n_rays, **common), StarDist2D
        else:
            sd_config, cls = Config3D(rays=_rays(n_rays, anisotropy, parent), anisotropy=anisotropy, **common), StarDist3D
        model = start_model(cls, sd_config, model_dir, overwrite=overwrite, resume=resume, state=state, outputs=(THRESHOLDS_JSON,))
        if parent is not None:
            load_parent_weights(model.keras_model, parent)
    write_training_config(model_dir, config, "stardist")  # first, so an interrupted run can be resumed
    done = state.epochs_done
    model.callbacks = training_callbacks(
        tf, model.callbacks, model_dir, state, epochs=config.epochs, steps=config.steps_per_epoch, progress=progress, offset=done
    )
    augmenter = make_augmenter(np.random.default_rng(config.seed + 1 + done), n_dim) if config.augment else None
    with quiet_stdout(), fit_guard(tf, "stardist", state, config.epochs, data_dir, model_dir):
        model.train(
            X_trn,
            Y_trn,
            validation_data=(X_val, Y_val),
            augmenter=augmenter,
            epochs=config.epochs - done,
            steps_per_epoch=config.steps_per_epoch,
        )
    hist = state.history
    check_losses_finite(state)
    if thresholds_setting == "optimize":
        if progress:
            progress(TrainProgress("thresholds"))
        with quiet_stdout():
            thresholds = model.optimize_thresholds(X_val, Y_val, optimize_kwargs=dict(verbose=0))
        if not (model_dir / THRESHOLDS_JSON).is_file():
            write_thresholds(model_dir, thresholds)
    else:
        thresholds = {"prob": float(thresholds_setting[0]), "nms": float(thresholds_setting[1])}
        write_thresholds(model_dir, thresholds)

    write_history_csv(hist, model_dir / HISTORY_CSV)
    plot_history(hist, model_dir / LOSS_PNG, title=f"StarDist {model_dir.name}")
    seconds = time.monotonic() - started
    write_training_record(
        model_dir,
        TrainingRecord(
            kind="stardist",
            fijiport_version=__version__,
            tensorflow_version=tf.__version__,
            data_dir=str(data_dir.resolve()),
            train_images=[samples[i] for i in trn_idx],
            validation_images=[samples[i] for i in val_idx],
            test_images=manifest.names("test"),
            axes=axes,
            normalization=Normalization(percentile_low=config.percentile_low, percentile_high=config.percentile_high),
            thresholds={"prob": float(thresholds["prob"]), "nms": float(thresholds["nms"])},
            anisotropy=list(anisotropy),
            object_stats=object_stats(Y),
            grid=list(grid),
            n_rays=n_rays,
            best_val_loss=float(min(hist["val_loss"])) if hist.get("val_loss") else None,
            seconds=round(seconds, 1),
            epoch_seconds=state.epoch_seconds,
            steps_per_second=steps_per_second(state, config.steps_per_epoch),
            parent=state.parent,
            pixel_size_um=median_pixel_size([r.image.pixel_size_um for r in manifest.items if r.split == "train"]),
        ),
    )
    if progress:
        progress(TrainProgress("done"))
    return TrainResult(model_dir, config, hist, len(X_trn), len(X_val), seconds)


def _network(
    config: StardistTrainConfig, n_dim: int, n_channel: int, n_rays: Optional[int], grid: Optional[list[int]], parent: Optional[Parent]
) -> dict[str, Any]:
    """The stardist config values of the network (``config.json`` keys), with the parent's architecture details."""
    return dict(
        n_dim=n_dim,
        n_channel_in=n_channel,
        n_rays=n_rays,
        grid=tuple(grid) if grid is not None else None,
        unet_n_depth=config.unet_depth,
        unet_kernel_size=(config.unet_kernel_size,) * n_dim,
        unet_n_filter_base=config.unet_first_filters,
        n_classes=None,
        **inherited_network(parent),
    )


def _rays(n_rays: int, anisotropy, parent: Optional[Parent]):
    """3D rays: a parent's own (its dist channels keep their directions), else a golden spiral for the objects'
    anisotropy."""
    from stardist import Rays_GoldenSpiral
    from stardist.rays3d import rays_from_json

    rays_json = parent.folder.config.get("rays_json") if parent is not None else None
    if rays_json:
        return rays_from_json(rays_json)
    return Rays_GoldenSpiral(n_rays, anisotropy=anisotropy)


def _thresholds_setting(config: StardistTrainConfig, parent: Optional[Parent]):
    """``optimize`` or the [prob, nms] to write: ``config.thresholds`` resolved (the parent's by default when
    fine-tuning from a model that has them)."""
    setting = config.thresholds
    if setting is None:
        setting = "parent" if parent is not None and parent.folder.thresholds is not None else "optimize"
        if parent is not None and setting == "optimize":
            log.info("%s has no thresholds.json; the thresholds are optimised on the validation images", parent.record.path)
        elif parent is not None:
            parent.record.inherited = sorted({*parent.record.inherited, "thresholds"})
    if setting == "parent":
        if parent is None:
            raise UsageError("--thresholds parent keeps the thresholds of the model given with --init-from; give --init-from MODEL")
        if parent.folder.thresholds is None:
            raise ConfigError(f"{parent.label} has no thresholds.json; use --thresholds optimize, or give them: --thresholds PROB,NMS")
        return [parent.folder.thresholds["prob"], parent.folder.thresholds["nms"]]
    return setting


def _patch_size(requested, min_shape, div_by, spatial, n_dim) -> list[int]:
    if requested is not None:
        too_big = [(a, p, s) for a, p, s in zip(spatial, requested, min_shape) if p > s]
        if too_big:
            detail = ", ".join(f"{a}: patch {p} > image {s}" for a, p, s in too_big)
            raise ConfigError(f"patch_size {requested} does not fit the smallest training image ({detail})")
        return list(requested)
    default = [256, 256] if n_dim == 2 else [48, 96, 96]
    size = []
    for a, p, s, d in zip(spatial, default, min_shape, div_by):
        fitted = min(p, s // d * d)
        if fitted < d:
            raise DataError(
                f"training images are {s} pixels along {a}, fewer than the {d} this network needs; "
                "use larger images, a smaller --unet-depth or a smaller --grid"
            )
        size.append(fitted)
    return size
