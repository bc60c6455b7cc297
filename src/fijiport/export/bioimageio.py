"""``fijiport export``: a csbdeep CARE model folder → a bioimage.io model package (rdf 0.5).

The package carries three weight formats made from one network and checked against each other
before anything is written: the Keras model (``keras_hdf5``), a frozen TensorFlow graph that old
TensorFlow runtimes load (``tensorflow_saved_model_bundle``) and ONNX (opset ≤ 17).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .. import __version__
from ..config.export import CARE_CITATION, ExportMeta
from ..data.normalize import scale_range
from ..errors import DataError, ExportError
from ..files import all_or_nothing, read_tiff
from .package import export_outputs
from .card import agreement_markdown, qc_markdown, render_card
from .cover import make_cover
from .halo import min_input_size, package_halo
from .model_folder import CareModelFolder, load_care_keras, read_care_model_folder

log = logging.getLogger(__name__)

INPUT_ID, OUTPUT_ID = "input", "output"
TF_BUNDLE_VERSION = "1.15.0"
"""``tensorflow_version`` declared for the frozen graph: deepImageJ picks the engine closest to it,
and the graph is made for TF 1.13–2.10 (what Fiji's and KNIME's plugins embed)."""
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


def export_care(
    model_dir: Path,
    output_zip: Path,
    meta: Optional[ExportMeta] = None,
    options: Optional[ExportOptions] = None,
    *,
    progress: Optional[Callable[[str], None]] = None,
) -> ExportResult:
    """Export a csbdeep CARE model folder (2D or 3D, trained anywhere) to a bioimage.io zip.

    The zip is written to a temporary file and renamed at the end: it exists whole or not at all.
    The model folder is only read.
    """
    options = options or ExportOptions()
    meta = meta or ExportMeta()
    output_zip = Path(output_zip)
    outputs = export_outputs(output_zip, options.fiji_zip, options.overwrite)
    step = progress or (lambda _msg: None)

    step("reading model folder")
    folder = read_care_model_folder(model_dir, options.weights, options.percentiles)
    warnings = _metadata_warnings(meta)
    for w in warnings:
        log.info("zoo: %s", w)
    test_raw = _test_image(folder, options.test_input)

    step("loading network")
    model = load_care_keras(folder)
    keras_model = model.keras_model
    halo = package_halo(folder.depth, folder.kernel_size)
    div_by = folder.div_by
    min_size = min_input_size(halo, div_by)

    x_raw = _crop_test_input(test_raw, folder, min_size)
    x_batch = x_raw[np.newaxis].astype(np.float32)
    spatial = tuple(range(1, x_batch.ndim - 1))
    x_norm = scale_range(x_batch, spatial, *folder.percentiles)
    step("computing reference output")
    y_ref = np.asarray(keras_model(x_norm, training=False)).astype(np.float32)

    from .onnx import run_onnx
    from .tf_graph import run_graph

    with tempfile.TemporaryDirectory(prefix="fijiport-export-") as tmp_str:
        tmp = Path(tmp_str)
        lambdas = [layer.name for layer in keras_model.layers if type(layer).__name__ == "Lambda"]
        h5_path: Optional[Path] = None
        if lambdas:
            # Keras 3 (bioimageio.core, deepImageJ's Python) refuses to deserialise Lambda layers
            # (arbitrary code); probabilistic CARE has one, so its Keras weights stay out.
            warnings.append(f"Keras weights left out: layer(s) {', '.join(lambdas)} are Lambda layers that Keras 3 "
                            "will not load; the package carries the TensorFlow and ONNX weights")
        else:
            step("writing Keras weights")
            h5_path = tmp / "keras_model.h5"
            keras_model.save(str(h5_path), save_format="h5", include_optimizer=False)

        step("freezing the TensorFlow graph and converting it to ONNX")
        compatible, saved_dir, tf_zip, onnx_path = write_network_weights(keras_model, tmp, options.opset, x_norm)

        step("checking weight formats agree")
        diffs = {"keras_hdf5": 0.0} if h5_path is not None else {}
        diffs["tensorflow_saved_model_bundle"] = _max_diff(run_graph(compatible, x_norm), y_ref)
        diffs["onnx"] = _max_diff(run_onnx(onnx_path, x_norm, INPUT_ID), y_ref)
        bad = {k: v for k, v in diffs.items() if not v <= AGREEMENT_ATOL}
        if bad:
            raise ExportError(f"converted weights disagree with the Keras model (max |diff| {bad}, limit {AGREEMENT_ATOL}); please report this model")

        np.save(tmp / "test_input.npy", x_batch)
        np.save(tmp / "test_output.npy", y_ref)
        import tifffile

        tifffile.imwrite(tmp / "sample_input.tif", np.squeeze(x_raw).astype(np.float32))
        tifffile.imwrite(tmp / "sample_output.tif", np.squeeze(y_ref[0]).astype(np.float32))
        cover = make_cover(x_norm[0], y_ref[0], tmp / "cover.png", spatial_ndim=len(folder.spatial_axes),
                           labels=("input", "CARE prediction"))

        name = meta.name or f"CARE {folder.name}"
        qc = _read_qc(options.qc_json)
        readme = tmp / "README.md"
        readme.write_text(_model_card(folder, meta, name, output_zip.name, halo, div_by, min_size, diffs, qc))

        step("writing bioimage.io package")
        from .._bioimageio_compat import offline_tolerant_github_check
        from .package import write_package

        with offline_tolerant_github_check():
            descr = _model_descr(folder, meta, name, tmp, cover, readme, h5_path, tf_zip, onnx_path,
                                 halo=halo, div_by=div_by, min_size=min_size, opset=options.opset, diffs=diffs,
                                 tf_version=_installed_tf_version())
        with all_or_nothing(*outputs):
            write_package(descr, output_zip, overwrite=options.overwrite)

            fiji_zip = fiji_macro = None
            if options.fiji_zip is not None:
                from .fiji_zip import csbdeep_meta, write_care_macro, write_fiji_zip
                from .halo import unet_halo

                step("writing the CSBDeep-Fiji / KNIME zip and macro")
                overlap = unet_halo(folder.depth, folder.kernel_size)
                fiji_zip = write_fiji_zip(saved_dir, csbdeep_meta(folder.config, folder.axes, div_by, overlap),
                                          Path(options.fiji_zip), overwrite=options.overwrite)
                fiji_macro = write_care_macro(fiji_zip, fiji_zip.with_suffix(".ijm"), name=name, axes=folder.axes,
                                              div_by=div_by, overlap=halo, percentiles=folder.percentiles,
                                              overwrite=options.overwrite)
    return ExportResult(output_zip, name, list(diffs), diffs, halo, min_size, div_by, warnings, compatible.rewrites,
                        fiji_zip, fiji_macro)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise ExportError(f"converted weights give output shape {a.shape}, the Keras model {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _installed_tf_version() -> str:
    import tensorflow as tf

    return tf.__version__.split("-")[0].split("+")[0]


def _test_image(folder: CareModelFolder, test_input: Optional[Path]) -> np.ndarray:
    if test_input is not None:
        path = Path(test_input)
        if not path.is_file():
            raise DataError(f"--test-input {path} does not exist")
        return read_tiff(path)
    record = folder.training_record or {}
    data_dir = record.get("data_dir")
    if data_dir:
        for split in ("test_images", "train_images"):
            sub = "test" if split == "test_images" else "train"
            for name in record.get(split, []):
                candidate = Path(data_dir) / sub / "low" / name
                if candidate.is_file():
                    log.info("test input: %s", candidate)
                    return read_tiff(candidate)
    raise DataError(
        f"no test input for {folder.path}: pass --test-input IMAGE.tif (a typical low-SNR input image; "
        "models trained by fijiport use their held-out test images)"
    )


def _crop_test_input(image: np.ndarray, folder: CareModelFolder, min_size: int) -> np.ndarray:
    """Bring the test image into network layout (spatial..., C) and centre-crop it to valid sizes."""
    spatial = folder.spatial_axes
    n_c = folder.n_channel_in
    expected = len(spatial) + (1 if n_c > 1 else 0)
    x = np.asarray(image)
    if x.ndim == expected + 1 and n_c == 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if n_c > 1 and x.ndim == expected and x.shape[-1] != n_c and x.shape[0] == n_c:
        x = np.moveaxis(x, 0, -1)  # ImageJ writes channels first
    if x.ndim != expected:
        axes = spatial + ("C" if n_c > 1 else "")
        raise DataError(f"test input has shape {x.shape} but the model expects axes {axes} ({expected} dimensions)")
    if n_c == 1:
        x = x[..., np.newaxis]
    elif x.shape[-1] != n_c:
        raise DataError(f"test input has {x.shape[-1]} channels (last axis) but the model expects {n_c}")
    return crop_to_valid_size(x, spatial, folder.div_by, min_size)


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
    x = x[tuple(slices) + (slice(None),)]
    if any(p for _, p in pads):
        log.info("test input mirrored from %s to the minimum size %d along the short axes", x.shape[:-1], min_size)
        mode = pad_mode or ("reflect" if all(p < n for (_, p), n in zip(pads, x.shape)) else "symmetric")
        x = np.pad(x, pads + [(0, 0)], mode=mode)
    return x


def write_network_weights(keras_model, tmp: Path, opset: int, x_norm: np.ndarray):
    """Freeze a Keras network into the TF-1.x-compatible graph (each rewrite proven on ``x_norm``), save it
    as ``tmp/tf_saved_model_bundle.zip`` and convert it to ``tmp/weights.onnx``.

    Returns (compatible graph, SavedModel folder, bundle zip, ONNX path)."""
    from .onnx import frozen_graph_to_onnx
    from .tf_graph import check_equivalent, freeze_keras_model, make_tf1_compatible, write_saved_model, zip_folder

    frozen = freeze_keras_model(keras_model, INPUT_ID, OUTPUT_ID)
    compatible = make_tf1_compatible(frozen)
    check_equivalent(frozen, compatible, x_norm)
    saved_dir = write_saved_model(compatible, tmp / "saved_model", INPUT_ID, OUTPUT_ID)
    tf_zip = zip_folder(saved_dir, tmp / "tf_saved_model_bundle.zip")
    onnx_path = frozen_graph_to_onnx(compatible, tmp / "weights.onnx", input_key=INPUT_ID, output_key=OUTPUT_ID, opset=opset,
                                     probe=x_norm)
    return compatible, saved_dir, tf_zip, onnx_path


def _read_qc(path: Optional[Path]) -> Optional[dict[str, Any]]:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"--qc {path} is not a readable qc.json ({e}); run `fijiport qc` to create it") from None


def _metadata_warnings(meta: ExportMeta) -> list[str]:
    """What the BioImage Model Zoo expects and the metadata lacks, each with the option that fixes it."""
    out = []
    if not meta.authors:
        out.append("no authors: the Zoo expects them; set --author 'Name' or `authors:` in --meta FILE.yaml")
    if not any(p.github_user for p in meta.maintainers + meta.authors):
        out.append("no maintainer with a GitHub user: the Zoo contacts models' maintainers on GitHub; "
                   "set --maintainer GITHUB_USER or `maintainers: [{github_user: ...}]` in --meta")
    if not meta.description:
        out.append("no description: set --description or `description:` in --meta")
    if not meta.tags:
        out.append("no tags: set --tag (repeatable) or `tags:` in --meta, e.g. denoising, fluorescence-light-microscopy")
    if not meta.version:
        out.append("no version: set --version or `version:` in --meta, e.g. 1.0.0")
    return out


def _model_card(folder: CareModelFolder, meta: ExportMeta, name: str, zip_name: str, halo: int, div_by: int,
                min_size: int, diffs: dict[str, float], qc: Optional[dict[str, Any]]) -> str:
    record = folder.training_record or {}
    if meta.training_data:
        training_data = meta.training_data
    elif record:
        training_data = (f"Trained with fijiport on {len(record.get('train_images', []))} paired image(s) "
                         f"({record.get('patches', {}).get('train', '?')} patches of shape "
                         f"{record.get('patches', {}).get('shape', '?')}), axes {record.get('axes', '?')}; "
                         f"{len(record.get('test_images', []))} image(s) held out for QC.")
    else:
        training_data = "Not described. Set `training_data:` in --meta to describe or link the training data."
    cites = [CARE_CITATION, *meta.cite]
    citations = "\n".join(f"- {c.text}" + (f" https://doi.org/{c.doi}" if c.doi else (f" {c.url}" if c.url else "")) for c in cites)
    weights = ", ".join(f"`{k}`" for k in diffs)
    return render_card("model_card_care.md", {
        "name": name,
        "description": meta.description or "A CARE network for image restoration, exported with fijiport.",
        "depth": folder.depth,
        "kernel_size": folder.kernel_size,
        "first_filters": folder.config.get("unet_n_first", 32),
        "residual": ", residual" if folder.config.get("unet_residual") else "",
        "input_axes": "b" + folder.spatial_axes.lower() + "c",
        "input_axes_lower": "batch, " + ", ".join(folder.spatial_axes.lower()) + ", channel",
        "output_axes": "b" + folder.spatial_axes.lower() + "c",
        "n_channel_in": folder.n_channel_in,
        "n_channel_out": _n_out(folder),
        "probabilistic": " (probabilistic: Laplace mean and scale per channel)" if folder.probabilistic else "",
        "div_by": div_by,
        "spatial_axes": folder.spatial_axes,
        "min_size": min_size,
        "halo": halo,
        "p_low": folder.percentiles[0],
        "p_high": folder.percentiles[1],
        "percentiles_source": {"training": "as in training", "given": "given at export",
                               "csbdeep default": "csbdeep's default; the training percentiles were not recorded"}[folder.percentiles_source],
        "weights_list": weights,
        "training_data": training_data,
        "qc_section": qc_markdown(qc),
        "zip_name": zip_name,
        "model_folder_name": folder.name,
        "agreement_table": agreement_markdown(diffs),
        "citations": citations,
        "extra": meta.documentation_extra or "",
        "fijiport_version": __version__,
        "weights_file": folder.weights_path.name,
    })


def _n_out(folder: CareModelFolder) -> int:
    return folder.n_channel_out * (2 if folder.probabilistic else 1)


def _model_descr(folder: CareModelFolder, meta: ExportMeta, name: str, tmp: Path, cover: Path, readme: Path,
                 h5_path: Optional[Path], tf_zip: Path, onnx_path: Path, *, halo: int, div_by: int, min_size: int,
                 opset: int, diffs: dict[str, float], tf_version: str):
    from bioimageio.spec.model import v0_5 as bio

    from .package import optional_rdf_fields, rdf_people_and_citations

    authors, maintainers, cites = rdf_people_and_citations(meta, [CARE_CITATION])

    spatial_in = [bio.SpaceInputAxis(id=bio.AxisId(a.lower()), size=bio.ParameterizedSize(min=min_size, step=div_by))
                  for a in folder.spatial_axes]
    channel_names = [bio.Identifier(f"channel{i}") for i in range(folder.n_channel_in)]
    inputs = [bio.InputTensorDescr(
        id=bio.TensorId(INPUT_ID),
        axes=[bio.BatchAxis(), *spatial_in, bio.ChannelAxis(channel_names=channel_names)],
        test_tensor=bio.FileDescr(source=tmp / "test_input.npy"),
        sample_tensor=bio.FileDescr(source=tmp / "sample_input.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
            axes=[bio.AxisId(a.lower()) for a in folder.spatial_axes],
            min_percentile=folder.percentiles[0], max_percentile=folder.percentiles[1]))],
    )]
    if folder.probabilistic:
        out_names = [bio.Identifier(f"{kind}{i}") for kind in ("mean", "scale") for i in range(folder.n_channel_out)]
    else:
        out_names = [bio.Identifier(f"channel{i}") for i in range(folder.n_channel_out)]
    spatial_out = [bio.SpaceOutputAxisWithHalo(id=bio.AxisId(a.lower()), halo=halo,
                                               size=bio.SizeReference(tensor_id=bio.TensorId(INPUT_ID), axis_id=bio.AxisId(a.lower())))
                   for a in folder.spatial_axes]
    outputs = [bio.OutputTensorDescr(
        id=bio.TensorId(OUTPUT_ID),
        axes=[bio.BatchAxis(), *spatial_out, bio.ChannelAxis(channel_names=out_names)],
        test_tensor=bio.FileDescr(source=tmp / "test_output.npy"),
        sample_tensor=bio.FileDescr(source=tmp / "sample_output.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32"),
    )]
    keras = None
    if h5_path is not None:
        keras = bio.KerasHdf5WeightsDescr(source=h5_path, tensorflow_version=bio.Version(tf_version),
                                          comment=f"csbdeep CARE network from {folder.weights_path.name} (tf_keras)")
    # unset fields, not None: bioimageio.spec writes explicitly set Nones as `key: null` into the rdf
    tf_parent = {"parent": "keras_hdf5"} if keras else {}
    tf_bundle = bio.TensorflowSavedModelBundleWeightsDescr(
        source=tf_zip, tensorflow_version=bio.Version(TF_BUNDLE_VERSION), **tf_parent,
        comment="frozen inference graph (v1 SavedModel, tag serve, signature serving_default) for TensorFlow 1.13-2.10"
                + ("" if keras else f"; frozen from the csbdeep CARE network in {folder.weights_path.name}"))
    onnx_weights = bio.OnnxWeightsDescr(source=onnx_path, opset_version=opset,
                                        parent="keras_hdf5" if keras else "tensorflow_saved_model_bundle",
                                        comment="converted with tf2onnx from the frozen graph; IR version 8 for onnxruntime >= 1.13")
    weights = bio.WeightsDescr(**({"keras_hdf5": keras} if keras else {}),
                               tensorflow_saved_model_bundle=tf_bundle, onnx=onnx_weights)
    tags = list(dict.fromkeys([*meta.tags, "care", "denoising", "restoration", "csbdeep", "fijiport",
                               f"{len(folder.spatial_axes)}d"]))
    config = {
        "deepimagej": {
            "pyramidal_model": False,
            "allow_tiling": True,
            "model_keys": None,
            "prediction": {"preprocess": [{"spec": None}], "postprocess": [{"spec": None}]},
        },
        "fijiport": {
            "version": __version__,
            "kind": "care",
            "csbdeep_config": folder.config,
            "percentiles": list(folder.percentiles),
            "div_by": div_by,
            "halo": halo,
            "max_abs_diff_to_keras": diffs,
        },
    }
    kwargs: dict[str, Any] = dict(
        name=_safe_name(name),
        description=meta.description or "CARE image restoration network (csbdeep), exported with fijiport.",
        authors=authors,
        maintainers=maintainers,
        cite=cites,
        license=meta.license,
        tags=tags,
        covers=[bio.FileDescr(source=cover)],
        documentation=bio.FileDescr(source=readme),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        config=config,
    )
    kwargs.update(optional_rdf_fields(meta))
    try:
        return bio.ModelDescr(**kwargs)
    except Exception as e:
        raise ExportError(f"the model description is invalid: {e}") from None


def _safe_name(name: str) -> str:
    import re

    cleaned = re.sub(r"[^A-Za-z0-9 _\-()]", "-", name).strip()
    return cleaned[:128] or "CARE model"
