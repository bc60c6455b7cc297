"""``fijiport predict``: apply a CARE or StarDist model to images, tiled for large ones.

The model is a csbdeep/stardist model folder (Keras weights, csbdeep's tiling) or a bioimage.io
package zip / rdf.yaml (its own pre- and postprocessing and ONNX weights through bioimageio.core,
as the Model Zoo runs it). CARE writes the restored image (float32 TIFF, same name). StarDist (and
any package whose output is a label image) writes the label image, an ImageJ ROI set
(``<name>.zip``, opens in Fiji's ROI Manager) and a CSV of per-object measurements (area,
centroid, mean intensity). Inputs are only read; every output is written to a temporary file and
renamed, and existing outputs are kept unless ``overwrite``.
"""

from __future__ import annotations

import itertools
import logging
import math
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Optional

from ..artifacts.model_folder import has_network_config
from ..axes import axes_from_tifffile, frames_layout
from ..calibration import PixelSize, describe, differences, read_pixel_size, scale_hint, write_frames
from ..errors import ConfigError, DataError
from ..files import TiffFrames, available_memory, check_output, check_pixels, declared_axes, list_tiffs, read_tiff, tiff_shape
from ..ngff import ZarrImage, is_ome_zarr, output_name, store_stem, write_ome_zarr
from .channels import group_channel_files, predict_channel_groups
from .folder import folder_runner
from .outputs import Prediction, write_label_frames
from .package import package_runner

log = logging.getLogger(__name__)

FIJI_AXES_FIX = "in Fiji, Image > Properties... sets channels, slices and frames (then File > Save As > Tiff...)"
WEIGHT_CHOICES = ("auto", "keras", "onnx", "openvino")
"""``auto``: Keras for model folders, ONNX (onnxruntime) for packages; ``openvino``: a package's ONNX weights on
OpenVINO (an optional install, the fastest CPU engine ``make bench`` measured for these networks)."""


def expand_images(paths: list[Path], *, recursive: bool = False) -> list[Path]:
    """Files as given, folders as their TIFFs (sorted; at any depth with ``recursive``); refuse anything else with
    its name."""
    return [f for f, _ in input_places(paths, recursive=recursive)]


def input_places(paths: list[Path], *, recursive: bool = False) -> list[tuple[Path, PurePosixPath]]:
    """Each input image with the path its results take below the output folder: its file name for files given one
    by one and for the top level of a folder, the path below the folder given with ``recursive`` (so
    ``raw/day1/pos2/a.tif`` is restored to ``OUT/day1/pos2/a.tif``)."""
    out: list[tuple[Path, PurePosixPath]] = []
    for p in map(Path, paths):
        if is_ome_zarr(p):
            out.append((p, PurePosixPath(p.name)))
        elif p.is_dir():
            found = list_tiffs(p, recursive=recursive)  # sorted; hidden files (macOS's ._name.tif) skipped with a warning
            found = sorted(found + _zarr_images(p, recursive))
            if not found:
                deeper = not recursive and any(p.glob("*/**/*.tif*"))
                raise DataError(
                    f"{p} holds no .tif/.tiff files"
                    + ("; its sub-folders do: pass --recursive to predict them all, keeping the folder structure" if deeper else "")
                    + "; pass TIFF images or a folder of them (Fiji: File > Save As > Tiff...)"
                )
            out += [(f, PurePosixPath(f.relative_to(p).as_posix())) for f in found]
        elif p.is_file():
            out.append((p, PurePosixPath(p.name)))
        else:
            raise DataError(f"{p} does not exist")
    return out


def _zarr_images(folder: Path, recursive: bool) -> list[Path]:
    """The OME-Zarr images (``*.zarr`` folders) in ``folder`` (at any depth with ``recursive``; never inside another)."""
    found = [d for d in (folder.rglob("*.zarr") if recursive else folder.glob("*.zarr")) if d.is_dir() and not d.name.startswith(".")]
    return [d for d in found if not any(is_ome_zarr(parent) for parent in d.parents)]


