"""Noise2Void (n2v): denoising learnt from the noisy images alone; an image in, the denoised image out.

n2v normalises with the training data's mean and standard deviation per channel (``config.json``: ``means``,
``stds``), not with percentiles: the package declares ``fixed_zero_mean_unit_variance`` before the network and its
inverse, ``scale_linear`` (gain = std, offset = mean), after it, so its output is on the input's intensity scale, as
``N2V.predict`` gives it. For the CSBDeep-Fiji / KNIME zip the same two steps are built into the graph (those
plugins normalise by percentiles or not at all), and the N2V Fiji plugin gets a zip in its own format.

n2v 0.3.3 declares ``csbdeep<0.8`` but runs on csbdeep 0.8.2 with two shims (:func:`import_n2v`): numpy 2 removed
``np.product``, which its data wrapper calls, and its ``train`` (which fijiport does not use) adds a TensorBoard
callback that needs the tensorboard package.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import __version__
from ..config.export import CiteEntry
from ..errors import ConfigError, ExportError
from . import _unet
from .base import (
    NOT_DESCRIBED,
    RESTORATION_METRICS,
    ExportContext,
    Geometry,
    KindPrediction,
    ModelKind,
    NetworkSetting,
    citation_lines,
    loading_error,
)
from .cover import make_cover

if TYPE_CHECKING:
    from ..artifacts.model_folder import ModelFolder

N2V_CITATION = CiteEntry(
    text="Krull, Buchholz, Jug, Noise2Void - Learning Denoising from Single Noisy Images, CVPR 2019", doi="10.1109/CVPR.2019.00223"
)
NEEDED = ("means", "stds", "n_dim", "unet_n_depth", "n_channel_in")


def n2v_requirement() -> str:
    """The n2v release fijiport is tested with, as ``packaging/no-deps.txt`` pins it (wheels carry that file)."""
    from .._resources import packaging_text

    pins = [line.strip() for line in packaging_text("no-deps.txt").splitlines() if line.strip().startswith("n2v==")]
    return pins[0] if pins else "n2v"


def import_n2v() -> SimpleNamespace:
    """The parts of the n2v package fijiport uses, importable beside csbdeep 0.8.2 and numpy 2."""
    from .._tf import legacy_tensorflow

    legacy_tensorflow()
    if not hasattr(np, "product"):  # n2v 0.3.3's N2V_DataWrapper calls np.product, removed in numpy 2
        np.product = np.prod  # type: ignore[attr-defined]
    try:
        from n2v.internals.N2V_DataGenerator import N2V_DataGenerator
        from n2v.internals.N2V_DataWrapper import N2V_DataWrapper
        from n2v.models import N2V, N2VConfig
        from n2v.utils import n2v_utils
    except ImportError as e:
        from ..errors import DependencyError

        raise DependencyError(f"Noise2Void needs the n2v package ({e}); install it with `pip install --no-deps {n2v_requirement()}` "
                              "(n2v declares csbdeep<0.8 but runs on fijiport's csbdeep 0.8.2; --no-deps keeps pip from "
                              "replacing csbdeep); in a source checkout `make install` does it") from None  # fmt: skip

    def manipulator(name: str, radius: int):
        return getattr(n2v_utils, f"pm_{name}")(int(radius))

    return SimpleNamespace(N2V=N2V, N2VConfig=N2VConfig, N2V_DataGenerator=N2V_DataGenerator, N2V_DataWrapper=N2V_DataWrapper,
                           manipulate_val_data=n2v_utils.manipulate_val_data, manipulator=manipulator)  # fmt: skip


def mean_std(folder: ModelFolder) -> tuple[np.ndarray, np.ndarray]:
    """The training data's mean and std per channel (n2v stores them as strings)."""
    means = np.array([float(m) for m in folder.config["means"]], dtype=np.float32)
    stds = np.array([float(s) for s in folder.config["stds"]], dtype=np.float32)
    return means, stds


