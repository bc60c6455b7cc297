"""``fijiport predict --pair-by REGEX --channels 0,1``: a multi-channel model on channels recorded in separate files.

Light-sheet microscopes write one file per channel and stack (``..._ch0_stack0003_...tif``, ``..._ch1_stack0003_...``).
A model trained on joined channels (``prepare care --channels``) needs them joined again to predict:

1. the files are grouped as ``prepare care`` groups them (:func:`group_channel_files`): by ``--pair-by``'s named groups
   other than ``channel``, one file per listed channel; a group without every channel, two files of one channel, or a
   file the expression does not match is refused naming the files, before the model loads;
2. each group is joined (:func:`join_channels`) into one calibrated multi-channel TIFF in a hidden staging folder
   inside the output folder (ImageJ order, C before Y and X; time-lapses frame by frame), predicted there as any input;
3. the results are moved to their places (:func:`place_results`): a restored image with one channel per input
   channel is split, each channel written under its input channel's own path (``OUT/ch1/..._ch1_...tif``), so the folder
   structure is kept; label images (StarDist) and restored images of another channel count keep the joined name
   (``..._ch0+1_...``). The staging folder is removed whatever happens; every output is whole or absent.

The staging copy costs the inputs' size once on the output's disk.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

import numpy as np

from ..axes import axes_from_tifffile, with_channels
from ..calibration import read_pixel_size, write_frames, write_tiff
from ..config.data import check_channels, compile_pair_by
from ..data.pairing import describe_key, group_by_channel, names_shown
from ..errors import ConfigError, DataError
from ..files import TiffFrames, check_output, declared_axes, read_tiff, tiff_shape
from ..ngff import is_ome_zarr
from .outputs import Prediction, label_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelGroup:
    """The files of one image recorded one channel per file."""

    files: tuple[Path, ...]
    """One file per channel, in the order of ``--channels``."""
    places: tuple[PurePosixPath, ...]
    """Each file's path below the folder given (its name for files given one by one): where its result goes."""
    joined: PurePosixPath
    """The joined image's path: the first channel's, its channel value written as all of them (``ch0+1``)."""
    key: str
    """The groups other than ``channel`` (``stack=0003 x=01``), for messages."""


def group_channel_files(places: list[tuple[Path, PurePosixPath]], pair_by: str, channels: list[str]) -> list[ChannelGroup]:
    """Group the inputs into multi-channel images by what their names mean (see the module's docstring); refuse
    what cannot be grouped, naming the files."""
    check_channels(channels, pair_by)
    for f, _ in places:
        if is_ome_zarr(f) or f.is_dir():
            raise DataError(
                f"{f} is an OME-Zarr image; --channels joins channels recorded in separate TIFF files (an OME-Zarr image "
                "holds its channels along its c axis): predict it without --channels"
            )
    by_rel = {rel.as_posix(): (f, rel) for f, rel in places}  # unique: predict_images refused two inputs of one place
    found = group_by_channel(list(by_rel), compile_pair_by(pair_by), channels)
    if found.unmatched:
        raise DataError(
            f"--pair-by {pair_by!r} does not match {names_shown(found.unmatched)}, so their channel is unknown; correct "
            "--pair-by, or predict them in another run"
        )
    if found.other:
        log.warning("left out %d file(s) of channels --channels does not list: %s", len(found.other), names_shown(found.other))
    groups = []
    for key, by_channel in found.images.items():
        said = describe_key(dict(key))
        twice = {c: rels for c, rels in by_channel.items() if len(rels) > 1}
        if twice:
            c, rels = next(iter(twice.items()))
            raise DataError(
                f"{said} channel={c} matches {len(rels)} files ({names_shown(rels)}); add the part of the name that tells "
                "them apart to --pair-by as a named group, or predict them in separate runs"
            )
        missing = [c for c in channels if c not in by_channel]
        if missing:
            have = [r for rels in by_channel.values() for r in rels]
            raise DataError(
                f"{names_shown(have)} ({said}) has no file of channel {', '.join(missing)}; the model takes channels "
                f"{','.join(channels)} together: add the missing file, or move these out"
            )
        ordered = [by_rel[by_channel[c][0]] for c in channels]
        joined = PurePosixPath(found.joined_name(by_channel[channels[0]][0]))
        groups.append(ChannelGroup(tuple(f for f, _ in ordered), tuple(r for _, r in ordered), joined, said))
    if not groups:
        raise DataError(f"no input has a file of every channel of --channels {','.join(channels)}; check --pair-by and --channels")
    return sorted(groups, key=lambda g: g.joined.parts)


