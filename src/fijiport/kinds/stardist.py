"""StarDist (star-convex object detection, stardist): an image in, a label image out.

One network serves every consumer: the stardist U-Net wrapped so that it returns a single tensor
``[prob, dist...]`` at full resolution (probability placed on the grid by a transposed convolution
with unit kernel, distances repeated; the layout StarDist-Fiji needs). The bioimage.io package
declares ``stardist_postprocessing`` with grid 1 on that tensor, so its output is the label image;
non-maximum suppression then sees exactly the candidates stardist's own grid-based prediction sees.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Optional, cast

import numpy as np

from .. import __version__
from ..config.export import CiteEntry
from ..errors import DataError, ExportError
from ..package.config_blocks import FijiportBlock, StardistBlock, deepimagej_block
from ._unet import min_input_size, round_halo
from .base import NO_QC, NOT_DESCRIBED, ExportContext, Geometry, KindPrediction, ModelKind, NetworkSetting, citation_lines, loading_error
from .cover import make_cover, to_display

if TYPE_CHECKING:
    from ..artifacts.model_folder import ModelFolder

BORDER = 2
"""Border, in grid cells, in which stardist's predict_instances drops candidates; at full resolution
this is ``BORDER * grid`` pixels per axis."""
MISMATCH_PPM = 100
"""Label pixels per million allowed to differ between weight formats (the spec's default tolerance)."""
ATTACHED = ("weights_best.h5", "config.json", "thresholds.json")
"""The files a StarDist package attaches for deepImageJ's StarDist command (and ``predict --weights keras``)."""


def stardist_citations():

    return (
        CiteEntry(
            text="Schmidt, Weigert, Broaddus, Myers, Cell Detection with Star-convex Polygons, MICCAI 2018",
            doi="10.1007/978-3-030-00934-2_30",
        ),
        CiteEntry(
            text="Weigert, Schmidt, Haase, Sugawara, Myers, Star-convex Polyhedra for 3D Object Detection and "
            "Segmentation in Microscopy, WACV 2020",
            doi="10.1109/WACV45572.2020.9093435",
        ),
    )


def normalize_image(x: np.ndarray, axes: str, p_low: float, p_high: float) -> np.ndarray:
    """stardist's usual input normalisation: percentiles per channel over the spatial axes."""
    from csbdeep.utils import normalize

    spatial = tuple(i for i, a in enumerate(axes) if a in "ZYX")
    return normalize(x.astype(np.float32), p_low, p_high, axis=spatial).astype(np.float32)  # pyright: ignore[reportArgumentType]


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
        prob = transpose(1, (1,) * n_dim, strides=grid, padding="same", kernel_initializer="ones", use_bias=False, name="prob_on_grid")(
            prob
        )
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
        rays = (
            rays_from_json(config["rays_json"])
            if config.get("rays_json")
            else Rays_GoldenSpiral(n_rays, anisotropy=tuple(anisotropy) if anisotropy else None)
        )
        prob, dist = prob_dist[0, ..., 0], np.maximum(prob_dist[0, ..., 1:], 1e-3)
        points, probi, disti = non_maximum_suppression_3d(
            dist, prob, rays, grid=(1, 1, 1), prob_thresh=thresholds["prob"], nms_thresh=thresholds["nms"], b=cast(Any, b), verbose=False
        )
        labels = polyhedron_to_label(disti, points, rays=rays, prob=probi, shape=prob.shape, verbose=False)
        labels, _, _ = relabel_sequential(labels)
        return labels.astype(np.int32)[np.newaxis, ..., np.newaxis]
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.axis import AxisId
    from bioimageio.core.common import MemberId
    from bioimageio.core.proc_ops import StardistPostprocessing2D

    dims = (AxisId("batch"), AxisId("y"), AxisId("x"), AxisId("channel"))
    member = MemberId("pd")
    sample = Sample(members={member: Tensor(prob_dist, dims=dims)}, stat={}, id="export")
    op = StardistPostprocessing2D(
        prob_dist_input_id=member,
        instance_labels_output_id=member,
        grid=(1, 1),
        prob_threshold=thresholds["prob"],
        nms_threshold=thresholds["nms"],
        b=b,
        n_rays=n_rays,
    )
    op(sample)
    return sample.members[member].data.to_numpy()


class StardistKind(ModelKind):
    name = "stardist"
    title = "StarDist"
    output = "labels"
    qc_task = "segmentation"
    default_percentiles = (1.0, 99.8)
    default_percentiles_origin = "stardist's usual"
    weight_candidates = ("weights_best.h5", "weights_last.h5")
    test_image_splits = ("test", "validation", "train")
    fiji_plugin = "StarDist-Fiji"
    fiji_plugin_dims = (2,)
    card_template = "model_card_stardist.md"
    data_input_dir = "images"
    test_input_hint = "a typical image to segment"
    fiji_macro = "stardist_segment_folder.ijm"
    test_pad_mode = "symmetric"
    default_description: ClassVar[str] = "StarDist model for star-convex object segmentation, exported with fijiport."
    fine_tune_settings = (
        NetworkSetting(
            "n_dim",
            "dimensions",
            unit="D",
            fix="fine-tune a 2D model on 2D images and a 3D model on stacks (`fijiport prepare stardist --axes`), or "
            "start from a model of the data's dimensions",
        ),
        NetworkSetting(
            "n_channel_in",
            "input channels",
            default=1,
            fix="prepare the images with the parent's number of channels (Fiji: Image > Color > Split Channels, or "
            "Image > Type > 8-bit for RGB), or start from a model trained on as many channels",
        ),
        NetworkSetting("n_rays", "rays", option="n_rays", head=True),
        NetworkSetting("grid", "grid", option="grid"),
        NetworkSetting("unet_n_depth", "U-Net depth", option="unet_depth"),
        NetworkSetting("unet_n_filter_base", "first-level filters", default=32, option="unet_first_filters"),
        NetworkSetting("unet_kernel_size", "kernel size", option="unet_kernel_size"),
        NetworkSetting(
            "n_classes",
            "object classes",
            head=True,
            fix="fijiport trains single-class StarDist: start from a single-class model (or fine-tune with stardist itself)",
        ),
    )
    inherited_settings = (
        "backbone",
        "unet_n_conv_per_depth",
        "unet_pool",
        "unet_activation",
        "unet_last_activation",
        "unet_batch_norm",
        "unet_dropout",
        "unet_expansion",
        "unet_prefix",
        "net_conv_after_unet",
        "resnet_n_blocks",
        "resnet_kernel_size",
        "resnet_kernel_init",
        "resnet_n_filter_base",
        "resnet_n_conv_per_block",
    )

    @property
    def citations(self):
        return stardist_citations()

    def setting_value(self, setting: NetworkSetting, config: dict[str, Any]) -> Any:
        n_dim = int(config.get("n_dim", 2))
        if setting.key not in config:  # stardist's defaults, which differ between 2D and 3D
            defaults = {"unet_n_depth": 3 if n_dim == 2 else 2, "unet_kernel_size": (3,) * n_dim, "grid": (1,) * n_dim}
            if setting.key in defaults:
                return defaults[setting.key]
        value = super().setting_value(setting, config)
        return int(value) if setting.key == "n_rays" and value is not None else value

    def option_value(self, setting: NetworkSetting, value: Any) -> Any:
        if setting.key == "unet_kernel_size":  # fijiport's option is one size for every axis
            sizes = set(value) if isinstance(value, (tuple, list)) else {value}
            return int(next(iter(sizes))) if len(sizes) == 1 else None
        return super().option_value(setting, value)

    def detect(self, config: dict[str, Any]) -> bool:
        return "n_rays" in config

    def load_keras(self, folder: ModelFolder):
        from .._tf import legacy_tensorflow, quiet_stdout

        legacy_tensorflow()
        from stardist.models import StarDist2D, StarDist3D

        cls = StarDist2D if int(folder.config.get("n_dim", 2)) == 2 else StarDist3D
        try:
            with quiet_stdout():
                model: Any = cast(Any, cls)(None, name=folder.path.name, basedir=str(folder.path.parent))
                model.keras_model.load_weights(str(folder.weights_path))
        except Exception as e:  # stardist raises many types for configs and weights it cannot use: tell which
            raise loading_error(folder, "stardist", e) from None
        return model

    def predict(self, folder: ModelFolder, model, img: np.ndarray, tiles: tuple[int, ...], *, normalised: bool = False) -> KindPrediction:
        from .._tf import quiet_stdout

        axes = folder.image_axes
        x = normalize_image(img, axes, *folder.percentiles)
        with quiet_stdout():
            labels, details = model.predict_instances(x, axes=axes, n_tiles=tiles, show_tile_progress=False)
        return KindPrediction(labels=labels, polygons=details.get("coord") if labels.ndim == 2 else None)

    # --- export -----------------------------------------------------------------------------------------
    def check_export(self, folder: ModelFolder, *, fiji_zip: bool) -> None:
        config = folder.config
        if config.get("n_classes"):
            raise ExportError(f"{folder.path} is a multi-class StarDist model; export handles single-class models")
        if config.get("backbone", "unet") != "unet":
            raise ExportError(f"{folder.path} uses the {config.get('backbone')} backbone; export handles the U-Net backbone")
        if folder.thresholds is None:
            raise DataError(
                f"{folder.path} has no thresholds.json; StarDist-Fiji and deepImageJ need the model's own "
                "thresholds: optimise them (model.optimize_thresholds in Python, or train with fijiport)"
            )
        if fiji_zip and folder.n_dim != 2:
            raise ExportError(
                "StarDist-Fiji segments 2D images only; drop --fiji-zip for this 3D model "
                "(the bioimage.io package still works in Python and with `fijiport predict`)"
            )

    def geometry(self, folder: ModelFolder, model) -> Geometry:
        spatial = folder.spatial_axes
        div = {a: int(d) for a, d in zip(spatial, model._axes_div_by(spatial))}
        overlap = {a: int(o) for a, o in zip(spatial, model._axes_tile_overlap(spatial))}
        div_by = max(div.values())
        halo = round_halo(max(overlap.values()), div_by)
        return Geometry(div_by, halo, min_input_size(halo, div_by), div, overlap)

    def exported_network(self, model) -> Any:
        return full_resolution_network(model)

    def export_network(self, ctx: ExportContext) -> tuple[Any, bool, list[str]]:
        return self.exported_network(ctx.model), False, []

    def _thresholds(self, folder: ModelFolder) -> dict[str, float]:
        assert folder.thresholds is not None  # check_export refused folders without
        return folder.thresholds

    def check_reference(self, ctx: ExportContext) -> None:
        assert ctx.y_ref is not None
        labels = labels_from_prob_dist(ctx.y_ref, ctx.folder.config, self._thresholds(ctx.folder))
        if labels.max() == 0:
            raise ExportError(
                "the model finds no object in the test input, so the package could not show that its weights "
                "reproduce labels; pass a typical image with objects via --test-input, or train longer"
            )
        ctx.extra["labels"] = labels

    def check_formats(self, ctx: ExportContext, outputs: dict[str, np.ndarray]) -> None:
        labels_ref = ctx.extra["labels"]
        thresholds = self._thresholds(ctx.folder)
        label_diffs = {
            fmt: int((labels_from_prob_dist(y, ctx.folder.config, thresholds) != labels_ref).sum()) for fmt, y in outputs.items()
        }
        ctx.extra["label_diffs"] = label_diffs
        allowed = MISMATCH_PPM * labels_ref.size / 1e6
        unstable = {k: v for k, v in label_diffs.items() if v > allowed}
        if unstable:
            raise ExportError(
                f"the network outputs agree (max |diff| {max(ctx.diffs.values()):.1g}) but the labels differ in {unstable} "
                f"pixels (allowed {allowed:.0f}): candidates of nearly equal probability swap places in non-maximum "
                "suppression. This happens with barely trained models; train longer, or pass a --test-input with clearer objects"
            )

    def test_outputs(self, ctx: ExportContext) -> tuple[np.ndarray, np.ndarray]:
        assert ctx.y_ref is not None
        labels = ctx.extra["labels"]
        if labels_in_package(ctx.folder.n_dim):
            return labels.astype(np.int32), np.squeeze(labels).astype(np.uint16)
        return ctx.y_ref, ctx.y_ref[0].astype(np.float32)

    def cover(self, ctx: ExportContext, path: Path) -> Path:
        """The input beside the input with the objects coloured (middle Z slice for stacks), 2:1."""

        assert ctx.x_norm is not None
        img = np.asarray(ctx.x_norm[0])
        labels = np.asarray(ctx.extra["labels"][0])
        lab = np.squeeze(labels, axis=-1) if labels.shape[-1] == 1 else labels
        if ctx.folder.n_dim == 3:
            img, lab = img[img.shape[0] // 2], lab[lab.shape[0] // 2]
        base = to_display(img, 2)
        colours = np.random.default_rng(0).uniform(0.3, 1.0, size=(int(lab.max()) + 1, 3))
        grey = np.stack([base] * 3, -1)
        rgb = np.where(lab[..., None] > 0, 0.45 * grey + 0.55 * colours[lab], grey)
        return make_cover(base, rgb, path, labels=("input", "StarDist objects"), spatial_ndim=2, rgb_right=True)

    def package_name(self, name: Optional[str], folder: ModelFolder) -> str:
        name = name or f"StarDist {folder.name}"
        return name if "stardist" in name.lower() else f"StarDist {name}"  # deepImageJ recognises StarDist models by name

    def qc_markdown(self, qc) -> str:
        if not qc:
            return NO_QC
        r = getattr(qc, "at_iou_05", None)
        if r is None:
            return NO_QC
        return (
            f"On {qc.n_images} held-out image(s) at IoU 0.5 (fijiport qc): precision {r['precision']:.3f}, "
            f"recall {r['recall']:.3f}, F1 {r['f1']:.3f}, accuracy {r['accuracy']:.3f}, panoptic quality "
            f"{r['panoptic_quality']:.3f}."
        )

    def qc_figures(self, qc) -> dict[str, Any]:
        return {"at_iou_0.5": {k: qc.at_iou_05[k] for k in ("precision", "recall", "f1", "accuracy", "panoptic_quality")}}

    def training_markdown(self, folder: ModelFolder) -> str:
        rec = folder.training_record
        if rec is None:
            return NOT_DESCRIBED
        return (
            f"Trained with fijiport on {len(rec.train_images)} image(s), thresholds optimised on "
            f"{len(rec.validation_images or [])}; {len(rec.test_images)} held out for QC."
        )

    def card_values(self, ctx: ExportContext) -> dict[str, Any]:
        folder, g, meta, config = ctx.folder, ctx.geometry, ctx.meta, ctx.folder.config
        thresholds, pct, n_dim = self._thresholds(folder), folder.percentiles, folder.n_dim
        spatial = folder.spatial_axes.lower()
        rows = ["| weights | max \\|diff\\| of prob/dist to Keras | label pixels differing |", "|---|---|---|"]
        rows += [f"| {k} | {v:.2g} | {ctx.extra['label_diffs'][k]} |" for k, v in ctx.diffs.items()]
        cites = [*self.citations, *meta.cite]
        return {
            "name": ctx.name,
            "description": meta.description or "A StarDist model for star-convex object segmentation, exported with fijiport.",
            "depth": config.get("unet_n_depth"),
            "n_rays": config["n_rays"],
            "grid": tuple(config["grid"]),
            "input_axes": "b" + spatial + "c",
            "output_axes": "b" + spatial + "c",
            "div_by": g.sizes_text()[0],
            "spatial_axes": spatial.upper(),
            "min_size": g.sizes_text()[1],
            "halo": g.halo,
            "p_low": f"{pct[0]:g}",
            "p_high": f"{pct[1]:g}",
            "prob_thresh": f"{thresholds['prob']:.4f}",
            "nms_thresh": f"{thresholds['nms']:.2f}",
            "weights_list": ", ".join(f"`{k}`" for k in ctx.diffs),
            "training_data": self.training_text(folder, meta.training_data),
            "fine_tuned_from": self.parent_markdown(folder),
            "thresholds_origin": _thresholds_origin(folder),
            "qc_section": self.qc_section(ctx),
            "n_dim": n_dim,
            "agreement_table": "\n".join(rows),
            **_card_variant(n_dim, ctx.name, thresholds, pct),
            "citations": citation_lines(cites),
            "extra": meta.documentation_extra or "",
            "fijiport_version": __version__,
            "model_folder_name": folder.name,
            "weights_file": folder.weights_path.name,
        }

    def output_descrs(self, ctx: ExportContext) -> list:
        from bioimageio.spec.model import v0_5 as bio

        folder, g, config = ctx.folder, ctx.geometry, ctx.folder.config
        n_dim, thresholds = folder.n_dim, self._thresholds(folder)
        spatial = [a.lower() for a in folder.spatial_axes]
        kw_cls = bio.StardistPostprocessingKwargs2D if n_dim == 2 else bio.StardistPostprocessingKwargs3D
        kwargs: dict[str, Any] = dict(
            grid=(1,) * n_dim,
            b=border(config["grid"]),
            prob_threshold=thresholds["prob"],
            nms_threshold=thresholds["nms"],
            n_rays=int(config["n_rays"]),
        )
        if n_dim == 3:
            kwargs["anisotropy"] = tuple(float(a) for a in (config.get("anisotropy") or (1.0,) * n_dim))
        with_labels = labels_in_package(n_dim)
        channels = ["labels"] if with_labels else ["prob", *(f"dist{i}" for i in range(int(config["n_rays"])))]
        return [
            bio.OutputTensorDescr(
                id=bio.TensorId("labels" if with_labels else "prob_dist"),
                axes=[
                    bio.BatchAxis(),
                    *(
                        bio.SpaceOutputAxisWithHalo(
                            id=bio.AxisId(a),
                            halo=g.halo,
                            size=bio.SizeReference(tensor_id=bio.TensorId(ctx.input_id), axis_id=bio.AxisId(a)),
                        )
                        for a in spatial
                    ),
                    bio.ChannelAxis(channel_names=channels),
                ],
                test_tensor=bio.FileDescr(source=ctx.tmp / "test_output.npy"),
                sample_tensor=bio.FileDescr(source=ctx.tmp / "sample_output.tif"),
                data=bio.IntervalOrRatioDataDescr(type="int32" if with_labels else "float32"),
                **_postprocessing([bio.StardistPostprocessingDescr(kwargs=kw_cls(**kwargs))] if with_labels else None),
            )
        ]

    def weight_comments(self, ctx: ExportContext) -> dict[str, str]:
        return {
            "tensorflow_saved_model_bundle": "frozen full-resolution stardist network (prob on the grid, dist repeated) "
            "for TensorFlow 1.13-2.10",
            "onnx": "converted with tf2onnx from the frozen graph; IR version 8 for onnxruntime >= 1.13",
        }

    def tags(self, folder: ModelFolder) -> list[str]:
        return ["stardist", "segmentation", "instance-segmentation", "fijiport", f"{folder.n_dim}d"]

    def attachments(self, ctx: ExportContext) -> list[Path]:
        attach_dir = ctx.tmp / "stardist"
        attach_dir.mkdir()
        (attach_dir / "weights_best.h5").write_bytes(ctx.folder.weights_path.read_bytes())
        (attach_dir / "config.json").write_text(json.dumps(ctx.folder.config, indent=2))
        (attach_dir / "thresholds.json").write_text(json.dumps(self._thresholds(ctx.folder), indent=2))
        return [attach_dir / n for n in ATTACHED]

    def config_blocks(self, ctx: ExportContext) -> dict[str, Any]:
        import stardist

        folder, g = ctx.folder, ctx.geometry
        sd = StardistBlock(
            stardist_version=stardist.__version__,
            weights="weights_best.h5",
            config=folder.config,
            thresholds=self._thresholds(folder),
            postprocessing={"grid_in_network": True, "border_in_grid_cells": BORDER},
        )
        block = FijiportBlock(
            kind=self.name,
            percentiles=list(folder.percentiles),
            div_by=g.div_by,
            halo=g.halo,
            max_abs_diff_to_keras=ctx.diffs,
            object_stats=folder.training_record.object_stats if folder.training_record else None,
            training_pixel_size_um=self.training_pixel_size(folder),
            qc=self.qc_record(ctx),
            parent=self.parent_block(folder),
        )
        return {"stardist": sd.model_dump(mode="json"), "deepimagej": deepimagej_block(), "fijiport": block.to_rdf()}

    def fiji_meta(self, ctx: ExportContext) -> dict[str, Any]:
        config, g = ctx.folder.config, ctx.geometry
        axes = str(config["axes"]).upper()
        return {
            "type": "StarDist",
            "n_rays": int(config["n_rays"]),
            "grid": list(config["grid"]),
            "axes": axes,
            "axes_div_by": [g.axes_div_by.get(a, 1) for a in axes],
            "tile_overlap": [g.axes_overlap.get(a, 0) for a in axes],
            "thresholds": self._thresholds(ctx.folder),
            "exported_by": f"fijiport {__version__}",
        }

    def fiji_macro_values(self, ctx: ExportContext, fiji_zip: Path) -> tuple[dict[str, Any], str]:
        thresholds, pct = self._thresholds(ctx.folder), ctx.folder.percentiles
        values = {
            "model": Path(fiji_zip).resolve(),
            "prob_thresh": f"{thresholds['prob']:.4f}",
            "nms_thresh": f"{thresholds['nms']:.2f}",
            "p_low": f"{pct[0]:g}",
            "p_high": f"{pct[1]:g}",
        }
        return values, f"model {ctx.name!r} ({Path(fiji_zip).name}): its optimised thresholds and training percentiles."


def _thresholds_origin(folder: ModelFolder) -> str:
    """Where the card says the thresholds come from: optimised (stardist's way, and fijiport's default from scratch),
    kept from the model it was fine-tuned from, or set at training."""
    record, config = folder.training_record, folder.training_config or {}
    if record is not None and record.parent is not None and "thresholds" in record.parent.inherited:
        return f"those of {record.parent.name}, the model it was fine-tuned from"
    if isinstance(config.get("thresholds"), list):
        return "set at training"
    return "optimised on validation images"


def _postprocessing(steps: Optional[list]) -> dict[str, Any]:
    """The output's postprocessing as a keyword, only when there is one (unset, not empty, in the rdf)."""
    return {} if steps is None else {"postprocessing": steps}


def _card_variant(n_dim: int, name: str, thresholds: dict, percentiles) -> dict:
    """The card's passages that differ between 2D packages (label output) and 3D ones (prob/dist output)."""
    if labels_in_package(n_dim):
        return {
            "output_desc": "label image, one integer per object",
            "postprocessing_paragraph": "The network weights output object probability and ray distances at full resolution (the grid "
            "is upsampled inside the network, as StarDist-Fiji requires); the package's "
            "`stardist_postprocessing` turns them into labels.",
            "fiji_section": "**Fiji, deepImageJ 3.1** (runs stardist's Python postprocessing; pass the thresholds, the defaults "
            'are wrong):\n\n```\nrun("DeepImageJ StarDist", "model=['
            + name
            + "] prob_thresh="
            + f"{thresholds['prob']:.4f} min_percentile={percentiles[0]:g} max_percentile={percentiles[1]:g}"
            + '");\n```\n\n**Fiji, StarDist-Fiji**: export with `fijiport export MODEL -o model.zip --fiji-zip '
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


STARDIST = StardistKind()