class N2vKind(ModelKind):
    name = "n2v"
    title = "N2V"
    output = "image"
    qc_task = "denoising"
    default_percentiles = (0.0, 100.0)
    default_percentiles_origin = "unused (N2V normalises with the training data's mean and std)"
    uses_percentiles = False
    test_image_splits = ("test", "validation", "train")
    data_input_dir = "images"
    test_input_hint = "a typical noisy image"
    fiji_plugin = "N2V-Fiji"
    also_runs_in: ClassVar[tuple[str, ...]] = ("CSBDeep-Fiji",)
    card_template = "model_card_n2v.md"
    fiji_macro = "care_predict_folder.ijm"
    default_description: ClassVar[str] = "Noise2Void denoising network (n2v), exported with fijiport."
    fine_tune_settings = (
        NetworkSetting(
            "n_dim",
            "dimensions",
            unit="D",
            fix="fine-tune on images of the parent's dimensions (`fijiport prepare n2v --axes YX` or `ZYX`), or start "
            "from a model of the data's",
        ),
        NetworkSetting(
            "n_channel_in",
            "channels",
            default=1,
            fix="prepare the images with the parent's number of channels (Fiji: Image > Color > Split Channels), or start "
            "from a model trained on as many channels",
        ),
        NetworkSetting("unet_n_depth", "U-Net depth", default=2, option="unet_depth"),
        NetworkSetting("unet_n_first", "first-level filters", default=32, option="unet_first_filters"),
        NetworkSetting("unet_kern_size", "kernel size", option="unet_kernel_size"),
        NetworkSetting("batch_norm", "batch normalisation", default=True, option="batch_norm"),
        NetworkSetting(
            "single_net_per_channel",
            "one network per channel",
            default=True,
            fix="the parent holds n2v's per-channel networks, which n2v 0.3.3 feeds the last channel only (a late-bound "
            "Lambda), and fijiport trains one network for all channels: train from scratch (without --init-from)",
        ),
    )
    inherited_settings = ("unet_residual", "unet_last_activation", "blurpool", "skip_skipone")

    @property
    def citations(self):
        return (N2V_CITATION,)

    def setting_value(self, setting: NetworkSetting, config: dict[str, Any]) -> Any:
        if setting.key == "unet_kern_size" and "unet_kern_size" not in config:
            return 5 if int(config.get("n_dim", 2)) == 2 else 3  # n2v's default
        if setting.key == "single_net_per_channel" and int(config.get("n_channel_in", 1)) == 1:
            return False  # one channel: one network either way (the Lambda slice holds no weights)
        return super().setting_value(setting, config)

    def detect(self, config: dict[str, Any]) -> bool:
        return any(str(k).startswith("n2v_") for k in config) or ("means" in config and "stds" in config and "n_rays" not in config)

    def check_config(self, config: dict[str, Any], path: Path) -> None:
        missing = [k for k in NEEDED if k not in config]
        if missing:
            raise ConfigError(f"{path} lacks {', '.join(missing)}; is this an n2v model folder (config.json from n2v's N2V)?")
        if len(config["means"]) != int(config["n_channel_in"]) or len(config["stds"]) != int(config["n_channel_in"]):
            raise ConfigError(f"{path}: means and stds must hold one value per input channel ({config['n_channel_in']})")

    def load_keras(self, folder: ModelFolder):
        from .._tf import quiet_stdout

        n2v = import_n2v()
        try:
            with quiet_stdout():
                model: Any = n2v.N2V(None, name=folder.path.name, basedir=str(folder.path.parent))
                model.keras_model.load_weights(str(folder.weights_path))
        except Exception as e:
            raise loading_error(folder, "n2v", e) from None
        return model

    def predict(self, folder: ModelFolder, model, img: np.ndarray, tiles: tuple[int, ...], *, normalised: bool = False) -> KindPrediction:
        from .._tf import quiet_stdout

        axes = folder.image_axes
        with quiet_stdout():
            restored = np.asarray(model.predict(img.astype(np.float32), axes, n_tiles=tiles), dtype=np.float32)
        if normalised:
            means, stds = mean_std(folder)
            if "C" in axes:
                c = axes.index("C")
                shape = [1] * restored.ndim
                shape[c] = -1
                means, stds = means.reshape(shape), stds.reshape(shape)
            restored = ((restored - means) / stds).astype(np.float32)
        return KindPrediction(image=restored)

    # --- export -----------------------------------------------------------------------------------------
    @staticmethod
    def depth(folder: ModelFolder) -> int:
        return int(folder.config.get("unet_n_depth", 2))

    @staticmethod
    def kernel_size(folder: ModelFolder) -> int:
        return int(folder.config.get("unet_kern_size", 5 if folder.n_dim == 2 else 3))

    def geometry(self, folder: ModelFolder, model) -> Geometry:
        depth, kernel = self.depth(folder), self.kernel_size(folder)
        halo, div_by = _unet.package_halo(depth, kernel), 2**depth
        overlap = _unet.unet_halo(depth, kernel)
        return Geometry(div_by, halo, _unet.min_input_size(halo, div_by), {a: div_by for a in folder.spatial_axes},
                        {a: overlap for a in folder.spatial_axes})  # fmt: skip

    def normalize_input(self, folder: ModelFolder, x_batch: np.ndarray) -> np.ndarray:
        means, stds = mean_std(folder)
        return ((x_batch - means) / stds).astype(np.float32)  # n2v's own normalisation (channels last)

    def preprocessing_descrs(self, ctx: ExportContext) -> list:
        from bioimageio.spec.model import v0_5 as bio

        means, stds = mean_std(ctx.folder)
        if len(means) == 1:
            kwargs: Any = bio.FixedZeroMeanUnitVarianceKwargs(mean=float(means[0]), std=float(stds[0]))
        else:
            kwargs = bio.FixedZeroMeanUnitVarianceAlongAxisKwargs(mean=means.tolist(), std=stds.tolist(), axis=bio.AxisId("channel"))
        return [bio.FixedZeroMeanUnitVarianceDescr(kwargs=kwargs)]

    def exported_network(self, model) -> Any:
        """n2v's network, without normalisation: what n2v's own export_TF zips hold (fijiport's N2V Fiji zips build the
        normalisation in and record their own test tensors, so they need no ``--reference``)."""
        return model.keras_model

    def export_network(self, ctx: ExportContext) -> tuple[Any, bool, list[str]]:
        """n2v's network; one built with Lambda layers (n2v's default per-channel nets) is rebuilt without them when it
        has one channel (the same weights, checked to give the same output), as Keras 3 refuses to load Lambda layers."""
        keras_model = self.exported_network(ctx.model)
        lambdas = [layer.name for layer in keras_model.layers if type(layer).__name__ == "Lambda"]
        channels = []
        if ctx.folder.n_channel_in > 1:
            channels.append("deepImageJ 3.1 (JDLL 0.6.1) fails on per-channel mean/std lists along the channel axis, which a "
                            f"{ctx.folder.n_channel_in}-channel N2V package needs: bioimageio.core and the Zoo run it, "
                            "CSBDeep-Fiji and KNIME run the Fiji zip (normalisation in its graph)")  # fmt: skip
        if not lambdas:
            return keras_model, True, channels
        if ctx.folder.n_channel_in == 1:
            plain = _without_lambda(ctx.folder, keras_model, ctx.x_norm)
            if plain is not None:
                return plain, True, channels
        warnings = [f"Keras weights left out: layer(s) {', '.join(lambdas)} are Lambda layers that Keras 3 will not load; the "
                    "package carries the TensorFlow and ONNX weights"]  # fmt: skip
        if ctx.folder.n_channel_in > 1:
            warnings.append("this model was trained with n2v's per-channel networks, each of which n2v 0.3.3 feeds the last "
                            "channel (a late-bound Lambda in n2v/nets/unet.py); the package reproduces n2v's own predictions, "
                            "so retrain with fijiport (one network for all channels) for true multi-channel denoising")  # fmt: skip
        return keras_model, False, warnings + channels

    def test_outputs(self, ctx: ExportContext) -> tuple[np.ndarray, np.ndarray]:
        assert ctx.y_ref is not None
        means, stds = mean_std(ctx.folder)
        y = (ctx.y_ref * stds + means).astype(np.float32)  # after the package's scale_linear: the input's scale
        return y, np.squeeze(y[0])

    def cover(self, ctx: ExportContext, path: Path) -> Path:
        assert ctx.x_norm is not None and ctx.y_ref is not None
        return make_cover(ctx.x_norm[0], ctx.y_ref[0], path, spatial_ndim=ctx.folder.n_dim, labels=("noisy input", "N2V denoised"))

    def qc_markdown(self, qc) -> str:
        if not qc:
            return ("No QC report was given at export. Run `fijiport qc` on held-out images (with `--gt` clean images if you "
                    "have them) and export again with `--qc qc_report/qc.json` to include its figures here.")  # fmt: skip
        lines = []
        summary = getattr(qc, "summary", None)
        if summary:
            rows = ["| metric | input vs GT | prediction vs GT |", "|---|---|---|"]
            rows += [
                f"| {label} | {summary[m]['input']:.4g} | {summary[m]['prediction']:.4g} |"
                for m, label in RESTORATION_METRICS.items()
                if m in summary
            ]
            lines.append(f"Against ground truth, mean over {qc.n_images} held-out image(s) (fijiport qc):\n\n" + "\n".join(rows))
        r = qc.residual
        lines.append(
            f"What the residual (input − prediction) still holds, mean over the images: autocorrelation at lag 1 "
            f"{r['autocorrelation'][0]:.3f}, correlation with the prediction {r['correlation_with_prediction']:.3f} "
            "(both near 0 when only noise was removed; higher values mean the network removed structure)."
        )
        return "\n\n".join(lines)

    def qc_figures(self, qc) -> dict[str, Any]:
        figures: dict[str, Any] = {"residual": dict(qc.residual), "thresholds": dict(qc.thresholds)}
        if getattr(qc, "summary", None):
            figures.update({m: dict(qc.summary[m]) for m in RESTORATION_METRICS if m in qc.summary})
        return figures

    def training_markdown(self, folder: ModelFolder) -> str:
        record = folder.training_record
        if record is None:
            return NOT_DESCRIBED
        patches = record.patches
        return (f"Trained with fijiport (Noise2Void: no ground truth) on {len(record.train_images)} noisy image(s) "
                f"({patches.train if patches else '?'} patches of shape {patches.shape if patches else '?'}), axes "
                f"{record.axes or '?'}; {len(record.test_images)} image(s) held out for QC.")  # fmt: skip

    def card_values(self, ctx: ExportContext) -> dict[str, Any]:
        folder, g, meta = ctx.folder, ctx.geometry, ctx.meta
        means, stds = mean_std(folder)
        rows = ["| weights | max \\|diff\\| to the Keras reference |", "|---|---|"]
        rows += [f"| {fmt} | {d:.2g} |" for fmt, d in ctx.diffs.items()]
        config = folder.config
        return {
            "name": ctx.name,
            "description": meta.description or "A Noise2Void network that denoises images, learnt from noisy images alone.",
            "depth": self.depth(folder),
            "kernel_size": self.kernel_size(folder),
            "first_filters": config.get("unet_n_first", 32),
            "batch_norm": ", batch normalisation" if config.get("batch_norm", True) else "",
            "input_axes": "b" + folder.spatial_axes.lower() + "c",
            "input_axes_lower": "batch, " + ", ".join(folder.spatial_axes.lower()) + ", channel",
            "n_channel": folder.n_channel_in,
            "div_by": g.div_by,
            "spatial_axes": folder.spatial_axes,
            "min_size": g.min_size,
            "halo": g.halo,
            "means": ", ".join(f"{m:.6g}" for m in means),
            "stds": ", ".join(f"{s:.6g}" for s in stds),
            "blind_spot": f"{config.get('n2v_perc_pix', '?')} % of the pixels, neighbourhood radius {config.get('n2v_neighborhood_radius', '?')}",
            "weights_list": ", ".join(f"`{k}`" for k in ctx.diffs),
            "training_data": self.training_text(folder, meta.training_data),
            "fine_tuned_from": self.parent_markdown(folder),
            "qc_section": self.qc_section(ctx),
            "zip_name": ctx.zip_name,
            "model_folder_name": folder.name,
            "agreement_table": "\n".join(rows),
            "citations": citation_lines([*self.citations, *meta.cite]),
            "extra": meta.documentation_extra or "",
            "fijiport_version": __version__,
            "weights_file": folder.weights_path.name,
        }

    def output_descrs(self, ctx: ExportContext) -> list:
        from bioimageio.spec.model import v0_5 as bio

        folder = ctx.folder
        means, stds = mean_std(folder)
        if len(means) == 1:
            scale: Any = bio.ScaleLinearKwargs(gain=float(stds[0]), offset=float(means[0]))
        else:
            scale = bio.ScaleLinearAlongAxisKwargs(gain=stds.tolist(), offset=means.tolist(), axis=bio.AxisId("channel"))
        spatial = [bio.SpaceOutputAxisWithHalo(id=bio.AxisId(a.lower()), halo=ctx.geometry.halo,
                                               size=bio.SizeReference(tensor_id=bio.TensorId(ctx.input_id), axis_id=bio.AxisId(a.lower())))
                   for a in folder.spatial_axes]  # fmt: skip
        return [bio.OutputTensorDescr(
            id=bio.TensorId("output"),
            axes=[bio.BatchAxis(), *spatial, bio.ChannelAxis(channel_names=[f"channel{i}" for i in range(folder.n_channel_out)])],
            test_tensor=bio.FileDescr(source=ctx.tmp / "test_output.npy"),
            sample_tensor=bio.FileDescr(source=ctx.tmp / "sample_output.tif"),
            data=bio.IntervalOrRatioDataDescr(type="float32"),
            postprocessing=[bio.ScaleLinearDescr(kwargs=scale)],
        )]  # fmt: skip

    def weight_comments(self, ctx: ExportContext) -> dict[str, str]:
        source = ctx.folder.weights_path.name
        return {"keras_hdf5": f"n2v Noise2Void network from {source} (tf_keras)",
                "tensorflow_saved_model_bundle": "frozen inference graph (v1 SavedModel, tag serve, signature serving_default; batch "
                                                 "normalisation folded into the convolutions) for TensorFlow 1.13-2.10",
                "onnx": "converted with tf2onnx from the frozen graph; IR version 8 for onnxruntime >= 1.13"}  # fmt: skip

    def tags(self, folder: ModelFolder) -> list[str]:
        return ["n2v", "noise2void", "denoising", "restoration", "fijiport", f"{folder.n_dim}d"]

    def config_blocks(self, ctx: ExportContext) -> dict[str, Any]:
        from ..package.config_blocks import FijiportBlock, deepimagej_block

        folder, g = ctx.folder, ctx.geometry
        means, stds = mean_std(folder)
        block = FijiportBlock.model_validate(
            {"kind": self.name, "percentiles": [], "div_by": g.div_by, "halo": g.halo, "max_abs_diff_to_keras": ctx.diffs,
             "qc": self.qc_record(ctx), "n2v_config": folder.config, "means": means.tolist(), "stds": stds.tolist(),
             "training_pixel_size_um": self.training_pixel_size(folder), "parent": self.parent_block(folder)}
        )  # fmt: skip
        return {"deepimagej": deepimagej_block(), "fijiport": block.to_rdf()}

    def fiji_network(self, ctx: ExportContext, net) -> Any:
        """The network with n2v's normalisation around it: CSBDeep-Fiji (``normalizeinput=false``) and KNIME then give the
        denoised image on the input's scale, as n2v's predict does."""
        import tensorflow as tf

        means, stds = mean_std(ctx.folder)
        layers = tf.keras.layers
        x = layers.Input(shape=net.input_shape[1:], name="input")
        normalised = layers.Rescaling(scale=(1.0 / stds).tolist(), offset=(-means / stds).tolist(), name="n2v_normalise")(x)
        y = layers.Rescaling(scale=stds.tolist(), offset=means.tolist(), name="n2v_denormalise")(net(normalised))
        return tf.keras.Model(x, y, name="n2v_with_normalisation")

    def fiji_meta(self, ctx: ExportContext) -> dict[str, Any]:
        import csbdeep

        folder, g = ctx.folder, ctx.geometry
        axes, overlap = folder.axes, g.axes_overlap[folder.spatial_axes[-1]]
        return {"type": "N2V", "version": csbdeep.__version__, "probabilistic": False, "axes": axes,
                "axes_div_by": [g.div_by if a in "XYZT" else 1 for a in axes], "tile_overlap": [overlap if a in "XYZT" else 0 for a in axes],
                "normalisation": "inside the graph (the training data's mean and std): run without the plugin's own",
                "exported_by": f"fijiport {__version__} (frozen graph for TensorFlow 1.13-2.10)"}  # fmt: skip

    def fiji_macro_values(self, ctx: ExportContext, fiji_zip: Path) -> tuple[dict[str, Any], str]:
        g = ctx.geometry
        block = max(g.div_by, 4)
        overlap = -(-g.halo // block) * block
        values = {"model": Path(fiji_zip).resolve(), "ntiles": 8, "block_multiple": block, "overlap": overlap, "normalize_input": "false"}
        note = (f"N2V model {ctx.name!r} ({Path(fiji_zip).name}): the graph normalises by itself (normalizeinput=false), "
                f"block multiple 2^depth = {block}, overlap {overlap} px.")  # fmt: skip
        return values, note

    def fiji_extra_outputs(self, folder: ModelFolder, fiji_zip: Path) -> list[Path]:
        return [n2v_plugin_zip(fiji_zip)] if folder.n_channel_in == 1 else []

    def write_fiji_extras(self, ctx: ExportContext, tf_zip: Path, fiji_zip: Path, *, overwrite: bool) -> list[Path]:
        if ctx.folder.n_channel_in != 1:
            import logging

            logging.getLogger(__name__).warning(
                "no zip for the N2V Fiji plugin: it runs single-channel models only (it normalises with one mean and std); "
                "%s runs this %d-channel model in CSBDeep-Fiji and KNIME",
                Path(fiji_zip).name,
                ctx.folder.n_channel_in,
            )
            return []
        return [write_n2v_plugin_zip(ctx, tf_zip, n2v_plugin_zip(fiji_zip), overwrite=overwrite)]


def n2v_plugin_zip(fiji_zip: Path) -> Path:
    """Where the zip for the N2V Fiji plugin goes, beside the CSBDeep-Fiji / KNIME zip."""
    fiji_zip = Path(fiji_zip)
    return fiji_zip.with_name(fiji_zip.stem + ".n2v-plugin.zip")


N2V_PLUGIN_OUTPUT = "activation_11/Identity"
"""The output name the N2V plugin's predictor fetches (N2VPrediction in juglab/N2V_fiji 0.8.6): any other name and it
returns no image, without an error. Fiji maps it to the SavedModel's signature tensor, as the names differ."""


def n2v_plugin_rdf(ctx: ExportContext, bundle_sha256: str) -> dict[str, Any]:
    """The model description the N2V Fiji plugin reads (imagej-modelzoo 0.9.10 with core-bioimage-io-java 0.3.9: rdf
    format 0.3), with n2v's normalisation as its ``zero_mean_unit_variance`` (fixed) and ``scale_linear`` steps.

    What its reader needs, from its sources (the plugin cannot run here; tests check these keys): single strings where
    it casts to String (``packaged_by`` a list throws), ``shape.min``/``step`` int lists over every axis with the batch
    step 1 (0 refuses batches), output ``offset`` ints, float32 on both ends, halo on the output, the input named
    ``input`` (the name its command submits) and the output named :data:`N2V_PLUGIN_OUTPUT`; numbers, not strings, in
    the kwargs (it takes a list's first element, so one channel only)."""
    folder, g = ctx.folder, ctx.geometry
    means, stds = mean_std(folder)
    if len(means) != 1:
        raise ExportError("the N2V Fiji plugin runs single-channel models only")
    n = folder.n_dim
    axes = "b" + folder.spatial_axes.lower() + "c"
    space = folder.spatial_axes.lower()
    people = [{"name": a.name} for a in ctx.meta.authors if a.name] or [{"name": "fijiport user"}]
    return {
        "format_version": "0.3.2",
        "type": "model",
        "name": ctx.name,
        "description": ctx.meta.description or N2V.default_description,
        "authors": people,
        "cite": [{"text": c.text, "doi": c.doi} for c in N2V.citations],
        "documentation": "README.md",
        "tags": ["n2v", "denoising", f"unet{n}d"],
        "license": ctx.meta.license,
        "language": "java",
        "framework": "tensorflow",
        "packaged_by": f"fijiport {__version__}",
        "execution_model": "n2v",
        "test_inputs": ["test_input.npy"],
        "test_outputs": ["test_output.npy"],
        "covers": [],
        "inputs": [{
            "name": "input", "axes": axes, "data_type": "float32", "data_range": ["-inf", "inf"],
            "shape": {"min": [1] + [g.min_size] * n + [1], "step": [1] + [g.div_by] * n + [0]},
            "preprocessing": [{"name": "zero_mean_unit_variance",
                               "kwargs": {"mode": "fixed", "axes": space, "mean": float(means[0]), "std": float(stds[0])}}],
        }],
        "outputs": [{
            "name": N2V_PLUGIN_OUTPUT, "axes": axes, "data_type": "float32", "data_range": ["-inf", "inf"],
            "halo": [0] + [g.halo] * n + [0],
            "shape": {"reference_input": "input", "scale": [1.0] * (n + 2), "offset": [0] * (n + 2)},
            "postprocessing": [{"name": "scale_linear", "kwargs": {"axes": space, "gain": float(stds[0]), "offset": float(means[0])}}],
        }],
        "weights": {"tensorflow_saved_model_bundle": {"source": "tf_saved_model_bundle.zip", "sha256": bundle_sha256, "tag": "serve",
                                                      "tensorflow_version": "1.15.0"}},
    }  # fmt: skip


def n2v_plugin_rdf_problems(rdf: Any) -> list[str]:
    """What in an rdf would stop the N2V Fiji plugin's reader (:func:`n2v_plugin_rdf` lists its rules) or give no image."""
    if not isinstance(rdf, dict):
        return ["rdf.yaml is not a mapping"]
    problems = []
    if not str(rdf.get("format_version", "")).startswith("0.3."):
        problems.append(f"format_version {rdf.get('format_version')!r}: the plugin reads format 0.3.x")
    for key in ("name", "description", "documentation", "license", "language", "framework", "packaged_by", "version", "type"):
        if key in rdf and not isinstance(rdf[key], str):
            problems.append(f"{key} is a {type(rdf[key]).__name__}; the plugin casts it to a string (ClassCastException)")
    inputs, outputs = rdf.get("inputs"), rdf.get("outputs")
    if not (isinstance(inputs, list) and inputs and isinstance(outputs, list) and outputs):
        return [*problems, "inputs and outputs must be non-empty lists"]
    node_in, node_out = inputs[0], outputs[0]
    axes = str(node_in.get("axes", ""))
    if node_in.get("name") != "input":
        problems.append(f"input named {node_in.get('name')!r}: the N2V command submits its image as 'input'")
    if node_out.get("name") != N2V_PLUGIN_OUTPUT:
        problems.append(f"output named {node_out.get('name')!r}: the N2V predictor fetches {N2V_PLUGIN_OUTPUT!r} (else no image)")
    if not axes.startswith("b"):
        problems.append(f"input axes {axes!r}: the batch axis b must come first")
    shape = node_in.get("shape")
    if not isinstance(shape, dict) or not all(isinstance(shape.get(k), list) for k in ("min", "step")):
        problems.append("input shape must be a map with min and step lists")
    else:
        lists = (shape["min"], shape["step"])
        if any(len(v) != len(axes) or not all(isinstance(i, int) and not isinstance(i, bool) for i in v) for v in lists):
            problems.append(f"shape min/step must hold one int per axis of {axes!r}")
        elif shape["step"][0] != 1:
            problems.append("batch step must be 1 (0 refuses batches of more than one image)")
    out_shape = node_out.get("shape")
    if not isinstance(out_shape, dict) or out_shape.get("reference_input") != "input":
        problems.append("output shape must reference the input ('reference_input: input')")
    elif not all(isinstance(i, int) for i in out_shape.get("offset", [None])):
        problems.append("output offset must be ints")
    if node_in.get("data_type") != "float32" or node_out.get("data_type") != "float32":
        problems.append("data_type must be float32 on input and output")
    for step in [*node_in.get("preprocessing", []), *node_out.get("postprocessing", [])]:
        if not isinstance(step, dict) or not isinstance(step.get("kwargs"), dict):
            problems.append(f"processing step {step!r} needs a name and kwargs")
            continue
        numbers = {k: v for k, v in step["kwargs"].items() if k in ("mean", "std", "gain", "offset")}
        if any(isinstance(v, str) or (isinstance(v, list) and len(v) != 1) for v in numbers.values()):
            problems.append(f"{step.get('name')}: mean/std/gain/offset must be numbers (the plugin takes one value)")
    weights = rdf.get("weights", {})
    if not isinstance(weights, dict) or "tensorflow_saved_model_bundle" not in weights:
        problems.append("no tensorflow_saved_model_bundle weights (the only format the plugin runs)")
    return problems


def write_n2v_plugin_zip(ctx: ExportContext, tf_zip: Path, target: Path, *, overwrite: bool) -> Path:
    """The zip the N2V Fiji plugin (Plugins > CSBDeep > N2V > N2V predict) opens: its rdf (format 0.3), the package's
    frozen TensorFlow bundle as an inner zip, a README and the raw test input with the denoised test output."""
    import hashlib
    import io
    import zipfile

    import yaml

    from ..files import atomic_file

    assert ctx.x_norm is not None and ctx.y_ref is not None
    bundle = Path(tf_zip).read_bytes()
    rdf = n2v_plugin_rdf(ctx, hashlib.sha256(bundle).hexdigest())
    means, stds = mean_std(ctx.folder)

    def npy(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a.astype(np.float32))
        return buf.getvalue()

    with atomic_file(Path(target), overwrite=overwrite) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
        zf.writestr("tf_saved_model_bundle.zip", bundle)
        zf.writestr(
            "README.md",
            f"# {ctx.name}\n\nNoise2Void model for the N2V Fiji plugin (Plugins > CSBDeep > N2V > N2V predict), "
            f"exported with fijiport {__version__}. The bioimage.io package {ctx.zip_name} holds the same "
            "network for deepImageJ and the BioImage Model Zoo.\n",
        )
        zf.writestr("test_input.npy", npy(ctx.x_norm * stds + means))
        zf.writestr("test_output.npy", npy(ctx.y_ref * stds + means))
    return Path(target)


def _without_lambda(folder: ModelFolder, keras_model, x_norm):
    """n2v's network for one channel built without its per-channel Lambda slice, with the same weights; None when the
    two do not give the same output."""
    import tempfile

    from .._tf import quiet_stdout

    n2v = import_n2v()
    config = dict(folder.config, single_net_per_channel=False)
    with tempfile.TemporaryDirectory(prefix="fijiport-n2v-") as tmp, quiet_stdout():
        (Path(tmp) / "plain").mkdir()
        (Path(tmp) / "plain" / "config.json").write_text(json.dumps(config))
        plain: Any = n2v.N2V(None, name="plain", basedir=tmp)
    try:
        plain.keras_model.set_weights(keras_model.get_weights())
    except ValueError:
        return None
    if x_norm is not None:
        a, b = np.asarray(keras_model(x_norm, training=False)), np.asarray(plain.keras_model(x_norm, training=False))
        if a.shape != b.shape or float(np.abs(a - b).max()) > 1e-5:
            raise ExportError("rebuilding the n2v network without its Lambda layer changed its output; please report this model")
    return plain.keras_model


N2V = N2vKind()
