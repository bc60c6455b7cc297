"""``fijiport export``: a model folder (any kind, trained by fijiport or not) → a bioimage.io package (rdf 0.5),
and on request the zip CSBDeep-Fiji / StarDist-Fiji / KNIME load plus a filled-in Fiji macro.

One flow for every kind; the kind (:mod:`fijiport.kinds`) supplies what differs. The package carries the
network frozen into a graph old TensorFlow runtimes load (``tensorflow_saved_model_bundle``), ONNX (opset ≤ 17)
and, where Keras 3 can load it, the Keras model (``keras_hdf5``); every converted format is checked against
the Keras output before anything is written, and the outputs appear whole or not at all.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, cast

import numpy as np

from ..artifacts.model_folder import ModelFolder
from ..artifacts.qc_report import DenoisingQc, QcReport, RestorationQc, SegmentationQc, read_qc_report
from ..axes import frames_layout
from ..config.export import ExportMeta, checked_percentiles
from ..errors import DataError, ExportError
from ..files import TiffFrames, all_or_nothing, check_output, declared_axes, read_tiff, tiff_shape
from ..kinds.base import ExportContext, test_image_layout
from ..package.read import offline_tolerant_github_check
from ..package.tolerance import agree, strict
from .card import render_card
from .fiji_zip import write_fiji_zip
from .macros import write_filled_macro
from .onnx import frozen_graph_to_onnx, run_onnx
from .rdf import export_outputs, metadata_warnings, model_descr, write_package
from .tf_graph import check_equivalent, freeze_keras_model, make_tf1_compatible, run_graph, write_saved_model, zip_folder

log = logging.getLogger(__name__)

INPUT_ID = "input"
AGREEMENT_ATOL = 1e-4
"""Largest max |diff| between a converted weight format and the Keras reference that export accepts."""
MAX_TEST_SIZE = {"Z": 32, "Y": 256, "X": 256}
"""Test tensors are centre crops of at most this size, to keep packages small."""


@dataclass
class ExportOptions:
    test_input: Optional[Path] = None
    """Image for the test tensors; by default the first held-out test image of the training data."""
    weights: Optional[str] = None
    """Weights file inside the model folder (default: weights_best.h5, else weights_last.h5)."""
    percentiles: Optional[tuple[float, float]] = None
    """Normalisation percentiles when the model folder does not record them."""
    qc_json: Optional[Path] = None
    """A qc.json from ``fijiport qc`` whose figures go into the model card."""
    opset: int = 17
    fiji_zip: Optional[Path] = None
    """Also write the CSBDeep-Fiji/KNIME SavedModel zip here, and a Fiji macro next to it (same name, .ijm)."""
    overwrite: bool = False
    qc_from_other_model: bool = False
    """Accept a ``qc_json`` that measured other weights than the exported ones; the card then says so."""


@dataclass
class ExportResult:
    path: Path
    name: str
    weight_formats: list[str]
    max_diffs: dict[str, float]
    halo: int
    min_size: int
    div_by: int
    warnings: list[str] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)
    fiji_zip: Optional[Path] = None
    fiji_macro: Optional[Path] = None
    fiji_extras: list[Path] = field(default_factory=list)
    """More files beside the Fiji zip (N2V: the zip for the N2V Fiji plugin)."""


def export_model(
    model_dir: Path,
    output_zip: Path,
    meta: Optional[ExportMeta] = None,
    options: Optional[ExportOptions] = None,
    *,
    kind: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> ExportResult:
    """Export a model folder (CARE or StarDist, 2D or 3D, trained anywhere) to a bioimage.io zip.

    Parameters
    ----------
    model_dir : the csbdeep/stardist model folder; only read.
    output_zip : the package to write (``.zip``); written to a temporary file and renamed at the end.
    meta : the rdf's descriptive fields (name, authors, ...).
    options : test input, weights file, percentiles, QC report, ONNX opset, Fiji zip, overwrite.
    kind : the model kind the caller expects (``care``, ``stardist``); refused when the folder is another.
    progress : called with a short description of each step.

    Returns
    -------
    ExportResult : the package's path and name, each weight format's max |diff| to the Keras output, the
    halo and size step, warnings about missing Zoo metadata, the graph rewrites, and the Fiji zip and macro.
    """
    options = options or ExportOptions()
    meta = meta or ExportMeta()
    output_zip = Path(output_zip)
    # every option and input is checked before the first slow step (loading the network, converting)
    outputs = export_outputs(output_zip, options.fiji_zip, options.overwrite)
    if options.fiji_zip is not None:
        check_macro_path(Path(options.fiji_zip))
    step = progress or (lambda _msg: None)

    step("reading model folder")
    folder = ModelFolder.open(model_dir, weights=options.weights, percentiles=checked_percentiles(options.percentiles), kind=kind)
    k = folder.kind
    k.check_export(folder, fiji_zip=options.fiji_zip is not None)
    if options.fiji_zip is not None:
        extras = k.fiji_extra_outputs(folder, Path(options.fiji_zip))
        for extra in extras:
            check_output(extra, options.overwrite)
        outputs += extras
    warnings = metadata_warnings(meta)
    for w in warnings:
        log.info("zoo: %s", w)
    qc = read_qc_report(options.qc_json)
    qc_note = check_qc(qc, folder, options.qc_json, other_model=options.qc_from_other_model)
    test_raw = _test_image(folder, options.test_input)

    step(f"loading the {k.title} network")
    model = folder.load_keras()
    geometry = k.geometry(folder, model)
    x_raw = crop_to_valid_size(
        test_image_layout(test_raw, folder), folder.spatial_axes, geometry.div_by, geometry.min_size, pad_mode=k.test_pad_mode
    )
    x_batch = x_raw[np.newaxis].astype(np.float32)
    x_norm = k.normalize_input(folder, x_batch)
    name = k.package_name(meta.name, folder)
    ctx = ExportContext(folder, model, geometry, meta, name, output_zip.name, Path(), INPUT_ID, x_norm=x_norm, qc=qc, qc_note=qc_note)
    ctx.extra["qc_from_other_model"] = bool(qc_note) and options.qc_from_other_model

    step("computing the reference output")
    net, keep_h5, net_warnings = k.export_network(ctx)
    warnings += net_warnings
    ctx.y_ref = np.asarray(net(x_norm, training=False)).astype(np.float32)
    k.check_reference(ctx)

    with tempfile.TemporaryDirectory(prefix="fijiport-export-") as tmp_str:
        ctx.tmp = tmp = Path(tmp_str)
        h5_path: Optional[Path] = None
        if keep_h5:
            step("writing Keras weights")
            h5_path = tmp / "keras_model.h5"
            net.save(str(h5_path), save_format="h5", include_optimizer=False)
        ctx.keras_hdf5 = h5_path is not None

        step("freezing the TensorFlow graph and converting it to ONNX")
        compatible, saved_dir, tf_zip, onnx_path = write_network_weights(net, tmp, options.opset, x_norm, k.graph_output_id)
        assert onnx_path is not None

        step("checking weight formats agree")
        converted = {}
        if h5_path is not None:
            converted["keras_hdf5"] = reload_keras_hdf5(h5_path, x_norm)
        converted["tensorflow_saved_model_bundle"] = run_graph(compatible, x_norm)
        converted["onnx"] = run_onnx(onnx_path, x_norm, INPUT_ID)
        ctx.diffs = {}
        bad = {}
        for fmt, y in converted.items():
            agreement = agree(y, ctx.y_ref, strict(AGREEMENT_ATOL))
            if agreement.max_abs_diff is None:
                raise ExportError(f"converted weights ({fmt}) give {agreement.reason}; please report this model")
            ctx.diffs[fmt] = agreement.max_abs_diff
            if not agreement.ok:
                bad[fmt] = agreement.max_abs_diff
        if bad:
            raise ExportError(
                f"converted weights disagree with the Keras model (max |diff| {bad}, limit {AGREEMENT_ATOL}); please report this model"
            )
        k.check_formats(ctx, converted)

        test_output, sample_output = k.test_outputs(ctx)
        np.save(tmp / "test_input.npy", x_batch)
        np.save(tmp / "test_output.npy", test_output)
        import tifffile

        tifffile.imwrite(tmp / "sample_input.tif", np.squeeze(x_raw).astype(np.float32))
        tifffile.imwrite(tmp / "sample_output.tif", sample_output)
        cover = k.cover(ctx, tmp / "cover.png")
        readme = tmp / "README.md"
        readme.write_text(render_card(k.card_template, k.card_values(ctx)))

        step("writing bioimage.io package")

        with offline_tolerant_github_check():
            descr = model_descr(ctx, cover, readme, h5_path, tf_zip, onnx_path, opset=options.opset, tf_version=_installed_tf_version())
        with all_or_nothing(*outputs):
            write_package(descr, output_zip, overwrite=options.overwrite)
            fiji_zip = fiji_macro = None
            fiji_extras: list[Path] = []
            if options.fiji_zip is not None:
                step("writing the Fiji / KNIME zip and macro")
                assert ctx.x_norm is not None and ctx.y_ref is not None
                fiji_net = k.fiji_network(ctx, net)
                fiji_dir, tensors = saved_dir, (ctx.x_norm, ctx.y_ref)
                if fiji_net is not None:  # a graph of its own for the Fiji plugins (N2V: the normalisation inside)
                    fiji_graph, fiji_dir = write_network_weights(
                        fiji_net, tmp / "fiji", options.opset, x_batch, k.graph_output_id, onnx=False
                    )[:2]
                    check_fiji_graph(fiji_graph, x_batch, test_output)
                    tensors = (x_batch, test_output)  # raw pixels in, the input's scale out
                fiji_zip = write_fiji_zip(
                    fiji_dir, k.fiji_meta(ctx), Path(options.fiji_zip), overwrite=options.overwrite, test_tensors=tensors
                )
                fiji_extras = k.write_fiji_extras(ctx, tf_zip, fiji_zip, overwrite=options.overwrite)
                values, note = k.fiji_macro_values(ctx, fiji_zip)
                fiji_macro = write_filled_macro(k.fiji_macro, fiji_zip.with_suffix(".ijm"), values, note, overwrite=options.overwrite)
    return ExportResult(
        output_zip,
        name,
        list(ctx.diffs),
        ctx.diffs,
        geometry.halo,
        geometry.min_size,
        geometry.div_by,
        warnings,
        compatible.rewrites,
        fiji_zip,
        fiji_macro,
        fiji_extras,
    )


def export_care(
    model_dir: Path,
    output_zip: Path,
    meta: Optional[ExportMeta] = None,
    options: Optional[ExportOptions] = None,
    *,
    progress: Optional[Callable[[str], None]] = None,
) -> ExportResult:
    """:func:`export_model` for a csbdeep CARE model folder (refuses other kinds).

    Parameters
    ----------
    model_dir
        The model folder; only read.
    output_zip
        The package to write (``.zip``).
    meta
        The rdf's descriptive fields (name, authors, ...).
    options
        Test input, weights file, percentiles, QC report, ONNX opset, Fiji zip, overwrite.
    progress
        Called with a short description of each step (e.g. :class:`fijiport.notebook.StepBar`).

    Returns
    -------
    ExportResult
        As :func:`export_model` returns it.
    """
    return export_model(model_dir, output_zip, meta, options, kind="care", progress=progress)


def export_stardist(
    model_dir: Path,
    output_zip: Path,
    meta: Optional[ExportMeta] = None,
    options: Optional[ExportOptions] = None,
    *,
    progress: Optional[Callable[[str], None]] = None,
) -> ExportResult:
    """:func:`export_model` for a stardist model folder: the package outputs the label image (2D) or prob/dist (3D).

    Parameters
    ----------
    model_dir
        The model folder; only read.
    output_zip
        The package to write (``.zip``).
    meta
        The rdf's descriptive fields (name, authors, ...).
    options
        Test input, weights file, percentiles, QC report, ONNX opset, Fiji zip, overwrite.
    progress
        Called with a short description of each step (e.g. :class:`fijiport.notebook.StepBar`).

    Returns
    -------
    ExportResult
        As :func:`export_model` returns it.
    """
    return export_model(model_dir, output_zip, meta, options, kind="stardist", progress=progress)


def check_macro_path(fiji_zip: Path) -> None:
    """The filled-in Fiji macro passes the zip's path inside ``[...]``: ImageJ reads such a value only up to the first
    ``]``, and reads non-ASCII characters of a macro garbled (both measured in ImageJ 1.53t). Refuse such paths."""
    path = str(Path(fiji_zip).resolve())
    bad = "]" if "]" in path else next((c for c in path if not c.isascii()), "")
    if bad:
        raise ExportError(
            f"--fiji-zip {fiji_zip}: its full path {path!r} holds {bad!r}, which the Fiji macro cannot pass to "
            "the plugin (ImageJ cuts a path at ']' and garbles non-ASCII characters); write the Fiji zip to a "
            "folder whose path has only ASCII letters, digits and _-./ (e.g. --fiji-zip ~/models/model_fiji.zip)"
        )


def check_qc(qc: Optional[QcReport], folder: ModelFolder, path: Optional[Path], *, other_model: bool = False) -> str:
    """Refuse a qc.json that measured another model (its weights' sha256, or for older reports the model folder and
    weights file, differ from the exported ones) unless ``other_model``; refuse QC of another task (a StarDist QC
    for a CARE model) always. Returns the note the model card puts before the figures ('' when there is none)."""
    if qc is None:
        return ""
    task = "segmentation" if isinstance(qc, SegmentationQc) else "denoising" if isinstance(qc, DenoisingQc) else "restoration"
    if task != folder.kind.qc_task:
        raise ExportError(
            f"--qc {path} is the {task} QC of a {qc.kind} model; {folder.path} is a {folder.kind.title} model, "
            f"measured by {folder.kind.qc_task} QC: run `fijiport qc {folder.path} DATA/test -o qc` and pass its qc.json"
        )
    if qc.weights_sha256:
        same = qc.weights_sha256 == folder.weights_sha256()
    else:  # written before fijiport recorded the weights' hash: the folder and weights file must be these
        same = Path(qc.model).resolve() == folder.path.resolve() and qc.weights in ("", folder.weights_path.name)
    notes = []
    if not same:
        measured = f"{qc.model} ({qc.weights or 'weights'}" + (f", sha256 {qc.weights_sha256[:12]}…)" if qc.weights_sha256 else ")")
        if not other_model:
            raise ExportError(
                f"--qc {path} measured another model, {measured}, not {folder.path} ({folder.weights_path.name}, "
                f"sha256 {folder.weights_sha256()[:12]}…): run `fijiport qc {folder.path} DATA/test -o qc` for this "
                "model, or pass --qc-from-other-model to put those figures in the card marked as another model's"
            )
        log.warning("the QC figures in the card are another model's (%s), as --qc-from-other-model asked", measured)
        notes.append(f"**These figures were measured on another model**, `{measured}`, not on the weights of this package.")
    if qc.split == "train":
        notes.append("**Measured on the model's own training images**: these figures flatter the model.")
    notes += [f"**Warning**: {w}." for w in qc.warnings]
    gain = qc.psnr_gain if isinstance(qc, RestorationQc) else None
    if isinstance(qc, RestorationQc) and gain is not None and gain < 0 and not qc.warnings:  # reports written before QC warned
        notes.append(
            f"**Warning**: the model makes the test images worse (mean PSNR {qc.summary['psnr']['input']:.2f} → "
            f"{qc.summary['psnr']['prediction']:.2f} dB)."
        )
    return "".join(f"{n}\n\n" for n in notes)


def reload_keras_hdf5(h5_path: Path, x: np.ndarray) -> np.ndarray:
    """The written ``.h5`` loaded back as a consumer loads a Keras file (``load_model``, no custom objects, not
    compiled; tf_keras in this Keras-2 process) and run on ``x``: its agreement with the network is measured, not
    assumed. (bioimageio.core's Keras-3 loader reads it again in ``fijiport validate``.)"""
    import tensorflow as tf

    try:
        model = tf.keras.models.load_model(str(h5_path), compile=False)
    except Exception as e:  # whatever Keras raises: the file export wrote is unusable
        raise ExportError(
            f"the Keras weights export wrote ({h5_path.name}) do not load back ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "please report this model"
        ) from None
    return np.asarray(model(x, training=False)).astype(np.float32)


def _installed_tf_version() -> str:
    import tensorflow as tf

    return tf.__version__.split("-")[0].split("+")[0]


def _test_image(folder: ModelFolder, test_input: Optional[Path]) -> np.ndarray:
    """``--test-input``, or the first image of the training record's splits (held-out test images first); of a
    time-lapse, its first frame (the network takes frames)."""
    if test_input is not None:
        path = Path(test_input)
        if not path.is_file():
            raise DataError(f"--test-input {path} does not exist")
        return _first_frame(path, None, folder.image_axes)
    record, kind = folder.training_record, folder.kind
    if record is not None and record.data_dir:
        for split in kind.test_image_splits:
            sub = "test" if split == "test" else "train"
            for name in record.images_of(split):
                candidate = Path(record.data_dir) / sub / kind.data_input_dir / name
                if candidate.is_file():
                    log.info("test input: %s", candidate)
                    return _first_frame(candidate, record.axes, folder.image_axes)
    raise DataError(f"no test input for {folder.path}: pass --test-input IMAGE.tif ({kind.test_input_hint})")


def _first_frame(path: Path, data_axes: Optional[str], image_axes: str) -> np.ndarray:
    """The image, or the first frame of a time-lapse (``T`` in the data folder's or the file's axes), read alone."""
    shape, _ = tiff_shape(path)
    layout = frames_layout(data_axes or declared_axes(path), len(shape), image_axes)
    if layout is None:
        return read_tiff(path)
    log.info("test input: the first frame of the time-lapse %s", path.name)
    return TiffFrames(path, layout[0])[0]


def crop_to_valid_size(x: np.ndarray, spatial: str, div_by: int, min_size: int, pad_mode: Optional[str] = None) -> np.ndarray:
    """Centre-crop a (spatial..., C) test image to at most :data:`MAX_TEST_SIZE` in multiples of ``div_by``,
    mirroring axes shorter than ``min_size`` up to it (the spec wants inputs larger than twice the halo;
    consumers pad short images too). ``pad_mode`` defaults to reflect, symmetric where reflect cannot reach."""
    slices, pads = [], []
    for a, s in zip(spatial, x.shape[:-1]):
        size = max(min(s, MAX_TEST_SIZE[a]) // div_by * div_by, min(s // div_by * div_by, min_size))
        if size < div_by:
            raise DataError(f"test input is {s} pixels along {a}; the model needs at least {div_by}")
        start = (s - size) // 2
        slices.append(slice(start, start + size))
        pads.append((0, max(0, min_size - size)))
    x = x[(*slices, slice(None))]
    if any(p for _, p in pads):
        log.info("test input mirrored from %s to the minimum size %d along the short axes", x.shape[:-1], min_size)
        mode = pad_mode or ("reflect" if all(p < n for (_, p), n in zip(pads, x.shape)) else "symmetric")
        x = np.pad(x, [*pads, (0, 0)], mode=cast(Any, mode))
    return x


def check_fiji_graph(graph, x_raw: np.ndarray, expected: np.ndarray) -> float:
    """Prove a Fiji zip's own graph (one with the package's pre- and postprocessing built in) gives the package's test
    output from its raw test input; the limit is the weight formats' agreement limit, relative to the output's range."""
    y = run_graph(graph, x_raw)
    scale = max(float(np.abs(expected).max()), 1.0)
    agreement = agree(y, expected, strict(AGREEMENT_ATOL * scale))
    if not agreement.ok:
        raise ExportError(f"the Fiji zip's graph (normalisation built in) does not reproduce the package's test output "
                          f"({agreement.reason}); please report this model")  # fmt: skip
    log.info("Fiji graph reproduces the package's test output: max |diff| %.3g", agreement.max_abs_diff)
    return float(agreement.max_abs_diff or 0.0)


def write_network_weights(keras_model, tmp: Path, opset: int, x_norm: np.ndarray, output_id: str = "output", *, onnx: bool = True):
    """Freeze a Keras network into the TF-1.x-compatible graph (each rewrite proven on ``x_norm``), save it
    as ``tmp/tf_saved_model_bundle.zip`` and (with ``onnx``) convert it to ``tmp/weights.onnx``.

    Returns (compatible graph, SavedModel folder, bundle zip, ONNX path or None)."""
    tmp.mkdir(parents=True, exist_ok=True)
    frozen = freeze_keras_model(keras_model, INPUT_ID, output_id)
    compatible = make_tf1_compatible(frozen)
    check_equivalent(frozen, compatible, x_norm)
    saved_dir = write_saved_model(compatible, tmp / "saved_model", INPUT_ID, output_id)
    tf_zip = zip_folder(saved_dir, tmp / "tf_saved_model_bundle.zip")
    if not onnx:
        return compatible, saved_dir, tf_zip, None
    onnx_path = frozen_graph_to_onnx(compatible, tmp / "weights.onnx", input_key=INPUT_ID, output_key=output_id, opset=opset, probe=x_norm)
    return compatible, saved_dir, tf_zip, onnx_path
