"""Configuration of ``fijiport prepare``."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..axes import normalize_axes
from ..errors import ConfigError


def compile_pair_by(pattern: str) -> re.Pattern[str]:
    """``--pair-by`` as a compiled expression; refused (:class:`ConfigError`) when it is not one or names no group."""
    example = "'_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)'"
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"--pair-by {pattern!r} is not a regular expression ({e}); e.g. {example}") from None
    if not regex.groupindex:
        raise ConfigError(
            f"--pair-by {pattern!r} has no named group, so it gives no key to pair by: name the parts low and GT share, "
            f"e.g. {example} (plain (...) groups are not part of the key)"
        )
    return regex


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

    pair_by: Optional[str] = None
    """A regular expression with named groups, searched in each file's path below ``--low`` / ``--gt``: a low file
    pairs with the GT file whose groups match the same values (e.g. channel, stack and position, not the laser power
    or the time stamps). Without it, files pair by identical name (identical path with ``recursive``)."""

    recursive: bool = False
    """Take the files of sub-folders too, at any depth (data folder names: the path below ``--low`` with ``__``
    between folders)."""

    pairs_file: Optional[str] = None
    """A CSV file of ``low,gt`` rows (paths relative to its folder, or absolute) instead of ``--low`` and ``--gt``."""

    channels: Optional[list[str]] = None
    """Channels recorded in separate files, joined into one multi-channel image per side: the values ``pair_by``'s
    group ``channel`` takes, in the order the joined image holds them (``["0", "1"]`` for ``_ch0_``/``_ch1_`` files).
    Files of other channel values are left out (``--dry-run`` lists them)."""

    gt_channels: Optional[list[str]] = None
    """With ``channels``: the channels the ground truth holds, when they are not the input's (``["0"]``: a network of
    two channels in and one out). One value gives a single-channel GT; by default the GT has the input's channels.
    QC scores each GT channel's input channel of the same value as the baseline (none when the input lacks one)."""

    @field_validator("axes")
    @classmethod
    def _axes(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else normalize_axes(v)

    @field_validator("pair_by")
    @classmethod
    def _pair_by(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            compile_pair_by(v)
        return v

    @model_validator(mode="after")
    def _one_way_of_pairing(self) -> PrepareCareConfig:
        if self.pairs_file is not None and (self.pair_by is not None or self.recursive):
            given = " and ".join(o for o, v in (("--pair-by", self.pair_by), ("--recursive", self.recursive)) if v)
            raise ConfigError(f"--pairs lists the pairs itself: drop {given} (they choose files from --low and --gt folders)")
        if self.channels is not None:
            check_channels(self.channels, self.pair_by)
        if self.gt_channels is not None:
            if self.channels is None:
                raise ConfigError(
                    f"--gt-channels {','.join(self.gt_channels)} chooses among channels in separate files: give --channels for "
                    "the input's too (e.g. --channels 0,1 --gt-channels 0); a GT that holds its channels in its files needs "
                    "no option (a GT of other channels than the input is taken as it is)"
                )
            check_channels(self.gt_channels, self.pair_by, at_least=1, option="--gt-channels")
        return self


def check_channels(channels: list[str], pair_by: Optional[str], *, at_least: int = 2, option: str = "--channels") -> None:
    """Refuse ``--channels`` (or ``--gt-channels``) that cannot join files: without a ``--pair-by`` whose group
    ``channel`` tells the files apart, with fewer than ``at_least`` values, or a value twice."""
    example = "--pair-by '_ch(?P<channel>\\d+)_stack(?P<stack>\\d+)' --channels 0,1"
    if pair_by is None or "channel" not in compile_pair_by(pair_by).groupindex:
        raise ConfigError(
            f"{option} {','.join(channels)} joins files that differ by their channel: give --pair-by an expression with a "
            f"group named channel that matches it in the file names, e.g. {example}"
        )
    if len(channels) < at_least or any(not c for c in channels):
        if at_least == 1:
            raise ConfigError(f"{option} {','.join(channels)!r}: list one or more channel values, separated by commas (e.g. 0)")
        raise ConfigError(
            f"{option} {','.join(channels)!r}: list two or more channel values, separated by commas (e.g. 0,1); to train "
            "on one channel, write its value into --pair-by instead (_ch(?P<channel>0)_)"
        )
    twice = sorted({c for c in channels if channels.count(c) > 1})
    if twice:
        raise ConfigError(f"{option} lists {', '.join(twice)} more than once; list each channel once, in the order the image holds them")


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
