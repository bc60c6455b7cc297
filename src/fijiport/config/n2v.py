"""Configuration of ``fijiport prepare n2v`` and ``fijiport train n2v`` (Noise2Void: denoising without ground truth)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..axes import n_spatial_dims, normalize_axes
from .training import FINE_TUNE_LEARNING_RATE

LEARNING_RATE = 4e-4
"""n2v's initial learning rate from scratch."""


class PrepareN2vConfig(BaseModel):
    """How folders of noisy images (no ground truth) become an N2V data folder."""

    model_config = ConfigDict(extra="forbid")

    axes: Optional[str] = None
    """Axes of every image (``YX``, ``ZYX``, ``TYX``, ``TZYX``, ``YXC``); read from ImageJ/OME metadata or guessed
    from the dimensions when not given. Frames (``T``) are training samples."""
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Fraction of the files (of the frames, for a single time-lapse) that monitor training and choose
    ``weights_best.h5``; with too few files the validation patches come from the training images instead."""
    test_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Fraction of the files (or frames) held out for ``fijiport qc``."""
    seed: int = 0
    """Seed of the split: the same seed and names give the same split."""
    allow_unpaired: bool = False
    """With ``--gt``: skip images without a ground truth file (and the other way round) instead of stopping."""
    link: Literal["copy", "hardlink"] = "copy"
    """How files reach the data folder: copies (default) or hard links (same file system only, else copied)."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = normalize_axes(v)
        if set(v) - set("TZYXC"):
            raise ValueError(f"N2V takes axes made of T, Z, Y, X and C; got {v!r}")
        return v

    @model_validator(mode="after")
    def _fractions(self) -> PrepareN2vConfig:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"validation_fraction {self.validation_fraction} + test_fraction {self.test_fraction} leave nothing to train on"
            )
        return self


class N2vTrainConfig(BaseModel):
    """Noise2Void training settings; defaults follow the n2v package's examples and ZeroCostDL4Mic's N2V notebooks."""

    model_config = ConfigDict(extra="forbid")

    axes: Optional[str] = None
    """Axes of the images; read from the data folder's manifest when not given."""
    patch_size: Optional[list[int]] = None
    """Training patch size per spatial axis; default 64×64 (2D) or 16×64×64 (3D), shrunk to fit the smallest image;
    divisible by 2**unet_depth. Y and X equal for the rotation augmentation."""
    epochs: int = Field(default=100, ge=1)
    """Training epochs."""
    steps_per_epoch: int = Field(default=100, ge=1)
    """Parameter updates per epoch."""
    batch_size: int = Field(default=128, ge=1)
    """Patches per update (N2V learns from few masked pixels per patch, so batches are large)."""
    unet_depth: int = Field(default=2, ge=1, le=5)
    """U-Net resolution levels."""
    unet_first_filters: int = Field(default=32, ge=1)
    """Convolution filters at the first level."""
    unet_kernel_size: int = Field(default=3, ge=1)
    """Odd convolution kernel size."""
    batch_norm: bool = True
    """Batch normalisation after each convolution (n2v's default; folded into the convolutions at export)."""
    learning_rate: Optional[float] = Field(default=None, gt=0)
    """Initial Adam learning rate (halved on validation-loss plateaus): 0.0004 from scratch, 0.0001 when fine-tuning a
    trained model (``--init-from``)."""
    normalization: Optional[Literal["data", "parent"]] = None
    """Whose mean and standard deviation normalise the images: ``data`` (the training patches', n2v's way; the only
    choice from scratch) or ``parent`` (the ``--init-from`` model's; the default when fine-tuning, so the network sees
    its inputs on the scale it learnt). Fine-tuning warns when the two differ much."""
    masked_pixel_percent: float = Field(default=0.198, gt=0.0, le=50.0)
    """Blind spot: percentage of each patch's pixels masked and predicted from their neighbourhood (n2v_perc_pix)."""
    neighborhood_radius: int = Field(default=5, ge=1)
    """Blind spot: radius of the neighbourhood a masked pixel's replacement value is drawn from."""
    manipulator: Literal["uniform_withCP", "uniform_withoutCP", "normal_withoutCP", "normal_additive", "normal_fitted", "identity"] = (
        "uniform_withCP"
    )
    """How masked pixels are replaced (n2v's pixel manipulators)."""
    augment: bool = True
    """Rotations by 90° and flips of the training patches (8× the patches; Y and X of the patch must be equal)."""
    validation_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    """Fraction of the training patches kept for validation when the data folder has no validation images."""
    seed: int = 0
    """Seed of patch extraction and order, masking and the initial weights."""
    tensorboard: Optional[bool] = None
    """Write TensorBoard logs; by default only when the tensorboard package is installed."""
    gpu_memory_growth: bool = False
    """Let TensorFlow take GPU memory as needed (for shared GPUs)."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = normalize_axes(v)
        if set(v) - set("TZYXC"):
            raise ValueError(f"N2V trains on axes made of T, Z, Y, X and C; got {v!r}")
        return v

    def learning_rate_for(self, fine_tuning: bool) -> float:
        """The learning rate to use: the one given, else the default from scratch or for fine-tuning."""
        return self.learning_rate or (FINE_TUNE_LEARNING_RATE if fine_tuning else LEARNING_RATE)

    @field_validator("unet_kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"unet_kernel_size must be odd, got {v}; try {v + 1}")
        return v

    @model_validator(mode="after")
    def _check(self) -> N2vTrainConfig:
        if self.patch_size is not None:
            div_by = 2**self.unet_depth
            if self.axes is not None and len(self.patch_size) != n_spatial_dims(self.axes):
                raise ValueError(
                    f"patch_size {self.patch_size} has {len(self.patch_size)} values but axes {self.axes!r} "
                    f"have {n_spatial_dims(self.axes)} spatial axes"
                )
            bad = [p for p in self.patch_size if p % div_by or p <= 0]
            if bad:
                suggest = [max(div_by, p // div_by * div_by) for p in self.patch_size]
                raise ValueError(
                    f"patch_size {self.patch_size} must be divisible by {div_by} (2**unet_depth, depth {self.unet_depth}); try {suggest}"
                )
        return self