def file_axes(path: Path, model_axes: str) -> str:
    """A single-channel file's axes: as its metadata declares them, else the model's spatial axes (a file with more
    dimensions must declare them: ImageJ's frames, OME's T)."""
    ndim = len(tiff_shape(path)[0])
    declared = declared_axes(path)
    axes = axes_from_tifffile(declared) if declared else None
    spatial = model_axes.replace("C", "")
    if axes is None and ndim == len(spatial):
        axes = spatial
    if axes is None or len(axes) != ndim:  # a stack that does not say its third axis is time is not taken for frames
        raise DataError(f"{path}: cannot tell its axes ({ndim} dimensions, the model takes {model_axes}); {FIJI_FIX}")
    if "C" in axes:
        raise DataError(f"{path} has channels already (axes {axes}); --channels joins single-channel files: drop --channels")
    return axes


FIJI_FIX = "in Fiji, Image > Properties... sets channels, slices and frames (then File > Save As > Tiff...)"


def join_channels(group: ChannelGroup, model_axes: str, dest: Path) -> None:
    """Write the group's files as one multi-channel TIFF at ``dest`` (C before Y and X, calibrated as the first file);
    time-lapses frame by frame (memory: one frame of every channel). The files must agree in shape, dtype and axes."""
    first = group.files[0]
    axes = file_axes(first, model_axes)
    shape, dtype = tiff_shape(first)
    for path in group.files[1:]:
        if tiff_shape(path) != (shape, dtype) or file_axes(path, model_axes) != axes:
            raise DataError(
                f"channels of one image differ: {first} is {shape} {dtype} ({axes}) but {path} is {tiff_shape(path)[0]} "
                f"{tiff_shape(path)[1]} ({file_axes(path, model_axes)}); the files --channels joins must be saved alike"
            )
    joined_axes = with_channels(axes)
    at = joined_axes.index("C")
    size = read_pixel_size(first)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if "T" not in axes:
        write_tiff(dest, np.stack([read_tiff(p) for p in group.files], axis=at), joined_axes, size, overwrite=False)
        return
    t = axes.index("T")
    sources = [TiffFrames(p, t) for p in group.files]
    frames = (np.stack(planes, axis=at - 1) for planes in zip(*sources))
    joined_shape = list(shape)
    joined_shape.insert(at, len(group.files))
    joined_shape.insert(0, joined_shape.pop(t))
    write_frames(dest, frames, joined_shape, "T" + joined_axes.replace("T", ""), size, dtype=dtype)


def final_targets(group: ChannelGroup, out_dir: Path, labels: bool) -> list[Path]:
    """Where the group's results go: labels (image, ROI set, CSV) under the joined name; restored images under each
    channel's own path."""
    if labels:
        return list(label_targets(out_dir / group.joined.parent, group.joined.name))
    return [out_dir / rel for rel in group.places]


def place_results(result: Prediction, group: ChannelGroup, out_dir: Path, overwrite: bool) -> Prediction:
    """Move the staged results of ``group`` to their places (see the module's docstring) and say where they went."""
    placed: list[Path] = []
    staged = [p for p in result.outputs if p.is_file()]
    image = staged[0] if staged else None
    split = image is not None and len(staged) == 1 and _channel_axis(image, len(group.files)) is not None
    if split and image is not None:
        for i, rel in enumerate(group.places):
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_channel(image, i, target, overwrite)
            placed.append(target)
    else:
        moves = [(p, out_dir / group.joined.parent / p.name) for p in staged]
        for _, target in moves:  # all checked before any moves: the results of an image are all there or none
            check_output(target, overwrite)
        for p, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
            placed.append(target)
    result.source, result.outputs, result.relative = group.files[0], placed, group.joined.as_posix()
    return result