def is_package(model: Path) -> bool:
    """A bioimage.io package: a zip, an rdf.yaml / bioimageio.yaml, or a folder holding one."""
    model = Path(model)
    if model.is_file():
        return zipfile.is_zipfile(model) or model.name.endswith(("rdf.yaml", "bioimageio.yaml"))
    return (
        model.is_dir()
        and not (model / "config.json").is_file()
        and ((model / "rdf.yaml").is_file() or (model / "bioimageio.yaml").is_file())
    )


INTENSITY_CHOICES = ("auto", "input", "normalised")
"""What image outputs hold: ``input`` the input's intensity scale (csbdeep's and n2v's de-normalisation), ``normalised``
the network's output (CARE: 0–1 between the input's normalisation percentiles, what deepImageJ and CSBDeep-Fiji write;
N2V: in units of the training data's std); ``auto``: ``input`` for model folders (and ``--weights keras``), for packages
what the package's own postprocessing gives (N2V packages map back to the input's scale, CARE packages do not)."""
MEMORY_FACTOR = 12
"""Memory a whole-image prediction takes, in multiples of the image as float32 (the normalised copy, the output,
padding and library copies; measured: a 6000×6000 uint16 image peaked at 1.8 GB). Tiles bound the network's share only."""


def predict_images(
    model: Path,
    images: list[Path],
    out_dir: Path,
    *,
    n_tiles: Optional[tuple[int, ...]] = None,
    weights: str = "auto",
    intensity: str = "auto",
    overwrite: bool = False,
    skip_existing: bool = False,
    recursive: bool = False,
    pair_by: Optional[str] = None,
    channels: Optional[list[str]] = None,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> list[Prediction]:
    """Predict every image with the model (folder or bioimage.io package; CARE or StarDist detected).

    Parameters
    ----------
    model : a model folder, or a bioimage.io package (zip, rdf.yaml or its folder).
    images : TIFF files and folders of TIFFs (hidden files skipped).
    out_dir : where results go, named after their input (never the folder of an input).
    n_tiles : tiles per image axis; by default tiles of about a million pixels.
    weights : ``keras``, ``onnx``, ``openvino`` (a package's ONNX weights on OpenVINO) or ``auto`` (Keras for
        folders, ONNX for packages).
    intensity : :data:`INTENSITY_CHOICES`.
    overwrite : replace results that exist.
    skip_existing : leave images whose results all exist (an interrupted batch goes on); an image with only some of
        its results is predicted again.
    recursive : predict the TIFFs of the folders' sub-folders too, each result under the same path below ``out_dir``
        as its input below the folder given.
    pair_by, channels : channels recorded in separate files, joined for a multi-channel model: the files grouped by
        ``pair_by``'s named groups other than ``channel``, one per value of ``channels`` in that order
        (:mod:`fijiport.predict.channels`); restored channels are written under each input channel's own path.
    progress : called as ``progress(done, total, name)`` before each image.

    Returns
    -------
    list[Prediction] : per image, what was written (or that it was skipped), tiles, objects and warnings.
    """
    from ..errors import UsageError

    model, out_dir = Path(model), Path(out_dir)
    if weights not in WEIGHT_CHOICES:
        raise UsageError(f"--weights {weights!r}: choose one of {', '.join(WEIGHT_CHOICES)}")
    if intensity not in INTENSITY_CHOICES:
        raise UsageError(f"--intensity {intensity!r}: choose one of {', '.join(INTENSITY_CHOICES)}")
    if overwrite and skip_existing:
        raise UsageError("--overwrite replaces results and --skip-existing keeps them: pass one of them")
    if not model.exists():
        raise DataError(f"model {model} does not exist; pass a csbdeep/stardist model folder or a bioimage.io zip")
    places = input_places(images, recursive=recursive)
    if channels and pair_by is None:
        raise UsageError("--channels joins files that differ by their channel: give --pair-by with a group named channel too")
    if pair_by is not None and not channels:
        raise UsageError("--pair-by groups channel files for --channels: give --channels too (e.g. --channels 0,1)")
    _check_places(images, places, out_dir, recursive)
    groups = group_channel_files(places, pair_by, channels) if channels and pair_by else None  # before the model loads
    package = is_package(model)
    if intensity == "auto" and not package:
        intensity = "input"
    run = package_runner(model, weights, intensity) if package else _folder_runner(model, weights, intensity)
    if groups is not None:
        return predict_channel_groups(
            run,
            groups,
            out_dir,
            _predict_places,
            overwrite=overwrite,
            skip_existing=skip_existing,
            progress=progress,
            model=model,
            n_tiles=n_tiles,
        )
    return _predict_places(
        run, places, out_dir, overwrite=overwrite, skip_existing=skip_existing, progress=progress, model=model, n_tiles=n_tiles
    )


def _predict_places(
    run,
    places: list[tuple[Path, PurePosixPath]],
    out_dir: Path,
    *,
    model: Path,
    n_tiles: Optional[tuple[int, ...]],
    overwrite: bool,
    skip_existing: bool,
    progress: Optional[Callable[[int, int, str], None]],
) -> list[Prediction]:
    """Predict each input into ``out_dir``, under its place (see :func:`predict_images`): memory and every input checked
    first (:func:`_preflight`), then each image, time-lapse or OME-Zarr store in turn."""
    files = [f for f, _ in places]
    where = {f: out_dir / rel.parent for f, rel in places}  # the folder each image's results go to
    stores = {f: ZarrImage.open(f) for f in files if is_ome_zarr(f)}
    lapses = {f: layout for f in files if f not in stores and (layout := time_lapse(f)) is not None}
    check_memory(files, lapses=lapses, stores=stores)

    def targets(f: Path) -> list[Path]:
        return zarr_targets(run, f, where[f]) if f in stores else list(run.targets(f, where[f]))

    todo = _preflight(files, run, where, targets, overwrite, n_tiles, skip_existing, lapses, stores)
    training_um = getattr(run, "training_pixel_size", None)
    scale_notes = {
        f: note for f in sorted(todo) if (note := pixel_size_note(f, training_um, stores[f].pixel_size if f in stores else None))
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, (f, rel) in enumerate(places):
        if progress:
            progress(i, len(files), str(rel))
        if f in todo and f in stores and run.output == "labels":
            result = _segment_zarr(run, stores[f], where[f], n_tiles, overwrite or skip_existing, model)
        elif f in todo and f in stores:
            result = _predict_zarr(run, stores[f], where[f], n_tiles, overwrite or skip_existing, model)
        elif f in todo and f in lapses:
            result = _predict_time_lapse(run, f, where[f], lapses[f], n_tiles, overwrite or skip_existing)
        elif f in todo:
            result = run(f, where[f], n_tiles, overwrite or skip_existing)
        else:
            result = Prediction(f, targets(f), skipped=True)
        result.relative = str(rel)
        result.pixel_size_warning = scale_notes.get(f)
        results.append(result)
    if progress:
        progress(len(files), len(files), "")
    return results


def _check_places(given: list[Path], places: list[tuple[Path, PurePosixPath]], out_dir: Path, recursive: bool) -> None:
    """Refuse, before anything is read, outputs that would land on an input or on each other, and (``recursive``)
    an output folder inside a folder read recursively: the next run would take its results for inputs."""
    out = out_dir.resolve()
    if recursive:
        for p in map(Path, given):
            if p.is_dir() and (out == p.resolve() or p.resolve() in out.parents):
                raise DataError(
                    f"output folder {out_dir} is inside {p}, which --recursive reads: the next run would take these results "
                    f"for inputs; choose -o outside {p}"
                )
    seen: dict[PurePosixPath, Path] = {}
    for f, rel in places:
        if (out_dir / rel.parent).resolve() == f.parent.resolve():
            raise DataError(f"output folder {out_dir} holds the input {f.name}; choose another -o (inputs are never overwritten)")
        if rel in seen:
            raise DataError(
                f"two inputs are named {rel} ({seen[rel]} and {f}); outputs are named after their input, so predict "
                "them into different -o folders"
            )
        seen[rel] = f


def time_lapse(path: Path) -> Optional[tuple[int, str]]:
    """Where ``path`` keeps its frames, when its ImageJ/OME metadata declares a time axis: (the T axis, the frame's
    axes in tifffile's letters); None for an image that is a single frame (or does not say it is a time-lapse)."""
    declared = declared_axes(path)
    layout = frames_layout(declared, len(tiff_shape(path)[0]), "") if declared else None
    return None if layout is None or layout[1] is None else (layout[0], layout[1])


def check_memory(
    files: list[Path],
    available: Optional[int] = None,
    lapses: Optional[dict[Path, tuple[int, str]]] = None,
    stores: Optional[dict[Path, ZarrImage]] = None,
) -> None:
    """Refuse, before reading any pixel, an image whose whole-image prediction needs more memory than is free (for a
    time-lapse, a TIFF's or an OME-Zarr's, one frame's: frames are predicted and written one at a time)."""
    free = available if available is not None else available_memory()
    if free is None:
        return
    for f in files:
        if stores and f in stores:
            shape = stores[f].frames().shape
            fix = "write it as smaller images (e.g. by Z range or position)"
        else:
            shape, _ = tiff_shape(f)
            if lapses and f in lapses:
                shape = shape[: lapses[f][0]] + shape[lapses[f][0] + 1 :]
            fix = "crop it into parts in Fiji (Image > Crop, or Image > Stacks > Tools > Make Substack...)"
        need = math.prod(shape) * 4 * MEMORY_FACTOR
        if need > free:
            raise DataError(
                f"{f} is {'×'.join(map(str, shape))} pixels ({math.prod(shape) * 4 / 1e9:.1f} GB as float32): predicting it "
                f"needs about {need / 1e9:.0f} GB of memory and {free / 1e9:.1f} GB are free (tiles bound only the network's "
                f"share); {fix}, or use a machine with more memory"
            )


def pixel_size_note(path: Path, training: Optional[dict[str, float]], declared: Optional[PixelSize] = None) -> Optional[str]:
    """A warning (logged, and returned for the result) when ``path``'s pixel size (its metadata's, or ``declared``:
    an OME-Zarr's) differs from the training images' by more than :data:`~fijiport.calibration.TOLERANCE` along an
    axis both declare; None otherwise (or when either is unknown)."""
    if not training:
        return None
    found = declared or (None if is_ome_zarr(path) else read_pixel_size(path))
    if found is None:
        log.debug("%s declares no pixel size; not compared with the training images' %s", path.name, describe(training))
        return None
    differ = differences(found.um, training)
    if not differ:
        return None
    by = ", ".join(f"{a} {abs(r - 1) * 100:.0f}% {'larger' if r > 1 else 'smaller'}" for a, r in differ.items())
    note = (
        f"{path.name}: pixel size {found.text()} ({found.source} metadata) differs from the training images' "
        f"{describe(training)} ({by}): the model learned structures at the training pixel size and restores or segments "
        f"others poorly; {scale_hint(found.um, training)}"
    )
    log.warning("%s", note)
    return note


def _predict_time_lapse(run, path: Path, out_dir: Path, layout: tuple[int, str], n_tiles, overwrite: bool) -> Prediction:
    """A time-lapse predicted frame by frame, each frame normalised on its own (as csbdeep normalises the image it
    is given), and written as it goes into one stack with T first: memory follows a frame, not the file."""
    t, declared = layout
    frames = TiffFrames(path, t)
    if run.output == "labels":
        return _segment_time_lapse(run, path, frames, declared, out_dir, n_tiles, overwrite)
    [target] = run.targets(path, out_dir)
    used: list[tuple[int, ...]] = []

    def restored():
        for k, frame in enumerate(frames):
            out, tiles = run.predict_frame(frame, declared, n_tiles)
            used[:] = [tiles]
            log.debug("%s: frame %d of %d", path.name, k + 1, len(frames))
            yield out

    outputs = restored()
    first = next(outputs)
    try:
        stack_axes = "T" + (axes_from_tifffile(declared) or "")
    except ConfigError:  # axes fijiport has no letter for: the stack is written without axes metadata
        stack_axes = ""
    write_frames(target, itertools.chain([first], outputs), (len(frames), *first.shape), stack_axes, read_pixel_size(path), overwrite)
    return Prediction(path, [target], None, used[0], intensity=run.intensity)


def _segment_time_lapse(run, path: Path, frames: TiffFrames, declared: str, out_dir: Path, n_tiles, overwrite: bool) -> Prediction:
    """A time-lapse segmented frame by frame (each frame normalised on its own, labels 1..n per frame), written as
    one label stack with T first, one ROI set and one CSV with a frame column (:func:`write_label_frames`)."""
    used: list[tuple[int, ...]] = []

    def segmented():
        for k, frame in enumerate(frames):
            result, tiles = run.predict_labels_frame(frame, declared, n_tiles)
            used[:] = [tiles]
            log.debug("%s: frame %d of %d", path.name, k + 1, len(frames))
            yield result

    targets = tuple(run.targets(path, out_dir))
    written, n_objects, warnings = write_label_frames(segmented(), len(frames), targets, overwrite, path, run.object_stats)
    return Prediction(path, written, n_objects, used[0], warnings)


def _preflight(
    files: list[Path],
    run,
    where: dict[Path, Path],
    targets_of: Callable[[Path], list[Path]],
    overwrite: bool,
    n_tiles,
    skip_existing: bool = False,
    lapses=None,
    stores=None,
) -> set[Path]:
    """Read every image and check it (readable, finite, the model's dimensions, tiles, outputs free) before
    predicting any: a bad file is refused up front, not after hours of work with half the outputs written.
    The runners rely on it and do not check again. Returns the images to predict (with ``skip_existing``, those
    whose results do not all exist yet)."""
    todo = set()
    claimed: dict[Path, Path] = {}
    for f in files:
        targets = targets_of(f)
        for target in targets:
            if target in claimed:
                raise DataError(
                    f"{claimed[target]} and {f} would both write {target} (outputs are named after their input); predict "
                    "them into different -o folders"
                )
            claimed[target] = f
        if skip_existing and all(t.exists() for t in targets):
            continue
        if skip_existing and any(t.exists() for t in targets):
            log.info("%s: some of its results exist (an interrupted run?); predicting it again", f.name)
        if stores and f in stores:
            _check_zarr(stores[f], run, where[f], overwrite or skip_existing, n_tiles)
        elif lapses and f in lapses:
            _check_time_lapse(f, run, where[f], lapses[f], overwrite or skip_existing, n_tiles)
        else:
            img = read_tiff(f)
            check_pixels(f, img)
            run.check(f, img, where[f], overwrite or skip_existing, n_tiles)
        todo.add(f)
    skipped = len(files) - len(todo)
    if skipped:
        log.warning("skipping %d image(s) whose results exist (--skip-existing)", skipped)
    return todo


def _check_time_lapse(path: Path, run, out_dir: Path, layout: tuple[int, str], overwrite: bool, n_tiles) -> None:
    """The pre-flight of a time-lapse: frames of the model's dimensions, every frame readable and finite (read one
    at a time), the first frame a valid input for the model."""
    t, declared = layout
    frames = TiffFrames(path, t)
    if declared and len(declared) != len(run.image_axes):
        raise DataError(
            f"{path} is a time-lapse whose frames are {declared} ({list(frames.shape)}) but the model takes {run.image_axes} "
            f"images; {FIJI_AXES_FIX}"
        )
    for k, frame in enumerate(frames):
        check_pixels(path, frame)
        if k == 0:
            run.check(path, frame, out_dir, overwrite, n_tiles, declared=declared)


def _check_zarr(image: ZarrImage, run, out_dir: Path, overwrite: bool, n_tiles) -> None:
    """The pre-flight of an OME-Zarr image: outputs free, frames of the model's dimensions, the first frame finite and
    a valid input. Later frames are checked as they are read (a bad one stops the run and leaves no output)."""
    for target in zarr_targets(run, image.path, out_dir):
        check_output(target, overwrite)
    frames = image.frames()
    if len(frames.frame_axes) != len(run.image_axes):
        raise DataError(
            f"{image.path} holds frames of axes {frames.frame_axes} ({list(frames.shape)}) but the model takes {run.image_axes} "
            "images (OME-Zarr axes come from its multiscales metadata)"
        )
    first = frames[0]
    check_pixels(image.path, first)
    # overwrite=True: the runner's own check would look for its TIFF outputs; this store's were checked above
    run.check(image.path, first, out_dir, True, n_tiles, declared=frames.frame_axes)


def zarr_targets(run, path: Path, out_dir: Path) -> list[Path]:
    """What predicting the OME-Zarr ``path`` writes: ``OUT/<name>.ome.zarr`` (restored image, or label image), and for
    label models the ROI set ``<name>.zip`` (2D) and measurements ``<name>.csv`` beside it."""
    target = out_dir / output_name(path.name)
    if run.output != "labels":
        return [target]
    stem = store_stem(path.name)
    return [target, out_dir / f"{stem}.zip", out_dir / f"{stem}.csv"]


def _zarr_provenance(run, image: ZarrImage, model: Path) -> dict:
    from .. import __version__

    return {
        "model": str(Path(model).resolve()),
        "input": str(image.path.resolve()),
        "input_ngff_version": image.version,
        "intensity": run.intensity,
        "normalisation": "per frame, as csbdeep normalises the image it is given",
        "fijiport_version": __version__,
    }


def _segment_zarr(run, image: ZarrImage, out_dir: Path, n_tiles, overwrite: bool, model: Path) -> Prediction:
    """An OME-Zarr image segmented frame by frame (each frame normalised on its own, labels 1..n per frame) into an
    OME-Zarr label image (NGFF ``image-label``, the input's axes without channels, its calibration), with the ROI set
    (2D; ROIs at their frame) and the CSV (a ``frame`` column) beside it, as :func:`write_label_frames` writes them."""
    frames = image.frames()
    used: list[tuple[int, ...]] = []
    label_axes = image.axes.replace("C", "")
    timed = "T" in image.axes
    targets = zarr_targets(run, image.path, out_dir)

    def segmented():
        for k, frame in enumerate(frames):
            if k:
                check_pixels(image.path, frame)
            result, tiles = run.predict_labels_frame(frame, frames.frame_axes, n_tiles)
            used[:] = [tiles]
            yield result

    def write_stack(labelled, shape, _axes) -> None:
        write_ome_zarr(targets[0], labelled, shape if timed else shape[1:], label_axes, image.pixel_size, dtype="uint16",
                       attributes=_zarr_provenance(run, image, model), labels=True, overwrite=overwrite)  # fmt: skip

    written, n_objects, warnings = write_label_frames(
        segmented(), len(frames), (targets[0], targets[1], targets[2]), overwrite, image.path, run.object_stats, stack_writer=write_stack
    )
    return Prediction(image.path, written, n_objects, used[0] if used else (), warnings)


def _predict_zarr(run, image: ZarrImage, out_dir: Path, n_tiles, overwrite: bool, model: Path) -> Prediction:
    """An OME-Zarr image restored frame by frame (each normalised on its own, as csbdeep normalises what it is
    given) into an OME-Zarr of the same axes and calibration (NGFF 0.4), written as it goes: memory follows a frame."""
    frames = image.frames()
    target = out_dir / output_name(image.path.name)
    used: list[tuple[int, ...]] = []

    def restored():
        for k, frame in enumerate(frames):
            if k:
                check_pixels(image.path, frame)
            out, tiles = run.predict_frame(frame, frames.frame_axes, n_tiles)
            if out.shape != frame.shape:
                raise DataError(
                    f"{model} gives outputs of shape {list(out.shape)} for frames of "
                    f"{list(frame.shape)}; fijiport writes OME-Zarr outputs of the input's shape only (write TIFFs instead)"
                )
            used[:] = [tiles]
            log.debug("%s: frame %d of %d", image.path.name, k + 1, len(frames))
            yield out

    write_ome_zarr(
        target, restored(), image.shape, image.axes, image.pixel_size, attributes=_zarr_provenance(run, image, model), overwrite=overwrite
    )
    return Prediction(image.path, [target], None, used[0] if used else (), intensity=run.intensity)


def _folder_runner(model_dir: Path, weights: str, intensity: str = "input"):

    if weights in ("onnx", "openvino"):
        raise DataError(
            f"{model_dir} is a model folder (Keras weights); export it first (`fijiport export {model_dir} -o model.zip`) "
            f"to predict with ONNX weights{' on OpenVINO' if weights == 'openvino' else ''}"
        )
    if not model_dir.is_dir() or not has_network_config(model_dir):
        raise DataError(
            f"{model_dir} is neither a model folder with config.json nor a bioimage.io zip; pass a csbdeep CARE "
            "or stardist model folder, or an exported .zip"
        )
    return folder_runner(model_dir, intensity=intensity)
