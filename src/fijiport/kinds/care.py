"""CARE (content-aware image restoration, csbdeep): an image in, the restored image out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import __version__
from ..config.export import CiteEntry
from ..errors import ConfigError
from ..package.config_blocks import FijiportBlock, deepimagej_block
from . import _unet
from .base import (
    NO_QC,
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

TF_BUNDLE_COMMENT = "frozen inference graph (v1 SavedModel, tag serve, signature serving_default) for TensorFlow 1.13-2.10"
ONNX_COMMENT = "converted with tf2onnx from the frozen graph; IR version 8 for onnxruntime >= 1.13"


def care_citation():

    return CiteEntry(
        text="Weigert et al., Content-aware image restoration: pushing the limits of fluorescence microscopy, "
        "Nature Methods 15, 1090–1097 (2018)",
        doi="10.1038/s41592-018-0216-7",
    )


class CareKind(ModelKind):
    name = "care"
    title = "CARE"
    output = "image"
    qc_task = "restoration"
    default_percentiles = (2.0, 99.8)
    default_percentiles_origin = "csbdeep's default"
    fiji_plugin = "CSBDeep-Fiji"
    card_template = "model_card_care.md"
    data_input_dir = "low"
    test_input_hint = "a typical low-SNR input image; models trained by fijiport use their held-out test images"
    fiji_macro = "care_predict_folder.ijm"
    default_description: ClassVar[str] = "CARE image restoration network (csbdeep), exported with fijiport."
    fine_tune_settings = (
        NetworkSetting(
            "n_dim",
            "dimensions",
            unit="D",
            fix="fine-tune on images of the parent's dimensions (`fijiport prepare care --axes YX` or `ZYX`), or start "
            "from a model of the data's",
        ),
        NetworkSetting(
            "n_channel_in",
            "input channels",
            default=1,
            fix="prepare the data with the parent's number of channels (Fiji: Image > Color > Split Channels, or "
            "Image > Stacks > Tools > Make Substack), or start from a model trained on as many channels",
        ),
        NetworkSetting(
            "n_channel_out",
            "output channels",
            default=1,
            head=True,
            fix="fijiport trains CARE with as many output channels as input channels, so this parent cannot be "
            "fine-tuned on this data; train from scratch (without --init-from)",
        ),
        NetworkSetting("unet_n_depth", "U-Net depth", default=2, option="unet_depth"),
        NetworkSetting("unet_n_first", "first-level filters", default=32, option="unet_first_filters"),
        NetworkSetting("unet_kern_size", "kernel size", option="unet_kernel_size"),
        NetworkSetting("probabilistic", "probabilistic output", default=False, option="probabilistic", head=True),
    )
    inherited_settings = ("unet_residual", "unet_last_activation")

    @property
    def citations(self):
        return (care_citation(),)

    def setting_value(self, setting: NetworkSetting, config: dict[str, Any]) -> Any:
        if setting.key == "unet_kern_size" and "unet_kern_size" not in config:
            return 5 if int(config.get("n_dim", 2)) == 2 else 3  # csbdeep's default
        return super().setting_value(setting, config)

    def detect(self, config: dict[str, Any]) -> bool:
        return "n_rays" not in config  # the registry asks the more specific kinds (StarDist, N2V) first

    def check_config(self, config: dict[str, Any], path: Path) -> None:
        missing = [k for k in ("n_dim", "unet_n_depth", "n_channel_in", "n_channel_out") if k not in config]
        if missing:
            raise ConfigError(f"{path} lacks {', '.join(missing)}; is this a csbdeep CARE model folder?")

    @staticmethod
    def depth(folder: ModelFolder) -> int:
        return int(folder.config.get("unet_n_depth", 2))

    @staticmethod
    def kernel_size(folder: ModelFolder) -> int:
        return int(folder.config.get("unet_kern_size", 5 if folder.n_dim == 2 else 3))

    @staticmethod
    def probabilistic(folder: ModelFolder) -> bool:
        return bool(folder.config.get("probabilistic", False))

    def load_keras(self, folder: ModelFolder):
        from .._tf import legacy_tensorflow, quiet_stdout

        legacy_tensorflow()
        from csbdeep.models import CARE

        try:
            with quiet_stdout():
                model: Any = CARE(None, name=folder.path.name, basedir=str(folder.path.parent))
                model.keras_model.load_weights(str(folder.weights_path))
        except Exception as e:  # csbdeep loads the weights while building the network: one place to tell the cause
            raise loading_error(folder, "csbdeep", e) from None
        return model

    def predict(self, folder: ModelFolder, model, img: np.ndarray, tiles: tuple[int, ...], *, normalised: bool = False) -> KindPrediction:
        from csbdeep.data import PercentileNormalizer

        from .._tf import quiet_stdout

        with quiet_stdout():
            low, high = folder.percentiles
            normalizer = PercentileNormalizer(low, high, do_after=not normalised)  # pyright: ignore[reportArgumentType] (int defaults)
            restored = model.predict(img, folder.image_axes, normalizer=normalizer, n_tiles=tiles)
        return KindPrediction(image=restored)

    # --- export -----------------------------------------------------------------------------------------
    def geometry(self, folder: ModelFolder, model) -> Geometry:
        depth, kernel = self.depth(folder), self.kernel_size(folder)
        halo = _unet.package_halo(depth, kernel)
        div_by = 2**depth
        overlap = _unet.unet_halo(depth, kernel)
        return Geometry(
            div_by,
            halo,
            _unet.min_input_size(halo, div_by),
            {a: div_by for a in folder.spatial_axes},
            {a: overlap for a in folder.spatial_axes},
        )

    def exported_network(self, model) -> Any:
        return model.keras_model

    def export_network(self, ctx: ExportContext) -> tuple[Any, bool, list[str]]:
        keras_model = self.exported_network(ctx.model)
        lambdas = [layer.name for layer in keras_model.layers if type(layer).__name__ == "Lambda"]
        if lambdas:
            # Keras 3 (bioimageio.core, deepImageJ's Python) refuses to deserialise Lambda layers
            # (arbitrary code); probabilistic CARE has one, so its Keras weights stay out.
            return (
                keras_model,
                False,
                [
                    f"Keras weights left out: layer(s) {', '.join(lambdas)} are Lambda layers that Keras 3 "
                    "will not load; the package carries the TensorFlow and ONNX weights"
                ],
            )
        return keras_model, True, []

    def test_outputs(self, ctx: ExportContext) -> tuple[np.ndarray, np.ndarray]:
        assert ctx.y_ref is not None
        return ctx.y_ref, np.squeeze(ctx.y_ref[0])

    def cover(self, ctx: ExportContext, path: Path) -> Path:

        assert ctx.x_norm is not None and ctx.y_ref is not None
        return make_cover(ctx.x_norm[0], ctx.y_ref[0], path, spatial_ndim=ctx.folder.n_dim, labels=("input", "CARE prediction"))

    def n_out(self, folder: ModelFolder) -> int:
        return folder.n_channel_out * (2 if self.probabilistic(folder) else 1)

    def qc_markdown(self, qc) -> str:
        if not qc:
            return NO_QC
        summary = getattr(qc, "summary", None) or {}
        rows = ["| metric | input vs GT | prediction vs GT |", "|---|---|---|"]
        for metric, label in RESTORATION_METRICS.items():
            s = summary.get(metric)  # reports written before fijiport measured Pearson's r lack it
            if s:
                rows.append(f"| {label} | {format(s['input'], '.4g') if 'input' in s else '—'} | {s['prediction']:.4g} |")
        note = f"\n\n{qc.no_baseline[0].upper() + qc.no_baseline[1:]}." if getattr(qc, "no_baseline", None) else ""
        return f"Mean over {qc.n_images} held-out test image(s) (fijiport qc):\n\n" + "\n".join(rows) + note

    def qc_figures(self, qc) -> dict[str, Any]:
        return {m: dict(qc.summary[m]) for m in RESTORATION_METRICS if m in qc.summary}

    def training_markdown(self, folder: ModelFolder) -> str:
        record = folder.training_record
        if record is None:
            return NOT_DESCRIBED
        patches = record.patches
        return (
            f"Trained with fijiport on {len(record.train_images)} paired image(s) "
            f"({patches.train if patches else '?'} patches of shape {patches.shape if patches else '?'}), axes "
            f"{record.axes or '?'}; {len(record.test_images)} image(s) held out for QC."
        )

    def card_values(self, ctx: ExportContext) -> dict[str, Any]:
        folder, g, meta = ctx.folder, ctx.geometry, ctx.meta
        origin = {
            "training": "as in training",
            "given": "given at export",
            "package": "as in the package",
            "default": f"{self.default_percentiles_origin}; the training percentiles were not recorded",
        }
        rows = ["| weights | max \\|diff\\| to the Keras reference |", "|---|---|"]
        rows += [f"| {fmt} | {d:.2g} |" for fmt, d in ctx.diffs.items()]
        return {
            "name": ctx.name,
            "description": meta.description or "A CARE network for image restoration, exported with fijiport.",
            "depth": self.depth(folder),
            "kernel_size": self.kernel_size(folder),
            "first_filters": folder.config.get("unet_n_first", 32),
            "residual": ", residual" if folder.config.get("unet_residual") else "",
            "input_axes": "b" + folder.spatial_axes.lower() + "c",
            "input_axes_lower": "batch, " + ", ".join(folder.spatial_axes.lower()) + ", channel",
            "output_axes": "b" + folder.spatial_axes.lower() + "c",
            "n_channel_in": folder.n_channel_in,
            "n_channel_out": self.n_out(folder),
            "probabilistic": " (probabilistic: Laplace mean and scale per channel)" if self.probabilistic(folder) else "",
            "div_by": g.div_by,
            "spatial_axes": folder.spatial_axes,
            "min_size": g.min_size,
            "halo": g.halo,
            "p_low": folder.percentiles[0],
            "p_high": folder.percentiles[1],
            "percentiles_source": origin[folder.percentiles_source],
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
        if self.probabilistic(folder):
            names = [f"{kind}{i}" for kind in ("mean", "scale") for i in range(folder.n_channel_out)]
        else:
            names = [f"channel{i}" for i in range(folder.n_channel_out)]
        spatial = [
            bio.SpaceOutputAxisWithHalo(
                id=bio.AxisId(a.lower()),
                halo=ctx.geometry.halo,
                size=bio.SizeReference(tensor_id=bio.TensorId(ctx.input_id), axis_id=bio.AxisId(a.lower())),
            )
            for a in folder.spatial_axes
        ]
        return [
            bio.OutputTensorDescr(
                id=bio.TensorId("output"),
                axes=[bio.BatchAxis(), *spatial, bio.ChannelAxis(channel_names=names)],
                test_tensor=bio.FileDescr(source=ctx.tmp / "test_output.npy"),
                sample_tensor=bio.FileDescr(source=ctx.tmp / "sample_output.tif"),
                data=bio.IntervalOrRatioDataDescr(type="float32"),
            )
        ]

    def weight_comments(self, ctx: ExportContext) -> dict[str, str]:
        source = ctx.folder.weights_path.name
        return {
            "keras_hdf5": f"csbdeep CARE network from {source} (tf_keras)",
            "tensorflow_saved_model_bundle": TF_BUNDLE_COMMENT
            + ("" if ctx.keras_hdf5 else f"; frozen from the csbdeep CARE network in {source}"),
            "onnx": ONNX_COMMENT,
        }

    def tags(self, folder: ModelFolder) -> list[str]:
        return ["care", "denoising", "restoration", "csbdeep", "fijiport", f"{folder.n_dim}d"]

    def config_blocks(self, ctx: ExportContext) -> dict[str, Any]:

        folder, g = ctx.folder, ctx.geometry
        block = FijiportBlock(
            qc=self.qc_record(ctx),
            kind=self.name,
            csbdeep_config=folder.config,
            percentiles=list(folder.percentiles),
            div_by=g.div_by,
            halo=g.halo,
            max_abs_diff_to_keras=ctx.diffs,
            parent=self.parent_block(folder),
            training_pixel_size_um=self.training_pixel_size(folder),
        )
        return {"deepimagej": deepimagej_block(), "fijiport": block.to_rdf()}

    def fiji_meta(self, ctx: ExportContext) -> dict[str, Any]:
        import csbdeep

        folder, g = ctx.folder, ctx.geometry
        axes = folder.axes
        overlap = g.axes_overlap[folder.spatial_axes[-1]]
        return {
            "type": "CARE",
            "version": csbdeep.__version__,
            "probabilistic": self.probabilistic(folder),
            "axes": axes,
            "axes_div_by": [g.div_by if a in "XYZT" else 1 for a in axes],
            "tile_overlap": [overlap if a in "XYZT" else 0 for a in axes],
            "exported_by": f"fijiport {__version__} (frozen graph for TensorFlow 1.13-2.10)",
        }

    def fiji_macro_values(self, ctx: ExportContext, fiji_zip: Path) -> tuple[dict[str, Any], str]:
        folder, g = ctx.folder, ctx.geometry
        block = max(g.div_by, 4)
        overlap = -(-g.halo // block) * block
        pct = folder.percentiles
        values = {
            "model": Path(fiji_zip).resolve(),
            "p_low": f"{pct[0]:g}",
            "p_high": f"{pct[1]:g}",
            "ntiles": 8,
            "block_multiple": block,
            "overlap": overlap,
        }
        note = (
            f"model {ctx.name!r} ({Path(fiji_zip).name}, axes {folder.axes}): its training percentiles, block multiple "
            f"2^depth = {block}, overlap {overlap} px (receptive field)."
        )
        return values, note


CARE = CareKind()
