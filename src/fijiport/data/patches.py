"""CARE training patches, sampled one image pair at a time and memory-mapped where the TIFF allows.

The patches are exactly those of csbdeep's ``create_patches`` with ``no_background_patches`` and
``norm_percentiles`` (same values, same order, for the same ``np.random`` state and the same pairs):
the same eligibility rule, csbdeep's own ``choice`` for the draws, its own normalisation and shuffle.
What differs is the working memory. csbdeep's filter keeps a float32 maximum-filtered copy of the
target and ``np.where`` holds the coordinates of every eligible voxel (three int64 per voxel: ~1.5 GB
on a 64×1024×1024 stack). Here the filter runs on a one-byte mask and the drawn ranks are mapped to
coordinates plane by plane, so memory is one image pair plus the patches, however many pairs there are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ..axes import channel_count
from ..errors import DataError
from ..files import TiffFrames, read_tiff, tiff_shape

log = logging.getLogger(__name__)


def open_tiff(path: Path) -> np.ndarray:
    """The TIFF's pixels, memory-mapped (read-only) when stored uncompressed and contiguous, else read."""
    import tifffile

    try:
        return np.asarray(tifffile.memmap(path, mode="r"))
    except Exception as e:  # compressed, tiled, or otherwise not mappable: read it
        log.debug("%s cannot be memory-mapped (%s); reading it", path, e)
        return read_tiff(path)


