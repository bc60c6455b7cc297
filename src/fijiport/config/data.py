"""Configuration of ``fijiport prepare``."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..axes import normalize_axes


class PrepareCareConfig(BaseModel):
    """How paired low/high-SNR acquisitions become a CARE data folder."""

    model_config = ConfigDict(extra="forbid")

    axes: Optional[str] = None
    """Axes of every image (e.g. ``YX``, ``ZYX``, ``YXC``); guessed from the dimensions when not given."""

    test_fraction: float = Field(default=0.3, ge=0.0, lt=1.0)
    """Fraction of the pairs held out as test data for ``fijiport qc`` (never used in training)."""

    seed: int = 0
    """Seed of the train/test split: the same seed and the same file names give the same split."""

    allow_unpaired: bool = False
    """Skip files present in only one folder instead of stopping."""

    link: Literal["copy", "hardlink"] = "copy"
    """How files reach the data folder: copies (default: editing them can never touch the originals) or
    hard links (no extra space; an in-place edit would change the original). Hard links need the originals' file
    system: elsewhere files are copied, with a warning, and the manifest records each file's placement."""

    check_pairs: bool = True
    """Check that each low/GT pair shows the same field (correlation, shift), that GT is the less noisy of the two
    and that neither is clipped; refuse clear failures, warn on borderline ones. ``--skip-pair-checks`` turns them off,
    for pairs that are meant to differ in ways these checks take for mistakes."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else normalize_axes(v)


class PrepareStardistConfig(BaseModel):
    """How images with label masks (or ImageJ ROI sets) become a StarDist data folder."""

    model_config = ConfigDict(extra="forbid")

    axes: Optional[str] = None
    """Axes of every image (``YX``, ``ZYX``, ``YXC``); guessed from the dimensions when not given."""

    test_fraction: float = Field(default=0.3, ge=0.0, lt=1.0)
    """Fraction of the images held out as test data for ``fijiport qc``."""

    seed: int = 0
    """Seed of the train/test split."""

    allow_unpaired: bool = False
    """Skip images without a mask (or masks without an image) instead of stopping."""

    link: Literal["copy", "hardlink"] = "copy"
    """How images reach the data folder (masks are always written anew, relabelled 1..N)."""

    min_area: int = Field(default=10, ge=1)
    """Objects smaller than this many pixels (voxels) are reported as tiny."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else normalize_axes(v)
