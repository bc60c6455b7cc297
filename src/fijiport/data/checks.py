"""Checks every training image passes, in `prepare care` and `prepare stardist` alike."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from ..files import check_pixels, is_rgb_tiff

log = logging.getLogger(__name__)


class ImageChecks:
    """Refuse RGB images (unless the axes have channels), a folder mixing numbers of dimensions, and NaN/inf
    pixels, naming the file and the fix; warn on constant images."""

    def __init__(self, folder: Path, axes: Optional[str], task: str):
        self.folder, self.axes, self.task = Path(folder), axes, task
        self.first: Optional[tuple[Path, tuple[int, ...]]] = None

    def check(self, path: Path, shape: tuple[int, ...], pixels: np.ndarray) -> None:
        self.check_header(path, shape)
        note = check_pixels(path, pixels)
        if note:
            log.warning("%s", note)

    def check_header(self, path: Path, shape: tuple[int, ...]) -> None:
        """The checks that need no pixels: RGB, and the number of dimensions against the first image's."""
        if (self.axes is None or "C" not in self.axes.upper()) and is_rgb_tiff(path):
            raise DataError(
                f"{path} is an RGB colour image; {self.task} expects grayscale data: convert it in Fiji "
                "(Image > Type > 16-bit) and save again, or pass --axes YXC to treat colours as channels"
            )
        if self.first is None or self.first[0] == Path(path):  # the first again (its header, then its pixels)
            self.first = (Path(path), tuple(shape))
        elif len(shape) != len(self.first[1]):
            raise DataError(
                f"{self.folder} mixes images with {len(self.first[1])} and {len(shape)} dimensions "
                f"({self.first[0].name}: {self.first[1]}, {Path(path).name}: {tuple(shape)}); prepare 2D and 3D "
                "data in separate folders"
            )