def _channel_axis(path: Path, n: int) -> Optional[int]:
    """The C axis of a staged restored image when it has ``n`` channels, else None."""
    declared = declared_axes(path)
    axes = axes_from_tifffile(declared) if declared else None
    shape, _ = tiff_shape(path)
    if axes is None or "C" not in axes or len(axes) != len(shape) or shape[axes.index("C")] != n:
        return None
    return axes.index("C")


def _write_channel(image: Path, i: int, target: Path, overwrite: bool) -> None:
    """Channel ``i`` of the staged image, written alone with the image's other axes and calibration."""
    declared = declared_axes(image)
    axes = axes_from_tifffile(declared) if declared else None
    assert axes is not None
    c, size = axes.index("C"), read_pixel_size(image)
    single = axes.replace("C", "")
    if "T" not in axes:
        write_tiff(target, np.take(read_tiff(image), i, axis=c), single, size, overwrite)
        return
    t = axes.index("T")
    frames = TiffFrames(image, t)
    shape = list(tiff_shape(image)[0])
    shape.pop(c)
    shape.insert(0, shape.pop(t if t < c else t - 1))
    frame_c = c - 1 if t < c else c
    channel: Iterator[np.ndarray] = (np.take(frame, i, axis=frame_c) for frame in frames)
    write_frames(target, channel, shape, "T" + single.replace("T", ""), size, overwrite)


def predict_channel_groups(
    run,
    groups: list[ChannelGroup],
    out_dir: Path,
    predict_places: Callable[..., list[Prediction]],
    *,
    overwrite: bool,
    skip_existing: bool,
    progress: Optional[Callable[[int, int, str], None]] = None,
    **predict_options,
) -> list[Prediction]:
    """Join, predict and place every group (see the module's docstring); ``predict_places(run, places, out_dir, ...)``
    predicts the staged joined images as any inputs."""
    model_axes, labels = run.image_axes, run.output == "labels"
    n_in = getattr(run, "n_channel_in", None)
    if "C" not in model_axes or (n_in is not None and n_in != len(groups[0].files)):
        raise ConfigError(
            f"--channels joins {len(groups[0].files)} files per image, but the model takes {n_in or 1} channel(s); "
            + ("drop --channels: each file is predicted on its own" if "C" not in model_axes else f"list {n_in} channels")
        )
    todo, skipped = [], []
    for g in groups:
        targets = final_targets(g, out_dir, labels)
        if skip_existing and all(t.exists() for t in targets):
            skipped.append(Prediction(g.files[0], targets, skipped=True, relative=g.joined.as_posix()))
            continue
        if not (overwrite or skip_existing):
            for t in targets:
                check_output(t, False)
        todo.append(g)
    if skipped:
        log.warning("skipping %d image(s) whose results exist (--skip-existing)", len(skipped))
    if not todo:
        return skipped
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".fijiport-channels-", dir=out_dir))
    try:
        places = []
        for k, g in enumerate(todo):
            if progress:
                progress(0, len(todo), f"joining {g.joined.name} ({k + 1}/{len(todo)})")
            join_channels(g, model_axes, stage / "in" / g.joined)
            places.append((stage / "in" / g.joined, g.joined))
        results = predict_places(run, places, stage / "out", overwrite=False, skip_existing=False, progress=progress, **predict_options)
        by_joined = {g.joined.as_posix(): g for g in todo}
        placed = [place_results(r, by_joined[r.relative or ""], out_dir, overwrite or skip_existing) for r in results]
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return sorted(itertools.chain(placed, skipped), key=lambda r: r.relative or "")
