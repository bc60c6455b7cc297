"""``fijiport train care``, ``train stardist`` and ``train n2v``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

from ..artifacts.model_folder import LOSS_PNG
from ..config.care import CareTrainConfig
from ..config.loading import load_yaml_config, merge_options
from ..config.n2v import N2vTrainConfig
from ..config.stardist import StardistTrainConfig
from ..errors import UsageError
from ..training import train_care, train_n2v, train_stardist
from ..training.common import check_init_from
from ._common import FijiportCommand, HelpGroup, err, out, parse_numbers, progress_bar

DATA, NETWORK, TRAINING, SWITCHES = "Data and patches", "Network", "Training", "Switches"
"""Option panels: one table of 20 options is too narrow to read at 80 columns (and a panel holding
``--x/--no-x`` switches gets a column for them)."""

app = typer.Typer(
    cls=HelpGroup, no_args_is_help=True, help="Train CARE, StarDist or Noise2Void networks on a data folder written by `fijiport prepare`."
)


@app.command("care", cls=FijiportCommand)
def care(
    data_dir: Path = typer.Argument(..., help="Data folder written by `fijiport prepare care`.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write (a standard csbdeep model folder).", show_default=False),
    config_file: Optional[Path] = typer.Option(
        None,
        "--config",
        help="YAML file with any of the options below (snake_case keys, e.g. `epochs: 50`); options given on the command line win.",
    ),
    axes: Optional[str] = typer.Option(
        None, "--axes", help="Axes of the images; taken from the data folder when not given.", rich_help_panel=DATA
    ),
    patch_size: Optional[str] = typer.Option(
        None,
        "--patch-size",
        help="Patch size per spatial axis, e.g. 128,128 or 16,64,64; must be divisible by 2**unet-depth. Default: 128×128 (2D) or 16×64×64 (3D), shrunk to fit the images.",
        rich_help_panel=DATA,
    ),
    patches_per_image: Optional[int] = typer.Option(
        None, "--patches-per-image", help="Patches sampled from each training image (default 64).", rich_help_panel=DATA
    ),
    unet_depth: Optional[int] = typer.Option(None, "--unet-depth", help="U-Net resolution levels (default 2).", rich_help_panel=NETWORK),
    unet_first_filters: Optional[int] = typer.Option(
        None, "--unet-first-filters", help="Convolution filters at the first level (default 32).", rich_help_panel=NETWORK
    ),
    unet_kernel_size: Optional[int] = typer.Option(
        None, "--unet-kernel-size", help="Odd convolution kernel size (default 5 in 2D, 3 in 3D).", rich_help_panel=NETWORK
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default 100).", rich_help_panel=TRAINING),
    steps_per_epoch: Optional[int] = typer.Option(
        None, "--steps-per-epoch", help="Parameter updates per epoch (default 400).", rich_help_panel=TRAINING
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Patches per update (default 16); lower it when the GPU runs out of memory.", rich_help_panel=TRAINING
    ),
    learning_rate: Optional[float] = typer.Option(
        None,
        "--learning-rate",
        help="Initial Adam learning rate (default 0.0004; 0.0001 when fine-tuning with --init-from).",
        rich_help_panel=TRAINING,
    ),
    loss: Optional[str] = typer.Option(
        None, "--loss", help="mae (default), mse, or laplace with --probabilistic.", rich_help_panel=TRAINING
    ),
    probabilistic: Optional[bool] = typer.Option(
        None,
        "--probabilistic/--no-probabilistic",
        help="Train probabilistic CARE (per-pixel Laplace distribution).",
        rich_help_panel=SWITCHES,
    ),
    validation_fraction: Optional[float] = typer.Option(
        None,
        "--validation-fraction",
        help="Fraction of patches used to monitor training and pick weights_best.h5 (default 0.1).",
        rich_help_panel=DATA,
    ),
    percentile_low: Optional[float] = typer.Option(
        None,
        "--percentile-low",
        help="Lower normalisation percentile (default 2.0); export and Fiji macros reuse it.",
        rich_help_panel=DATA,
    ),
    percentile_high: Optional[float] = typer.Option(
        None, "--percentile-high", help="Upper normalisation percentile (default 99.8).", rich_help_panel=DATA
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Seed of patch sampling, validation split and initial weights (default 0).", rich_help_panel=TRAINING
    ),
    tensorboard: Optional[bool] = typer.Option(
        None,
        "--tensorboard/--no-tensorboard",
        help="Write TensorBoard logs (default: only when tensorboard is installed).",
        rich_help_panel=SWITCHES,
    ),
    gpu_memory_growth: Optional[bool] = typer.Option(
        None,
        "--gpu-memory-growth",
        help="Let TensorFlow take GPU memory as needed instead of all of it (for shared GPUs).",
        rich_help_panel=SWITCHES,
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the weights of an existing model folder."),
    init_from: Optional[Path] = typer.Option(
        None,
        "--init-from",
        help="Start from the weights of this trained CARE model (fine-tuning): a model folder (fijiport's or csbdeep's) "
        "or a bioimage.io package exported by fijiport. Network settings and percentiles not given are the model's; "
        "the learning rate defaults to 0.0001.",
        show_default=False,
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted training in OUTPUT from its last saved epoch up to --epochs (the total), with the settings recorded there.",
    ),
) -> None:
    """Train a CARE network (2D or 3D) with csbdeep.

    Writes config.json, weights_best.h5 and weights_last.h5 (loadable by csbdeep and
    `fijiport export`), plus fijiport_config.yaml (the options used), fijiport_progress.json (what
    --resume continues from), history.csv and loss.png.

    Example: [bold]fijiport train care data -o models/care_nuclei --epochs 50 --patch-size 16,64,64[/]
    """

    cli_values = dict(
        axes=axes,
        patch_size=parse_numbers(patch_size, int, "--patch-size"),
        patches_per_image=patches_per_image,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        unet_depth=unet_depth,
        unet_first_filters=unet_first_filters,
        unet_kernel_size=unet_kernel_size,
        learning_rate=learning_rate,
        loss=loss,
        probabilistic=probabilistic,
        validation_fraction=validation_fraction,
        percentile_low=percentile_low,
        percentile_high=percentile_high,
        seed=seed,
        tensorboard=tensorboard,
        gpu_memory_growth=gpu_memory_growth,
    )
    _check_resume(resume, cli_values, config_file, init_from)
    source = f"options{' and ' + str(config_file) if config_file else ''}"
    config = merge_options(CareTrainConfig, load_yaml_config(config_file), cli_values, source=source)

    with progress_bar() as bar:
        result = train_care(
            data_dir, output, config, overwrite=overwrite, resume=resume, init_from=init_from, progress=_progress_handler(bar)
        )
    err.print(
        f"trained on {result.n_patches_train} patches ({result.n_patches_val} for validation) in {result.seconds:.0f} s; "
        f"best validation loss {result.best_val_loss:.4f}"
    )
    out.print(f"model: {output}")
    out.print(f"loss curve: {output / LOSS_PNG}")


def _check_resume(resume: bool, cli_values: dict, config_file: Optional[Path], init_from: Optional[Path] = None) -> None:
    """--resume continues with the recorded settings to the total --epochs: require that, say what is ignored."""
    check_init_from(init_from, resume)
    if not resume:
        return
    if cli_values.get("epochs") is None:
        raise UsageError("--resume needs --epochs N: the total number of epochs to reach (the interrupted run's own number, or more)")
    ignored = [f"--{k.replace('_', '-')}" for k, v in cli_values.items() if v is not None and k != "epochs"]
    if config_file is not None:
        ignored.append(f"--config {config_file}")
    if ignored:
        logging.getLogger(__name__).warning(
            "--resume continues with the settings recorded in the model folder; ignoring %s", ", ".join(ignored)
        )


def _progress_handler(bar):
    """Turn training progress events into a rich bar per epoch."""
    state: dict = {}

    def on_progress(event) -> None:
        if event.stage == "patches":
            if "patches" not in state:
                state["patches"] = bar.add_task("sampling training patches", total=event.steps or None)
            if event.steps:
                bar.update(
                    state["patches"],
                    total=event.steps,
                    completed=event.step,
                    description=f"sampling training patches: image {event.step}/{event.steps}",
                )
        elif event.stage == "thresholds":
            state["thresholds"] = bar.add_task("optimising thresholds on the validation images", total=None)
        elif event.stage == "done" and "thresholds" in state:
            bar.update(state.pop("thresholds"), total=1, completed=1)
        elif event.stage == "step":
            if "patches" in state:
                bar.update(state.pop("patches"), total=1, completed=1)
            if state.get("epoch") != event.epoch:
                state["epoch"] = event.epoch
                state["task"] = bar.add_task(f"epoch {event.epoch}/{event.epochs}", total=event.steps)
            bar.update(
                state["task"],
                completed=event.step,
                description=f"epoch {event.epoch}/{event.epochs} loss {event.logs.get('loss', float('nan')):.4f}",
            )
        elif event.stage == "epoch":
            val = event.logs.get("val_loss")
            bar.update(
                state["task"],
                completed=event.steps,
                description=f"epoch {event.epoch}/{event.epochs} loss {event.logs.get('loss', float('nan')):.4f}"
                + (f" val {val:.4f}" if val is not None else ""),
            )

    return on_progress


@app.command("stardist", cls=FijiportCommand)
def stardist(
    data_dir: Path = typer.Argument(..., help="Data folder written by `fijiport prepare stardist`.", show_default=False),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Model folder to write (a standard stardist model folder).", show_default=False
    ),
    config_file: Optional[Path] = typer.Option(
        None, "--config", help="YAML file with any of the options below (snake_case keys); options given on the command line win."
    ),
    patch_size: Optional[str] = typer.Option(
        None,
        "--patch-size",
        help="Patch size per spatial axis, e.g. 256,256 or 48,96,96 (default, shrunk to fit the images).",
        rich_help_panel=DATA,
    ),
    n_rays: Optional[int] = typer.Option(None, "--n-rays", help="Rays per object (default 32 in 2D, 96 in 3D).", rich_help_panel=NETWORK),
    thresholds_option: Optional[str] = typer.Option(
        None,
        "--thresholds",
        help="Probability and NMS thresholds: optimize (on the validation images after training; the default from "
        "scratch), parent (the --init-from model's; the default when it has them) or two values PROB,NMS such as 0.5,0.4.",
        rich_help_panel=TRAINING,
    ),
    grid: Optional[str] = typer.Option(
        None,
        "--grid",
        help="Output subsampling per spatial axis, powers of 2, e.g. 2,2 (default 2,2 in 2D; in 3D from the objects' anisotropy).",
        rich_help_panel=NETWORK,
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default 400).", rich_help_panel=TRAINING),
    steps_per_epoch: Optional[int] = typer.Option(
        None, "--steps-per-epoch", help="Parameter updates per epoch (default 100).", rich_help_panel=TRAINING
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Patches per update (default 4).", rich_help_panel=TRAINING),
    unet_depth: Optional[int] = typer.Option(None, "--unet-depth", help="U-Net resolution levels (default 3).", rich_help_panel=NETWORK),
    unet_first_filters: Optional[int] = typer.Option(
        None, "--unet-first-filters", help="Convolution filters at the first level (default 32).", rich_help_panel=NETWORK
    ),
    unet_kernel_size: Optional[int] = typer.Option(
        None, "--unet-kernel-size", help="Odd convolution kernel size (default 3).", rich_help_panel=NETWORK
    ),
    learning_rate: Optional[float] = typer.Option(
        None,
        "--learning-rate",
        help="Initial Adam learning rate (default 0.0003; 0.0001 when fine-tuning with --init-from).",
        rich_help_panel=TRAINING,
    ),
    validation_fraction: Optional[float] = typer.Option(
        None,
        "--validation-fraction",
        help="Fraction of training images for validation and threshold optimisation (default 0.15, at least one image).",
        rich_help_panel=DATA,
    ),
    augment: Optional[bool] = typer.Option(
        None, "--augment/--no-augment", help="Random flips, 90° rotations and intensity changes (default on).", rich_help_panel=SWITCHES
    ),
    percentile_low: Optional[float] = typer.Option(
        None, "--percentile-low", help="Lower normalisation percentile (default 1.0).", rich_help_panel=DATA
    ),
    percentile_high: Optional[float] = typer.Option(
        None, "--percentile-high", help="Upper normalisation percentile (default 99.8).", rich_help_panel=DATA
    ),
    seed: Optional[int] = typer.Option(
        None,
        "--seed",
        help="Seed of the validation split, sampling, augmentation and initial weights (default 0).",
        rich_help_panel=TRAINING,
    ),
    tensorboard: Optional[bool] = typer.Option(
        None,
        "--tensorboard/--no-tensorboard",
        help="Write TensorBoard logs (default: only when tensorboard is installed).",
        rich_help_panel=SWITCHES,
    ),
    gpu_memory_growth: Optional[bool] = typer.Option(
        None, "--gpu-memory-growth", help="Let TensorFlow take GPU memory as needed (for shared GPUs).", rich_help_panel=SWITCHES
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the weights of an existing model folder."),
    init_from: Optional[Path] = typer.Option(
        None,
        "--init-from",
        help="Start from the weights of this trained StarDist model (fine-tuning): a model folder (fijiport's, or "
        "stardist's own such as 2D_versatile_fluo) or a StarDist bioimage.io package. Network settings, percentiles and "
        "thresholds not given are the model's; the learning rate defaults to 0.0001.",
        show_default=False,
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted training in OUTPUT from its last saved epoch up to --epochs (the total), with the settings recorded there.",
    ),
) -> None:
    """Train StarDist (2D or 3D) and optimise its probability and NMS thresholds on validation images.

    Writes config.json, weights_best.h5, weights_last.h5 and thresholds.json (a standard stardist
    model folder), plus fijiport_config.yaml (the options used), fijiport_progress.json (what --resume
    continues from), history.csv and loss.png.

    Example: [bold]fijiport train stardist sd_data -o models/stardist_nuclei --epochs 100[/]
    """

    cli_values = dict(
        n_rays=n_rays,
        thresholds=_thresholds_option(thresholds_option),
        grid=parse_numbers(grid, int, "--grid"),
        patch_size=parse_numbers(patch_size, int, "--patch-size"),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        unet_depth=unet_depth,
        unet_first_filters=unet_first_filters,
        unet_kernel_size=unet_kernel_size,
        learning_rate=learning_rate,
        validation_fraction=validation_fraction,
        augment=augment,
        percentile_low=percentile_low,
        percentile_high=percentile_high,
        seed=seed,
        tensorboard=tensorboard,
        gpu_memory_growth=gpu_memory_growth,
    )
    _check_resume(resume, cli_values, config_file, init_from)
    source = f"options{' and ' + str(config_file) if config_file else ''}"
    config = merge_options(StardistTrainConfig, load_yaml_config(config_file), cli_values, source=source)
    with progress_bar() as bar:
        result = train_stardist(
            data_dir, output, config, overwrite=overwrite, resume=resume, init_from=init_from, progress=_progress_handler(bar)
        )
    thresholds = json.loads((output / "thresholds.json").read_text())
    err.print(
        f"trained on {result.n_patches_train} image(s) ({result.n_patches_val} for validation) in {result.seconds:.0f} s; "
        f"thresholds prob {thresholds['prob']:.3f}, nms {thresholds['nms']:.2f}"
    )
    out.print(f"model: {output}")
    out.print(f"loss curve: {output / 'loss.png'}")


def _thresholds_option(value: Optional[str]):
    """``--thresholds``: optimize, parent, or PROB,NMS."""
    if value is None or value.strip().lower() in ("optimize", "optimise", "parent"):
        return None if value is None else value.strip().lower().replace("optimise", "optimize")
    return parse_numbers(value, float, "--thresholds", count=2)


@app.command("n2v", cls=FijiportCommand)
def n2v(
    data_dir: Path = typer.Argument(..., help="Data folder written by `fijiport prepare n2v`.", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write (a standard n2v model folder).", show_default=False),
    config_file: Optional[Path] = typer.Option(
        None, "--config", help="YAML file with any of the options below (snake_case keys); options given on the command line win."
    ),
    patch_size: Optional[str] = typer.Option(
        None,
        "--patch-size",
        help="Patch size per spatial axis, e.g. 64,64 or 16,64,64 (default, shrunk to fit the images); divisible by 2**unet-depth.",
        rich_help_panel=DATA,
    ),
    masked_pixel_percent: Optional[float] = typer.Option(
        None, "--masked-pixel-percent", help="Blind spot: % of each patch's pixels masked (default 0.198).", rich_help_panel=DATA
    ),
    neighborhood_radius: Optional[int] = typer.Option(
        None, "--neighborhood-radius", help="Blind spot: radius replacement values come from (default 5).", rich_help_panel=DATA
    ),
    validation_fraction: Optional[float] = typer.Option(
        None,
        "--validation-fraction",
        help="Share of training patches that validate when the data folder has no validation images (default 0.1).",
        rich_help_panel=DATA,
    ),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default 100).", rich_help_panel=TRAINING),
    steps_per_epoch: Optional[int] = typer.Option(
        None, "--steps-per-epoch", help="Parameter updates per epoch (default 100).", rich_help_panel=TRAINING
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="Patches per update (default 128); lower it when the GPU runs out of memory.", rich_help_panel=TRAINING
    ),
    learning_rate: Optional[float] = typer.Option(
        None,
        "--learning-rate",
        help="Initial Adam learning rate (default 0.0004; 0.0001 when fine-tuning with --init-from).",
        rich_help_panel=TRAINING,
    ),
    normalization: Optional[str] = typer.Option(
        None,
        "--normalization",
        help="Whose mean and std normalise the images: data (the training images', n2v's way) or parent (the "
        "--init-from model's; the default when fine-tuning).",
        rich_help_panel=TRAINING,
        show_default=False,
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Seed of patches, masking and initial weights (default 0).", rich_help_panel=TRAINING
    ),
    unet_depth: Optional[int] = typer.Option(None, "--unet-depth", help="U-Net resolution levels (default 2).", rich_help_panel=NETWORK),
    unet_first_filters: Optional[int] = typer.Option(
        None, "--unet-first-filters", help="Convolution filters at the first level (default 32).", rich_help_panel=NETWORK
    ),
    unet_kernel_size: Optional[int] = typer.Option(
        None, "--unet-kernel-size", help="Odd convolution kernel size (default 3).", rich_help_panel=NETWORK
    ),
    batch_norm: Optional[bool] = typer.Option(
        None,
        "--batch-norm/--no-batch-norm",
        help="Batch normalisation after each convolution (default on, n2v's; folded into the convolutions at export).",
        rich_help_panel=NETWORK,
    ),
    augment: Optional[bool] = typer.Option(
        None, "--augment/--no-augment", help="90° rotations and flips of the patches (default on).", rich_help_panel=SWITCHES
    ),
    tensorboard: Optional[bool] = typer.Option(
        None,
        "--tensorboard/--no-tensorboard",
        help="Write TensorBoard logs (default: only when tensorboard is installed).",
        rich_help_panel=SWITCHES,
    ),
    gpu_memory_growth: Optional[bool] = typer.Option(
        None, "--gpu-memory-growth", help="Let TensorFlow take GPU memory as needed (for shared GPUs).", rich_help_panel=SWITCHES
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the weights of an existing model folder."),
    init_from: Optional[Path] = typer.Option(
        None,
        "--init-from",
        help="Start from the weights of this trained N2V model (fine-tuning): a model folder (fijiport's or n2v's own) "
        "or a bioimage.io package exported by fijiport. Network settings and the mean and std not given are the "
        "model's; the learning rate defaults to 0.0001.",
        show_default=False,
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted training in OUTPUT from its last saved epoch up to --epochs (the total), with the settings recorded there.",
    ),
) -> None:
    """Train Noise2Void (2D or 3D) on noisy images alone, with the n2v package.

    Writes n2v's model folder (config.json with the data's mean and std, weights_best.h5,
    weights_last.h5; loadable with n2v.models.N2V and `fijiport export`), plus
    fijiport_config.yaml, fijiport_progress.json (what --resume continues from), history.csv and
    loss.png. N2V's loss is computed on the masked pixels only and stays high: it measures the
    noise, so judge the model by `fijiport qc`, not by the loss's level.

    Example: [bold]fijiport train n2v n2v_data -o models/n2v_nuclei --epochs 50[/]

    Fine-tune: [bold]fijiport train n2v new_data -o models/n2v_tuned --init-from models/n2v_nuclei --epochs 10[/]
    """

    cli_values = dict(
        patch_size=parse_numbers(patch_size, int, "--patch-size"),
        masked_pixel_percent=masked_pixel_percent,
        neighborhood_radius=neighborhood_radius,
        validation_fraction=validation_fraction,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        unet_depth=unet_depth,
        unet_first_filters=unet_first_filters,
        unet_kernel_size=unet_kernel_size,
        batch_norm=batch_norm,
        augment=augment,
        tensorboard=tensorboard,
        gpu_memory_growth=gpu_memory_growth,
        normalization=normalization and normalization.strip().lower(),
    )
    _check_resume(resume, cli_values, config_file, init_from)
    source = f"options{' and ' + str(config_file) if config_file else ''}"
    config = merge_options(N2vTrainConfig, load_yaml_config(config_file), cli_values, source=source)
    with progress_bar() as bar:
        result = train_n2v(
            data_dir, output, config, overwrite=overwrite, resume=resume, init_from=init_from, progress=_progress_handler(bar)
        )
    err.print(
        f"trained on {result.n_patches_train} patches ({result.n_patches_val} for validation) in {result.seconds:.0f} s; "
        f"best validation loss {result.best_val_loss:.4f}"
    )
    out.print(f"model: {output}")
    out.print(f"loss curve: {output / LOSS_PNG}")
