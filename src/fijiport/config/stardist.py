"""Configuration of ``fijiport train stardist`` (every option also settable in YAML)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..axes import n_spatial_dims, normalize_axes
from .training import FINE_TUNE_LEARNING_RATE

LEARNING_RATE = 3e-4
"""stardist's initial learning rate, the default from scratch."""


class StardistTrainConfig(BaseModel):
    """StarDist training settings; defaults follow stardist's example notebooks."""

    model_config = ConfigDict(extra="forbid")

    axes: Optional[str] = None
    """Axes of the images (``YX``, ``YXC``, ``ZYX``); read from the data folder's manifest when not given."""
    n_rays: Optional[int] = Field(default=None, ge=3)
    """Number of rays per object: 32 in 2D, 96 in 3D by default."""
    grid: Optional[list[int]] = None
    """Subsampling of the network output per spatial axis (powers of 2): (2, 2) in 2D; in 3D from the objects' anisotropy."""
    patch_size: Optional[list[int]] = None
    """Training patch size per spatial axis; default 256×256 (2D) or 48×96×96 (3D), shrunk to fit the smallest image."""
    epochs: int = Field(default=400, ge=1)
    """Training epochs."""
    steps_per_epoch: int = Field(default=100, ge=1)
    """Parameter updates per epoch."""
    batch_size: int = Field(default=4, ge=1)
    """Patches per update."""
    unet_depth: int = Field(default=3, ge=1, le=5)
    """U-Net resolution levels."""
    unet_first_filters: int = Field(default=32, ge=1)
    """Convolution filters at the first level."""
    unet_kernel_size: int = Field(default=3, ge=1)
    """Odd convolution kernel size."""
    learning_rate: Optional[float] = Field(default=None, gt=0)
    """Initial Adam learning rate: 0.0003 from scratch, 0.0001 when fine-tuning a trained model (``--init-from``), so
    the first updates adjust the parent's weights rather than overwrite them."""
    thresholds: Optional[Union[Literal["optimize", "parent"], list[float]]] = None
    """Probability and NMS thresholds written to ``thresholds.json``: ``optimize`` (on the validation images after
    training; the default from scratch), ``parent`` (the ``--init-from`` model's own; the default when fine-tuning
    from a model that has them) or the two values ``[prob, nms]``."""
    validation_fraction: float = Field(default=0.15, gt=0.0, lt=1.0)
    """Fraction of the training images (at least one) used for validation and threshold optimisation."""
    augment: bool = True
    """Random flips, 90° rotations (in the YX plane) and intensity changes of the training patches."""
    percentile_low: float = Field(default=1.0, ge=0.0, lt=100.0)
    """Lower normalisation percentile (prediction, export and Fiji macros use the same)."""
    percentile_high: float = Field(default=99.8, gt=1.0, le=100.0)
    """Upper normalisation percentile."""
    seed: int = 0
    """Seed of the validation split, patch sampling, augmentation and initial weights."""
    tensorboard: Optional[bool] = None
    """Write TensorBoard logs; by default only when tensorboard is installed."""
    gpu_memory_growth: bool = False
    """Let TensorFlow take GPU memory as needed (for shared GPUs)."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = normalize_axes(v)
        if set(v) - set("TZYXC"):
            raise ValueError(
                f"StarDist trains on axes made of Z, Y, X and C (and T: a time-lapse's frames are images of their own); got {v!r}"
            )
        return v

    @field_validator("unet_kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"unet_kernel_size must be odd, got {v}; try {v + 1}")
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v):
        if isinstance(v, list) and (len(v) != 2 or not all(0 < t < 1 for t in v)):
            raise ValueError(f"thresholds {v} must be two values between 0 and 1 (probability, NMS overlap), e.g. [0.5, 0.4]")
        return v

    def learning_rate_for(self, fine_tuning: bool) -> float:
        """The learning rate to use: the one given, else the default from scratch or for fine-tuning."""
        return self.learning_rate or (FINE_TUNE_LEARNING_RATE if fine_tuning else LEARNING_RATE)

    @model_validator(mode="after")
    def _check(self) -> StardistTrainConfig:
        if self.percentile_low >= self.percentile_high:
            raise ValueError(f"percentile_low {self.percentile_low} must be below percentile_high {self.percentile_high}")
        if self.grid is not None:
            bad = [g for g in self.grid if g < 1 or g & (g - 1)]
            if bad:
                raise ValueError(f"grid {self.grid} must hold powers of 2 (1, 2, 4, ...)")
        if self.axes is not None:
            n = n_spatial_dims(self.axes)
            for name in ("grid", "patch_size"):
                value = getattr(self, name)
                if value is not None and len(value) != n:
                    raise ValueError(f"{name} {value} has {len(value)} values but axes {self.axes!r} have {n} spatial axes")
        if self.patch_size is not None:
            div_by = 2**self.unet_depth * max(self.grid or [1])
            bad = [p for p in self.patch_size if p % div_by]
            if bad:
                suggest = [max(div_by, p // div_by * div_by) for p in self.patch_size]
                raise ValueError(f"patch_size {self.patch_size} must be divisible by {div_by} (2**unet_depth × grid); try {suggest}")
        return self