def foreground_mask(target: np.ndarray, patch_size: Sequence[int], threshold: float = 0.4, percentile: float = 99.9) -> np.ndarray:
    """Where a patch centre may lie: csbdeep's ``no_background_patches`` rule, on a one-byte mask.

    csbdeep asks ``maximum_filter(target, patch_size // 2) > threshold * percentile(target)``. A window's
    maximum exceeds ``t`` exactly when one of its values (or the zero padding) does, so thresholding
    first and filtering the 0/1 mask gives the same answer with an eighth of the memory.
    """
    from scipy.ndimage import maximum_filter

    image = target.astype(np.float32)  # as csbdeep does, so the percentile is the same number
    t = threshold * np.percentile(image, percentile)
    above = np.greater(image, t).view(np.uint8)
    del image
    size = [p // 2 if p > 1 else p for p in patch_size]
    return maximum_filter(above, size, mode="constant", cval=int(t < 0)).view(bool)


def draw_centres(mask: np.ndarray, patch_size: Sequence[int], n: int) -> list[np.ndarray]:
    """``n`` patch centres among the eligible voxels whose patch fits in the image.

    The draw is csbdeep's (``csbdeep.utils.choice`` over the eligible voxels in C order, with
    replacement only when there are fewer than ``n``); the ranks drawn are turned into coordinates
    one leading-axis plane at a time instead of listing every eligible voxel.
    """
    from csbdeep.utils import choice

    border = tuple(slice(p // 2, d - p + p // 2 + 1) for p, d in zip(patch_size, mask.shape))
    region = mask[border]
    counts = np.array([np.count_nonzero(plane) for plane in region], dtype=np.int64)
    n_valid = int(counts.sum())
    if n_valid == 0:
        raise ValueError("no eligible patch centre")
    ranks = np.asarray(choice(range(n_valid), n, replace=n_valid < n), dtype=np.int64)
    ends = np.cumsum(counts)
    lead = np.searchsorted(ends, ranks, side="right")
    within = ranks - (ends[lead] - counts[lead])
    coords = [np.empty(len(ranks), dtype=np.int64) for _ in patch_size]
    for plane in np.unique(lead):
        pick = lead == plane
        flat = np.flatnonzero(region[plane])[within[pick]]
        coords[0][pick] = plane
        for c, idx in zip(coords[1:], np.unravel_index(flat, region.shape[1:])):
            c[pick] = idx
    return [c + s.start for c, s in zip(coords, border)]


def cut_patches(image: np.ndarray, centres: list[np.ndarray], patch_size: Sequence[int]) -> np.ndarray:
    """The patches of ``patch_size`` around ``centres`` (csbdeep's convention for even sizes)."""
    return np.stack([image[tuple(slice(c - p // 2, c + p - p // 2) for c, p in zip(centre, patch_size))] for centre in zip(*centres)])


def sample_care_patches(
    pairs: Sequence[tuple[Path, Path]],
    axes: str,
    patch_size: Sequence[int],
    n_per_image: int,
    percentiles: tuple[float, float],
    *,
    gt_axes: Optional[str] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Normalised (source, target) patches from (source, target) TIFF pairs, as ``create_patches`` makes them.

    ``axes`` are the images' axes, ``patch_size`` has one entry per axis but ``T`` (the channel count for ``C``).
    A time-lapse (``T`` in ``axes``) is read one frame at a time, and each frame is an image of its own: ``n_per_image``
    patches from every frame, normalised with that frame's percentiles (as csbdeep does for the images it is given,
    and as ``predict`` normalises each frame). Returns ``X, Y, axes`` with axes ``"SC" + spatial``. Draws from the
    global ``np.random`` state, like csbdeep, so seed it for repeatable patches.

    ``gt_axes`` are the targets' when their channels are not the sources' (another number of channels, or a C only
    one side has): the patch centres are drawn on the target as csbdeep draws them, and the source patch at each
    centre holds all of the source's channels, so ``Y`` has the target's channels and ``X`` the source's.
    """
    from csbdeep.data import norm_percentiles
    from csbdeep.data.generate import shuffle_inplace

    patch_size = tuple(int(p) for p in patch_size)
    frame_axes = axes.replace("T", "")
    gt_frame_axes = (gt_axes or axes).replace("T", "")
    if len(frame_axes) != len(patch_size):
        raise DataError(f"patch size {list(patch_size)} needs one entry per image axis ({frame_axes})")
    work_axes = frame_axes if "C" in frame_axes else gt_frame_axes  # both sides get a C when either has one
    if work_axes.replace("C", "") != frame_axes.replace("C", "") or ("C" in gt_frame_axes and gt_frame_axes != work_axes):
        raise DataError(f"targets of axes {gt_axes} cannot go with sources of axes {axes}: only their channels may differ")
    channel = work_axes.index("C") if "C" in work_axes else None
    x_patch = patch_size if work_axes == frame_axes else _with_channel(patch_size, channel, 1)
    n_out = channel_count(tiff_shape(pairs[0][1])[0], gt_axes or axes) if pairs else 1
    y_patch = x_patch if channel is None else x_patch[:channel] + (n_out,) + x_patch[channel + 1 :]
    normalize = norm_percentiles(percentiles=tuple(percentiles))
    t_axis = axes.index("T") if "T" in axes else None
    n_frames = [1 if t_axis is None else tiff_shape(source)[0][t_axis] for source, _ in pairs]
    n_patches = sum(n_frames) * n_per_image
    X = np.empty((n_patches,) + x_patch, dtype=np.float32)
    Y = np.empty((n_patches,) + y_patch, dtype=np.float32)
    done = 0
    for i, (source_path, target_path) in enumerate(pairs):
        if t_axis is None:
            images = [(open_tiff(source_path), open_tiff(target_path), "")]
        else:
            (s_shape, _), (t_shape, _) = tiff_shape(source_path), tiff_shape(target_path)
            if len(s_shape) != len(axes):
                raise DataError(f"{source_path} has {len(s_shape)} dimensions, the data folder's axes {axes} have {len(axes)}")
            if s_shape[t_axis] != t_shape[(gt_axes or axes).index("T")]:
                raise DataError(f"{source_path} is {s_shape} but {target_path} is {t_shape}; a pair must have one number of frames")
            xs, ys = TiffFrames(source_path, t_axis), TiffFrames(target_path, (gt_axes or axes).index("T"))
            images = ((xs[t], ys[t], f" (frame {t})") for t in range(len(xs)))
        for x, y, frame in images:
            if "C" not in frame_axes and channel is not None:
                x = np.expand_dims(x, channel)
            if "C" not in gt_frame_axes and channel is not None:
                y = np.expand_dims(y, channel)
            part = slice(done, done + n_per_image)
            X[part], Y[part] = _pair_patches(
                x, y, source_path, target_path, frame, work_axes, (x_patch, y_patch), n_per_image, normalize, channel
            )
            done += n_per_image
            del x, y
        if progress:
            progress(i + 1, len(pairs))
    shuffle_inplace(X, Y)
    if channel is None:
        X, Y = X[:, np.newaxis], Y[:, np.newaxis]
    else:
        X, Y = np.moveaxis(X, 1 + channel, 1), np.moveaxis(Y, 1 + channel, 1)
    return X, Y, "SC" + work_axes.replace("C", "")


def _with_channel(size: tuple[int, ...], at: Optional[int], n: int) -> tuple[int, ...]:
    assert at is not None
    return size[:at] + (n,) + size[at:]


def _pair_patches(x, y, source_path: Path, target_path: Path, frame: str, axes: str, patch_sizes, n: int, normalize, channel):
    """``n`` normalised patch pairs from one image pair (or one frame of a time-lapse pair: ``frame`` says which);
    ``patch_sizes`` are the source's and the target's (they differ along C when their channels do)."""
    x_patch, y_patch = patch_sizes
    for path, img in ((source_path, x), (target_path, y)):
        if img.ndim != len(axes):
            raise DataError(f"{path} has {img.ndim} dimensions, the data folder's axes {axes} have {len(axes)}")
    if [d for i, d in enumerate(x.shape) if i != channel] != [d for i, d in enumerate(y.shape) if i != channel]:
        raise DataError(f"{source_path} is {x.shape} but {target_path} is {y.shape}; a pair must have one shape")
    for path, img, size in ((source_path, x, x_patch), (target_path, y, y_patch)):
        if channel is not None and size[channel] != img.shape[channel]:
            raise DataError(f"{path} has {img.shape[channel]} channels, the others {size[channel]}; patches must hold all of them")
    too_big = [(a, p, s) for a, p, s in zip(axes, x_patch, x.shape) if p > s]
    if too_big:
        detail = ", ".join(f"{a}: patch {p} > image {s}" for a, p, s in too_big)
        raise DataError(f"patches do not fit in {source_path} ({detail}); use a smaller --patch-size")
    try:
        centres = draw_centres(foreground_mask(y, y_patch), y_patch, n)
    except ValueError:
        raise DataError(
            f"{target_path}{frame} has no region bright enough to sample patches from (every {list(y_patch)} window is "
            "below 40% of the image's 99.9th percentile); check that the ground truth is not empty, "
            "or use a smaller --patch-size"
        ) from None
    x_centres = list(centres)
    if channel is not None and x_patch[channel] != y_patch[channel]:  # the same place, all of the source's channels
        x_centres[channel] = np.full_like(centres[channel], x_patch[channel] // 2)
    patches_y, patches_x = cut_patches(y, centres, y_patch), cut_patches(x, x_centres, x_patch)
    return normalize(patches_x, patches_y, x, y, None, channel)
