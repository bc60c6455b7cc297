"""Cover images for the BioImage Model Zoo: 2:1 PNG, input beside output, well under 500 KB."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_COVER_BYTES = 500 * 1024


def to_display(image: np.ndarray, spatial_ndim: int) -> np.ndarray:
    """A 2D float image in [0, 1] for display: first channel, max projection along Z."""
    x = np.asarray(image, dtype=np.float32)
    while x.ndim > spatial_ndim:  # drop channel axes (last) keeping the first channel
        x = x[..., 0]
    if x.ndim == 3:
        x = x.max(axis=0)
    lo, hi = np.percentile(x, 1), np.percentile(x, 99.8)
    return np.clip((x - lo) / max(hi - lo, 1e-12), 0, 1)


def _square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize (nearest / block mean) to ``size``×``size``."""
    h, w = img.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s]
    idx = np.clip((np.arange(size) + 0.5) * s / size, 0, s - 1).astype(int)
    return img[np.ix_(idx, idx)]


def make_cover(
    left: np.ndarray,
    right: np.ndarray,
    path: Path,
    *,
    labels: tuple[str, str] = ("input", "output"),
    spatial_ndim: int = 2,
    size: int = 256,
    rgb_right: bool = False,
) -> Path:
    """Write a ``2*size``×``size`` PNG with ``left`` and ``right`` side by side and small captions.

    With ``rgb_right``, ``right`` is an RGB image in [0, 1] (e.g. coloured objects) shown as it is.
    """
    from PIL import Image, ImageDraw

    left_panel = np.stack([_square(to_display(left, spatial_ndim), size)] * 3, -1)
    if rgb_right:
        right_panel = np.stack([_square(np.asarray(right)[..., c], size) for c in range(3)], -1)
    else:
        right_panel = np.stack([_square(to_display(right, spatial_ndim), size)] * 3, -1)
    canvas = (np.clip(np.concatenate([left_panel, right_panel], axis=1), 0, 1) * 255).astype(np.uint8)
    rgb = Image.fromarray(canvas, mode="RGB")
    draw = ImageDraw.Draw(rgb)
    for i, text in enumerate(labels):
        draw.rectangle([i * size + 4, 4, i * size + 8 + 7 * len(text), 20], fill=(0, 0, 0))
        draw.text((i * size + 7, 6), text, fill=(255, 255, 0))
    draw.line([(size, 0), (size, size)], fill=(255, 255, 255), width=2)
    rgb.save(path, format="PNG", optimize=True)
    if Path(path).stat().st_size > MAX_COVER_BYTES:  # pragma: no cover - 512x256 PNGs are far smaller
        rgb.save(Path(path).with_suffix(".jpg"), quality=85)
        Path(path).unlink()
        return Path(path).with_suffix(".jpg")
    return Path(path)
