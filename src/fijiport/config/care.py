"""Configuration of ``fijiport train care``: every option of the command, also settable in YAML."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..axes import n_spatial_dims, normalize_axes
from .training import FINE_TUNE_LEARNING_RATE

LEARNING_RATE = 4e-4
"""csbdeep's initial learning rate, the default from scratch."""


class CareTrainConfig(BaseModel):
    """CARE training settings; the defaults follow csbdeep's and the CARE paper's."""

    model_config = ConfigDict(extra="forbid")

    axes: Optional[str] = None
    """Axes of the training images (``YX``, ``ZYX``, ``YXC``, ``ZYXC``; with ``T`` for time-lapses, whose frames are
    training images of their own); read from the data folder's manifest when not given."""

    patch_size: Optional[list[int]] = None
    """Size of the training patches per spatial axis (e.g. ``[128, 128]`` or ``[16, 64, 64]``); by default 128 per axis in 2D and 16×64×64 in 3D, shrunk to fit the smallest image."""

    patches_per_image: int = Field(default=64, ge=1)
    """Number of patches sampled from each training image (each frame of a time-lapse: patches come from every frame,
    each normalised with its own frame's percentiles, as the frames are predicted)."""

    epochs: int = Field(default=100, ge=1)
    """Number of training epochs."""

    steps_per_epoch: int = Field(default=400, ge=1)
    """Number of parameter updates per epoch."""

    batch_size: int = Field(default=16, ge=1)
    """Number of patches per update."""

    unet_depth: int = Field(default=2, ge=1, le=5)
    """Number of resolution levels of the U-Net; patches must be divisible by 2**depth."""

    unet_first_filters: int = Field(default=32, ge=1)
    """Number of convolution filters at the first level (doubles with each level)."""

    unet_kernel_size: Optional[int] = Field(default=None, ge=1)
    """Convolution kernel size (odd); 5 in 2D and 3 in 3D by default."""

    learning_rate: Optional[float] = Field(default=None, gt=0)
    """Initial learning rate of Adam (halved on validation-loss plateaus): 0.0004 from scratch, 0.0001 when fine-tuning
    a trained model (``--init-from``), so the first updates adjust the parent's weights rather than overwrite them."""

    loss: Optional[Literal["mae", "mse", "laplace"]] = None
    """Training loss: mean absolute error (default), mean squared error, or laplace for probabilistic CARE."""

    probabilistic: bool = False
    """Train a probabilistic CARE network (predicts a Laplace distribution per pixel; needs loss laplace)."""

    validation_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    """Fraction of the patches kept aside to monitor training and choose ``weights_best.h5``."""

    percentile_low: float = Field(default=2.0, ge=0.0, lt=100.0)
    """Lower percentile of the input normalisation (training, QC, export and Fiji macros use the same)."""

    percentile_high: float = Field(default=99.8, gt=1.0, le=100.0)
    """Upper percentile of the input normalisation."""

    seed: int = 0
    """Seed of patch sampling, the train/validation split and the network's initial weights."""

    tensorboard: Optional[bool] = None
    """Write TensorBoard logs; by default only when the tensorboard package is installed."""

    gpu_memory_growth: bool = False
    """Let TensorFlow allocate GPU memory as needed instead of all of it (for shared GPUs)."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = normalize_axes(v)
        if set(v) - set("TZYXC"):
            raise ValueError(f"CARE trains on axes made of T (frames of a time-lapse), Z, Y, X and C; got {v!r}")
        return v

    @field_validator("unet_kernel_size")
    @classmethod
    def _odd_kernel(cls, v: Optional[int]) -> Optional[int]:
        if v is not None and v % 2 == 0:
            raise ValueError(f"unet_kernel_size must be odd, got {v}; try {v + 1}")
        return v

    @model_validator(mode="after")
    def _check(self) -> CareTrainConfig:
        if self.percentile_low >= self.percentile_high:
            raise ValueError(f"percentile_low {self.percentile_low} must be below percentile_high {self.percentile_high}")
        if self.probabilistic and self.loss not in (None, "laplace"):
            raise ValueError(f"a probabilistic network needs loss 'laplace', got {self.loss!r}")
        if not self.probabilistic and self.loss == "laplace":
            raise ValueError("loss 'laplace' needs --probabilistic")
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

    @property
    def resolved_loss(self) -> str:
        return "laplace" if self.probabilistic else (self.loss or "mae")

    def learning_rate_for(self, fine_tuning: bool) -> float:
        """The learning rate to use: the one given, else the default from scratch or for fine-tuning."""
        return self.learning_rate or (FINE_TUNE_LEARNING_RATE if fine_tuning else LEARNING_RATE)

    def kernel_size_for(self, n_dim: int) -> int:
        return self.unet_kernel_size or (5 if n_dim == 2 else 3)
