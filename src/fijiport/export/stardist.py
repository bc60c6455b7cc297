"""``fijiport export`` for StarDist model folders (trained by fijiport or with stardist directly).

One network serves every consumer: the stardist U-Net wrapped so that it returns a single tensor
``[prob, dist...]`` at full resolution (probability placed on the grid by a transposed convolution
with unit kernel, distances repeated; the layout StarDist-Fiji needs). The bioimage.io package
declares ``stardist_postprocessing`` with grid 1 on that tensor, so its output is the label image;
non-maximum suppression then sees exactly the candidates stardist's own grid-based prediction sees.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

from .. import __version__
from ..config.export import STARDIST_CITATIONS, ExportMeta
from ..data.normalize import scale_range
from ..errors import DataError, ExportError
from ..files import all_or_nothing, check_hdf5, read_tiff
from .bioimageio import (
    AGREEMENT_ATOL,
    INPUT_ID,
    TF_BUNDLE_VERSION,
    ExportOptions,
    ExportResult,
    _metadata_warnings,
    _read_qc,
    _safe_name,
    crop_to_valid_size,
    write_network_weights,
)
from .halo import min_input_size, round_halo
from .package import export_outputs
from .card import qc_markdown, render_card

log = logging.getLogger(__name__)

OUTPUT_ID = "labels"
BORDER = 2
"""Border, in grid cells, in which stardist's predict_instances drops candidates; at full resolution
this is ``BORDER * grid`` pixels per axis."""
MISMATCH_PPM = 100
"""Label pixels per million allowed to differ between weight formats (the spec's default tolerance)."""


def is_stardist_folder(model_dir: Path) -> bool:
    cfg = Path(model_dir) / "config.json"
    try:
        return cfg.is_file() and "n_rays" in json.loads(cfg.read_text())
    except json.JSONDecodeError:
        return False


def load_stardist_folder(model_dir: Path, weights: Optional[str] = None):
    """Check and load a stardist model folder; returns (model, config dict, weights path, thresholds)."""
    from .._tf import legacy_tensorflow, quiet_stdout

    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("n_classes"):
        raise ExportError(f"{model_dir} is a multi-class StarDist model; export handles single-class models")
    if config.get("backbone", "unet") != "unet":
        raise ExportError(f"{model_dir} uses the {config.get('backbone')} backbone; export handles the U-Net backbone")
    names = [weights] if weights else ["weights_best.h5", "weights_last.h5"]
    found = [model_dir / n for n in names if (model_dir / n).is_file()]
    if not found:
        raise DataError(f"{model_dir} has no {' or '.join(names)}; copy weights_best.h5 from where the model was trained "
                        "into this folder (fijiport export also takes another .h5 with --weights FILE.h5)")
    check_hdf5(found[0])
    thr_path = model_dir / "thresholds.json"
    if not thr_path.is_file():
        raise DataError(f"{model_dir} has no thresholds.json; StarDist-Fiji and deepImageJ need the model's own "
                        "thresholds: optimise them (model.optimize_thresholds in Python, or train with fijiport)")
    thresholds = json.loads(thr_path.read_text())
    if not {"prob", "nms"} <= set(thresholds):
        raise DataError(f"{thr_path} must hold 'prob' and 'nms'")
    legacy_tensorflow()
    from stardist.models import StarDist2D, StarDist3D

    cls = StarDist2D if int(config.get("n_dim", 2)) == 2 else StarDist3D
    try:
        with quiet_stdout():
            model = cls(None, name=model_dir.name, basedir=str(model_dir.parent))
            model.keras_model.load_weights(str(found[0]))
    except Exception as e:
        raise DataError(f"cannot load {found[0]} into the network of {model_dir / 'config.json'}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}. The file is damaged or belongs to another network: "
                        "copy the model folder again, whole, from where it was trained") from None
    return model, config, found[0], {"prob": float(thresholds["prob"]), "nms": float(thresholds["nms"])}


def full_resolution_network(model):
    """The stardist network as one Keras model: input → concat(prob on the grid, dist repeated)."""
    import tensorflow as tf

    layers = tf.keras.layers
    n_dim = model.config.n_dim
    grid = tuple(model.config.grid)
    prob, dist = model.keras_model.outputs[0], model.keras_model.outputs[1]
    if any(g > 1 for g in grid):
        transpose = layers.Conv2DTranspose if n_dim == 2 else layers.Conv3DTranspose
        upsample = layers.UpSampling2D if n_dim == 2 else layers.UpSampling3D
        prob = transpose(1, (1,) * n_dim, strides=grid, padding="same", kernel_initializer="ones", use_bias=False,
                         name="prob_on_grid")(prob)
        dist = upsample(grid, name="dist_repeated")(dist)
    out = layers.Concatenate(name="prob_dist")([prob, dist])
    return tf.keras.Model(model.keras_model.inputs[0], out, name="stardist_full_resolution")


def border(grid) -> tuple:
    """stardist's border in grid cells, as pixels of the full-resolution output, per axis."""
    return tuple((BORDER * int(g), BORDER * int(g)) for g in grid)


def labels_in_package(n_dim: int) -> bool:
    """Whether the package's output is the label image (``stardist_postprocessing``) or prob/dist.

    bioimageio.core 0.11's 3D StarDist postprocessing asserts an int32 label image, but stardist's
    ``polyhedron_to_label`` returns uint16, so every 3D package with that postprocessing fails
    ``bioimageio test``. 3D packages therefore output probability and distances, and
    :func:`labels_from_prob_dist` (also used by ``fijiport predict``) makes the labels.
    """
    return n_dim == 2


def labels_from_prob_dist(prob_dist: np.ndarray, config: dict, thresholds: dict) -> np.ndarray:
    """Labels from a (1, *spatial, 1 + n_rays) full-resolution prob/dist tensor of the model with stardist
    ``config``: in 2D bioimageio.core's own stardist postprocessing (grid 1), in 3D the same steps with
    stardist's functions and the model's own rays (int32 labels)."""
    n_dim, n_rays = int(config["n_dim"]), int(config["n_rays"])
    b = border(config.get("grid") or (1,) * n_dim)
    if n_dim == 3:
        from stardist import Rays_GoldenSpiral, non_maximum_suppression_3d, polyhedron_to_label
        from stardist.matching import relabel_sequential
        from stardist.rays3d import rays_from_json

        anisotropy = config.get("anisotropy")
        rays = (rays_from_json(config["rays_json"]) if config.get("rays_json")
                else Rays_GoldenSpiral(n_rays, anisotropy=tuple(anisotropy) if anisotropy else None))
        prob, dist = prob_dist[0, ..., 0], np.maximum(prob_dist[0, ..., 1:], 1e-3)
        points, probi, disti = non_maximum_suppression_3d(dist, prob, rays, grid=(1, 1, 1), prob_thresh=thresholds["prob"],
                                                          nms_thresh=thresholds["nms"], b=b, verbose=False)
        labels = polyhedron_to_label(disti, points, rays=rays, prob=probi, shape=prob.shape, verbose=False)
        labels, _, _ = relabel_sequential(labels)
        return labels.astype(np.int32)[np.newaxis, ..., np.newaxis]
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.axis import AxisId
    from bioimageio.core.proc_ops import StardistPostprocessing2D

    dims = (AxisId("batch"), AxisId("y"), AxisId("x"), AxisId("channel"))
    sample = Sample(members={"pd": Tensor(prob_dist, dims=dims)}, stat={}, id="export")
    op = StardistPostprocessing2D(prob_dist_input_id="pd", instance_labels_output_id="pd", grid=(1, 1),
                                  prob_threshold=thresholds["prob"], nms_threshold=thresholds["nms"], b=b, n_rays=n_rays)
    op(sample)
    return sample.members["pd"].data.to_numpy()


def export_stardist(model_dir: Path, output_zip: Path, meta: Optional[ExportMeta] = None,
                    options: Optional[ExportOptions] = None, *, progress: Optional[Callable[[str], None]] = None) -> ExportResult:
    """Export a stardist model folder to a bioimage.io package whose output is the label image."""
    from .onnx import run_onnx
    from .tf_graph import run_graph

    options = options or ExportOptions()
    meta = meta or ExportMeta()
    output_zip = Path(output_zip)
    outputs = export_outputs(output_zip, options.fiji_zip, options.overwrite)
    step = progress or (lambda _m: None)
    step("loading the stardist model")
    model, config, weights_path, thresholds = load_stardist_folder(model_dir, options.weights)
    model_dir = Path(model_dir)
    n_dim = int(config["n_dim"])
    if options.fiji_zip is not None and n_dim != 2:
        raise ExportError("StarDist-Fiji segments 2D images only; drop --fiji-zip for this 3D model "
                          "(the bioimage.io package still works in Python and with `fijiport predict`)")
    spatial = "YX" if n_dim == 2 else "ZYX"
    n_rays = int(config["n_rays"])
    n_channel = int(config.get("n_channel_in", 1))
    percentiles = _percentiles(model_dir, options.percentiles)
    div = {a: int(d) for a, d in zip(spatial, model._axes_div_by(spatial))}
    div_by = max(div.values())
    overlap = {a: int(o) for a, o in zip(spatial, model._axes_tile_overlap(spatial))}
    halo = round_halo(max(overlap.values()), div_by)
    min_size = min_input_size(halo, div_by)
    warnings = _metadata_warnings(meta)
    anisotropy = config.get("anisotropy") or (1.0,) * n_dim

    x_raw = _test_input(model_dir, options.test_input, spatial, n_channel, div_by, min_size)
    x_batch = x_raw[np.newaxis].astype(np.float32)
    x_norm = scale_range(x_batch, tuple(range(1, n_dim + 1)), *percentiles)
    step("building the full-resolution network")
    net = full_resolution_network(model)
    y_ref = np.asarray(net(x_norm, training=False)).astype(np.float32)
    grid = tuple(int(g) for g in config["grid"])
    labels_ref = labels_from_prob_dist(y_ref, config, thresholds)
    if labels_ref.max() == 0:
        raise ExportError("the model finds no object in the test input, so the package could not show that its weights "
                          "reproduce labels; pass a typical image with objects via --test-input, or train longer")

    with tempfile.TemporaryDirectory(prefix="fijiport-export-") as tmp_str:
        tmp = Path(tmp_str)
        step("freezing the TensorFlow graph and converting it to ONNX")
        compatible, saved_dir, tf_zip, onnx_path = write_network_weights(net, tmp, options.opset, x_norm)
        step("checking weight formats agree")
        diffs, label_diffs = {}, {}
        for fmt, y in (("tensorflow_saved_model_bundle", run_graph(compatible, x_norm)), ("onnx", run_onnx(onnx_path, x_norm, INPUT_ID))):
            diffs[fmt] = float(np.max(np.abs(y - y_ref)))
            label_diffs[fmt] = int((labels_from_prob_dist(y, config, thresholds) != labels_ref).sum())
        bad = {k: v for k, v in diffs.items() if not v <= AGREEMENT_ATOL}
        if bad:
            raise ExportError(f"converted weights disagree with the Keras model (max |diff| {bad}); please report this model")
        allowed = MISMATCH_PPM * labels_ref.size / 1e6
        unstable = {k: v for k, v in label_diffs.items() if v > allowed}
        if unstable:
            raise ExportError(
                f"the network outputs agree (max |diff| {max(diffs.values()):.1g}) but the labels differ in {unstable} pixels "
                f"(allowed {allowed:.0f}): candidates of nearly equal probability swap places in non-maximum suppression. "
                "This happens with barely trained models; train longer, or pass a --test-input with clearer objects")
        np.save(tmp / "test_input.npy", x_batch)
        import tifffile

        tifffile.imwrite(tmp / "sample_input.tif", np.squeeze(x_raw).astype(np.float32))
        if labels_in_package(n_dim):
            np.save(tmp / "test_output.npy", labels_ref.astype(np.int32))
            tifffile.imwrite(tmp / "sample_output.tif", np.squeeze(labels_ref).astype(np.uint16))
        else:
            np.save(tmp / "test_output.npy", y_ref)
            tifffile.imwrite(tmp / "sample_output.tif", y_ref[0].astype(np.float32))
        cover = _cover(x_norm[0], labels_ref[0], tmp / "cover.png", n_dim)
        attach_dir = tmp / "stardist"
        attach_dir.mkdir()
        (attach_dir / "weights_best.h5").write_bytes(weights_path.read_bytes())
        (attach_dir / "config.json").write_text(json.dumps(config, indent=2))
        (attach_dir / "thresholds.json").write_text(json.dumps(thresholds, indent=2))

        name = meta.name or f"StarDist {model_dir.name}"
        if "stardist" not in name.lower():
            name = f"StarDist {name}"  # deepImageJ recognises StarDist models by name
        qc = _read_qc(options.qc_json)
        readme = tmp / "README.md"
        readme.write_text(_card(meta, name, config, thresholds, percentiles, halo, div_by, min_size, diffs, label_diffs,
                                qc, model_dir, weights_path, n_dim))
        step("writing bioimage.io package")
        from .._bioimageio_compat import offline_tolerant_github_check
        from .package import write_package

        with offline_tolerant_github_check():
            descr = _descr(meta, name, config, thresholds, percentiles, tmp, cover, readme, tf_zip, onnx_path, attach_dir,
                           halo=halo, div_by=div_by, min_size=min_size, opset=options.opset, diffs=diffs, anisotropy=anisotropy)
        with all_or_nothing(*outputs):
            write_package(descr, output_zip, overwrite=options.overwrite)
            fiji_zip = fiji_macro = None
            if options.fiji_zip is not None:
                from .fiji_zip import write_fiji_zip, write_stardist_macro

                step("writing the StarDist-Fiji zip and macro")
                axes = str(config["axes"]).upper()
                meta_json = {"type": "StarDist", "n_rays": n_rays, "grid": list(config["grid"]), "axes": axes,
                             "axes_div_by": [div.get(a, 1) for a in axes], "tile_overlap": [overlap.get(a, 0) for a in axes],
                             "thresholds": thresholds, "exported_by": f"fijiport {__version__}"}
                fiji_zip = write_fiji_zip(saved_dir, meta_json, Path(options.fiji_zip), overwrite=options.overwrite)
                fiji_macro = write_stardist_macro(fiji_zip, fiji_zip.with_suffix(".ijm"), name=name, thresholds=thresholds,
                                                  percentiles=percentiles, overwrite=options.overwrite)
    return ExportResult(output_zip, name, list(diffs), diffs, halo, min_size, div_by, warnings, compatible.rewrites,
                        fiji_zip, fiji_macro)


def _percentiles(model_dir: Path, given) -> tuple[float, float]:
    if given is not None:
        return float(given[0]), float(given[1])
    cfg = model_dir / "fijiport_config.yaml"
    if cfg.is_file():
        data = yaml.safe_load(cfg.read_text()) or {}
        if "percentile_low" in data:
            return float(data["percentile_low"]), float(data["percentile_high"])
    log.warning("%s does not record its normalisation percentiles; using stardist's usual 1/99.8 (if training used others, export with --percentiles LOW,HIGH)", model_dir)
    return 1.0, 99.8


def _test_input(model_dir: Path, test_input: Optional[Path], spatial: str, n_channel: int, div_by: int, min_size: int) -> np.ndarray:
    if test_input is not None:
        if not Path(test_input).is_file():
            raise DataError(f"--test-input {test_input} does not exist")
        image = read_tiff(Path(test_input))
    else:
        record_path = model_dir / "fijiport_training.json"
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        image = None
        for key, sub in (("test_images", "test"), ("validation_images", "train"), ("train_images", "train")):
            for name in record.get(key, []):
                candidate = Path(record.get("data_dir", "")) / sub / "images" / name
                if candidate.is_file():
                    image = read_tiff(candidate)
                    break
            if image is not None:
                break
        if image is None:
            raise DataError(f"no test input for {model_dir}: pass --test-input IMAGE.tif (a typical image to segment)")
    x = np.asarray(image)
    expected = len(spatial) + (1 if n_channel > 1 else 0)
    if x.ndim != expected:
        raise DataError(f"test input has shape {x.shape} but the model expects axes {spatial + ('C' if n_channel > 1 else '')}")
    if n_channel == 1:
        x = x[..., np.newaxis]
    elif x.shape[-1] != n_channel and x.shape[0] == n_channel:
        x = np.moveaxis(x, 0, -1)
    return crop_to_valid_size(x, spatial, div_by, min_size, pad_mode="symmetric")


def _qc_section(qc) -> str:
    if not qc:
        return qc_markdown(None)
    if qc.get("kind") != "stardist":
        return qc_markdown(qc)
    r = qc["at_iou_0.5"]
    return (f"On {qc['n_images']} held-out image(s) at IoU 0.5 (fijiport qc): precision {r['precision']:.3f}, "
            f"recall {r['recall']:.3f}, F1 {r['f1']:.3f}, accuracy {r['accuracy']:.3f}, panoptic quality {r['panoptic_quality']:.3f}.")


def _card(meta, name, config, thresholds, percentiles, halo, div_by, min_size, diffs, label_diffs, qc, model_dir, weights_path, n_dim) -> str:
    spatial = "yx" if n_dim == 2 else "zyx"
    rows = ["| weights | max \\|diff\\| of prob/dist to Keras | label pixels differing |", "|---|---|---|"]
    rows += [f"| {k} | {v:.2g} | {label_diffs[k]} |" for k, v in diffs.items()]
    cites = [*STARDIST_CITATIONS, *meta.cite]
    record_path = model_dir / "fijiport_training.json"
    if meta.training_data:
        training = meta.training_data
    elif record_path.is_file():
        rec = json.loads(record_path.read_text())
        training = (f"Trained with fijiport on {len(rec.get('train_images', []))} image(s), thresholds optimised on "
                    f"{len(rec.get('validation_images', []))}; {len(rec.get('test_images', []))} held out for QC.")
    else:
        training = "Not described. Set `training_data:` in --meta to describe or link the training data."
    return render_card("model_card_stardist.md", {
        "name": name, "description": meta.description or "A StarDist model for star-convex object segmentation, exported with fijiport.",
        "depth": config.get("unet_n_depth"), "n_rays": config["n_rays"], "grid": tuple(config["grid"]),
        "input_axes": "b" + spatial + "c", "output_axes": "b" + spatial + "c", "div_by": div_by,
        "spatial_axes": spatial.upper(), "min_size": min_size, "halo": halo, "p_low": f"{percentiles[0]:g}",
        "p_high": f"{percentiles[1]:g}", "prob_thresh": f"{thresholds['prob']:.4f}", "nms_thresh": f"{thresholds['nms']:.2f}",
        "weights_list": ", ".join(f"`{k}`" for k in diffs), "training_data": training, "qc_section": _qc_section(qc),
        "n_dim": n_dim, "agreement_table": "\n".join(rows), **_card_variant(n_dim, name, thresholds, percentiles),
        "citations": "\n".join(f"- {c.text}" + (f" https://doi.org/{c.doi}" if c.doi else f" {c.url or ''}") for c in cites),
        "extra": meta.documentation_extra or "", "fijiport_version": __version__, "model_folder_name": model_dir.name,
        "weights_file": weights_path.name,
    })


def _card_variant(n_dim: int, name: str, thresholds: dict, percentiles) -> dict:
    """The card's passages that differ between 2D packages (label output) and 3D ones (prob/dist output)."""
    if labels_in_package(n_dim):
        return {
            "output_desc": "label image, one integer per object",
            "postprocessing_paragraph": "The network weights output object probability and ray distances at full resolution (the grid "
                                        "is upsampled inside the network, as StarDist-Fiji requires); the package's "
                                        "`stardist_postprocessing` turns them into labels.",
            "fiji_section": "**Fiji, deepImageJ 3.1** (runs stardist's Python postprocessing; pass the thresholds, the defaults "
                            "are wrong):\n\n```\nrun(\"DeepImageJ StarDist\", \"model=[" + name + "] prob_thresh="
                            + f"{thresholds['prob']:.4f} min_percentile={percentiles[0]:g} max_percentile={percentiles[1]:g}"
                            + "\");\n```\n\n**Fiji, StarDist-Fiji**: export with `fijiport export MODEL -o model.zip --fiji-zip "
                            "stardist_fiji.zip` and use the macro written next to it (StarDist-Fiji does not read a custom "
                            "model's thresholds; the macro passes them).",
            "validation_sentence": "Every weight format in this package reproduces the test output (labels) from the test input:",
        }
    return {
        "output_desc": "object probability and one distance per ray, per voxel",
        "postprocessing_paragraph": "The package outputs the network's object probability and ray distances at full resolution "
                                    "(the grid is upsampled inside the network). It does not declare `stardist_postprocessing`: "
                                    "bioimageio.core 0.11's 3D version rejects the uint16 labels stardist 0.9 makes, so such a "
                                    "package fails `bioimageio test`. Labels come from stardist's 3D non-maximum suppression with "
                                    "the thresholds in `config.stardist`: `fijiport predict THIS.zip images/ -o out/` does it.",
        "fiji_section": "**Fiji**: StarDist-Fiji and deepImageJ's StarDist command segment 2D images only; use "
                        "`fijiport predict` or stardist in Python for 3D stacks.",
        "validation_sentence": "Every weight format in this package reproduces the test output (probability and distances) "
                                "from the test input, and the labels made from them:",
    }


def _cover(x: np.ndarray, labels: np.ndarray, path: Path, n_dim: int) -> Path:
    """The input beside the input with the objects coloured (middle Z slice for stacks), 2:1."""
    from .cover import make_cover, to_display

    img = np.asarray(x)
    lab = np.squeeze(np.asarray(labels), axis=-1) if np.asarray(labels).shape[-1] == 1 else np.asarray(labels)
    if n_dim == 3:
        img, lab = img[img.shape[0] // 2], lab[lab.shape[0] // 2]
    base = to_display(img, 2)
    colours = np.random.default_rng(0).uniform(0.3, 1.0, size=(int(lab.max()) + 1, 3))
    grey = np.stack([base] * 3, -1)
    rgb = np.where(lab[..., None] > 0, 0.45 * grey + 0.55 * colours[lab], grey)
    return make_cover(base, rgb, path, labels=("input", "StarDist objects"), spatial_ndim=2, rgb_right=True)


def _descr(meta, name, config, thresholds, percentiles, tmp, cover, readme, tf_zip, onnx_path, attach_dir, *, halo, div_by,
           min_size, opset, diffs, anisotropy):
    from bioimageio.spec.model import v0_5 as bio

    n_dim = int(config["n_dim"])
    spatial = ("y", "x") if n_dim == 2 else ("z", "y", "x")
    n_channel = int(config.get("n_channel_in", 1))

    from .package import optional_rdf_fields, rdf_people_and_citations

    authors, maintainers, cites = rdf_people_and_citations(meta, list(STARDIST_CITATIONS))
    inputs = [bio.InputTensorDescr(
        id=bio.TensorId(INPUT_ID),
        axes=[bio.BatchAxis(), *(bio.SpaceInputAxis(id=bio.AxisId(a), size=bio.ParameterizedSize(min=min_size, step=div_by))
                                 for a in spatial),
              bio.ChannelAxis(channel_names=[bio.Identifier(f"channel{i}") for i in range(n_channel)])],
        test_tensor=bio.FileDescr(source=tmp / "test_input.npy"),
        sample_tensor=bio.FileDescr(source=tmp / "sample_input.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
            axes=[bio.AxisId(a) for a in spatial], min_percentile=percentiles[0], max_percentile=percentiles[1]))],
    )]
    kw_cls = bio.StardistPostprocessingKwargs2D if n_dim == 2 else bio.StardistPostprocessingKwargs3D
    kwargs = dict(grid=(1,) * n_dim, b=border(config["grid"]), prob_threshold=thresholds["prob"], nms_threshold=thresholds["nms"],
                  n_rays=int(config["n_rays"]))
    if n_dim == 3:
        kwargs["anisotropy"] = tuple(float(a) for a in anisotropy)
    with_labels = labels_in_package(n_dim)
    channels = ["labels"] if with_labels else ["prob", *(f"dist{i}" for i in range(int(config["n_rays"])))]
    outputs = [bio.OutputTensorDescr(
        id=bio.TensorId(OUTPUT_ID if with_labels else "prob_dist"),
        axes=[bio.BatchAxis(), *(bio.SpaceOutputAxisWithHalo(id=bio.AxisId(a), halo=halo,
                                                              size=bio.SizeReference(tensor_id=bio.TensorId(INPUT_ID), axis_id=bio.AxisId(a)))
                                 for a in spatial),
              bio.ChannelAxis(channel_names=[bio.Identifier(c) for c in channels])],
        test_tensor=bio.FileDescr(source=tmp / "test_output.npy"),
        sample_tensor=bio.FileDescr(source=tmp / "sample_output.tif"),
        data=bio.IntervalOrRatioDataDescr(type="int32" if with_labels else "float32"),
        **({"postprocessing": [bio.StardistPostprocessingDescr(kwargs=kw_cls(**kwargs))]} if with_labels else {}),
    )]
    weights = bio.WeightsDescr(
        tensorflow_saved_model_bundle=bio.TensorflowSavedModelBundleWeightsDescr(
            source=tf_zip, tensorflow_version=bio.Version(TF_BUNDLE_VERSION),
            comment="frozen full-resolution stardist network (prob on the grid, dist repeated) for TensorFlow 1.13-2.10"),
        onnx=bio.OnnxWeightsDescr(source=onnx_path, opset_version=opset, parent="tensorflow_saved_model_bundle",
                                  comment="converted with tf2onnx from the frozen graph; IR version 8 for onnxruntime >= 1.13"),
    )
    import stardist

    config_block: dict[str, Any] = {
        "stardist": {"stardist_version": stardist.__version__, "weights": "weights_best.h5", "config": config,
                     "thresholds": thresholds, "postprocessing": {"grid_in_network": True, "border_in_grid_cells": BORDER}},
        "deepimagej": {"pyramidal_model": False, "allow_tiling": True, "model_keys": None,
                       "prediction": {"preprocess": [{"spec": None}], "postprocess": [{"spec": None}]}},
        "fijiport": {"version": __version__, "kind": "stardist", "percentiles": list(percentiles), "div_by": div_by,
                     "halo": halo, "max_abs_diff_to_keras": diffs},
    }
    tags = list(dict.fromkeys([*meta.tags, "stardist", "segmentation", "instance-segmentation", "fijiport", f"{n_dim}d"]))
    kw: dict[str, Any] = dict(
        name=_safe_name(name), description=meta.description or "StarDist model for star-convex object segmentation, exported with fijiport.",
        authors=authors, maintainers=maintainers, cite=cites, license=meta.license, tags=tags,
        covers=[bio.FileDescr(source=cover)], documentation=bio.FileDescr(source=readme),
        attachments=[bio.FileDescr(source=attach_dir / n) for n in ("weights_best.h5", "config.json", "thresholds.json")],
        inputs=inputs, outputs=outputs, weights=weights, config=config_block,
    )
    kw.update(optional_rdf_fields(meta))
    try:
        return bio.ModelDescr(**kw)
    except Exception as e:
        raise ExportError(f"the model description is invalid: {e}") from None
