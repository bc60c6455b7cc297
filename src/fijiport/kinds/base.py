"""What a model kind is: everything that differs between CARE, StarDist and the kinds to come.

The steps (``qc``, ``export``, ``predict``, ``runtimes``) are written once and ask the kind of a model
folder (:attr:`fijiport.artifacts.model_folder.ModelFolder.kind`) for what differs: how its library
loads and predicts, its normalisation, the network as exported (StarDist's full-resolution output),
the reference outputs and how weight formats must agree, the rdf's output tensor and config blocks,
the model card, the cover, the Fiji zip's ``meta.json`` and the filled-in Fiji macro. A new kind is one
module subclassing :class:`ModelKind` plus a line in :data:`fijiport.kinds.KINDS`.

Libraries (TensorFlow, csbdeep, stardist, bioimageio.spec) are imported inside the methods: importing a
kind is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from ..artifacts.model_folder import ModelFolder
    from ..config.export import CiteEntry, ExportMeta


@dataclass(frozen=True)
class Geometry:
    """The input sizes an exported network takes and the context each output pixel needs."""

    div_by: int
    """Inputs are ``min_size + n * div_by`` along every spatial axis."""
    halo: int
    """Output pixels per side a tile must crop (rounded so padded tiles stay divisible)."""
    min_size: int
    axes_div_by: dict[str, int]
    """Per spatial axis (``Z``, ``Y``, ``X``), for the Fiji zip's ``meta.json``."""
    axes_overlap: dict[str, int]
    """Tile overlap per spatial axis the Fiji plugins use."""

    def axis_min(self, axis: str) -> int:
        """The smallest input size along ``axis`` above twice the halo, in that axis' own steps (StarDist 3D with
        grid (1, 2, 2): steps of 4 along Z and 8 along Y and X, as stardist itself pads)."""
        step = self.axes_div_by.get(axis, self.div_by)
        return int(step * -(-(2 * self.halo + 1) // step))

    def sizes_text(self) -> tuple[str, str]:
        """(step, minimum) as the model card says them: one number, or one per axis where they differ."""
        axes = list(self.axes_div_by)
        if len({self.axes_div_by[a] for a in axes}) <= 1:
            return str(self.div_by), str(self.min_size)
        return (", ".join(f"{self.axes_div_by[a]} ({a})" for a in axes), ", ".join(f"{self.axis_min(a)} ({a})" for a in axes))


@dataclass
class KindPrediction:
    """A model folder's prediction of one image: a restored ``image``, or ``labels`` (with stardist's
    ``polygons`` when it made them)."""

    image: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None
    polygons: Optional[np.ndarray] = None


@dataclass
class ExportContext:
    """What the export step knows when it asks the kind for the package's parts."""

    folder: ModelFolder
    model: Any
    """The library's model object (csbdeep ``CARE``, stardist ``StarDist2D``/``3D``)."""
    geometry: Geometry
    meta: ExportMeta
    name: str
    zip_name: str
    tmp: Path
    """The temporary folder the package's files are written to."""
    input_id: str
    x_norm: Optional[np.ndarray] = None
    y_ref: Optional[np.ndarray] = None
    keras_hdf5: bool = False
    diffs: dict[str, float] = field(default_factory=dict)
    """Max |diff| of each weight format's network output against the Keras reference."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What the kind computed along the way (StarDist: the reference labels, label pixels differing per format)."""
    qc: Any = None
    """The QC report given with ``--qc``, if any."""
    qc_note: str = ""
    """What the card says before the QC figures (another model's figures, training images, warnings)."""


@dataclass(frozen=True)
class NetworkSetting:
    """A network setting a model fine-tuned from a parent (``train --init-from``) must share with it, so that the
    parent's weights load into the new network."""

    key: str
    """Its key in the library's ``config.json`` (and in the config the training builds)."""
    label: str
    """As messages name it (``U-Net depth``, ``rays``)."""
    default: Any = None
    """The library's value when a ``config.json`` lacks the key."""
    option: str = ""
    """The training option (config field) that sets it, e.g. ``unet_depth``. Left unset by the user, fine-tuning
    takes the parent's value; empty when the data decides it (dimensions, channels)."""
    fix: str = ""
    """What to do when it differs and the data decides it."""
    head: bool = False
    """Only the network's output layer depends on it: the parent's body would fit the new data."""
    unit: str = ""
    """Written after the value in messages (``D`` for dimensions)."""

    @property
    def flag(self) -> str:
        """The command-line option: ``--unet-depth``."""
        return "--" + self.option.replace("_", "-")

    def show(self, value: Any) -> str:
        if isinstance(value, (tuple, list)):
            return ",".join(str(v) for v in value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if value is None:
            return "none"
        return f"{value}{self.unit}"


@dataclass(frozen=True)
class SettingDifference:
    """One :class:`NetworkSetting` on which a parent and the network fine-tuned from it differ."""

    setting: NetworkSetting
    parent: Any
    child: Any
    given: bool
    """The child's value comes from an option the user gave (rather than the data)."""

    def describe(self) -> str:
        s = self.setting
        child = f"{s.flag} {s.show(self.child)}" if self.given else f"{s.show(self.child)} here"
        return f"{s.label} (parent {s.show(self.parent)}, {child})"

    def fix(self) -> str:
        s = self.setting
        if self.given:
            return f"drop {s.flag} (fine-tuning takes the parent's {s.show(self.parent)})"
        return s.fix or f"start from a model with {s.label} {s.show(self.child)}, or train from scratch"


class ModelKind:
    """One kind of model. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    """Short name used in commands and records (``care``, ``stardist``)."""
    title: ClassVar[str]
    """As users write it (``CARE``, ``StarDist``)."""
    output: ClassVar[Literal["image", "labels"]]
    """What prediction writes: a restored image, or a label image with ROI set and measurements."""
    qc_task: ClassVar[Literal["restoration", "segmentation", "denoising"]]
    """Which QC the ``qc`` step runs: restoration metrics against ground truth, instance matching, or denoising (the
    residual's structure, plus restoration metrics where ground truth exists)."""
    default_percentiles: ClassVar[tuple[float, float]]
    default_percentiles_origin: ClassVar[str]
    uses_percentiles: ClassVar[bool] = True
    """Whether inputs are normalised by percentiles (CARE, StarDist); N2V uses the training data's mean and std."""
    weight_candidates: ClassVar[tuple[str, ...]] = ("weights_best.h5", "weights_last.h5", "weights_now.h5")
    test_image_splits: ClassVar[tuple[str, ...]] = ("test", "train")
    """Where a fijiport-trained model's data folder is searched for a test input, in order (training record splits)."""
    data_input_dir: ClassVar[str]
    """The data folder's sub-folder (of ``train``/``test``) holding the network inputs (``low``, ``images``)."""
    test_input_hint: ClassVar[str] = "a typical input image"
    fiji_plugin: ClassVar[str]
    """The Fiji plugin that runs a Fiji zip of this kind (``CSBDeep-Fiji``, ``StarDist-Fiji``)."""
    fiji_plugin_dims: ClassVar[tuple[int, ...]] = (2, 3)
    also_runs_in: ClassVar[tuple[str, ...]] = ()
    """Other Fiji plugins that run this kind's Fiji zip (N2V: CSBDeep-Fiji, with the normalisation inside the graph)."""
    card_template: ClassVar[str]
    fiji_macro: ClassVar[str]
    input_id: ClassVar[str] = "input"
    graph_output_id: ClassVar[str] = "output"
    """The SavedModel signature's output key (Fiji's plugins take the first output whatever its name)."""

    fine_tune_settings: ClassVar[tuple[NetworkSetting, ...]] = ()
    """The network settings a model fine-tuned from a parent must share with it (``train --init-from``); the
    training compares them with :func:`check_fine_tune` before any slow step. Empty: the kind cannot be fine-tuned."""
    inherited_settings: ClassVar[tuple[str, ...]] = ()
    """``config.json`` keys a fine-tuned network takes from its parent as they are: architecture details no training
    option sets (stardist's ``net_conv_after_unet``, csbdeep's ``unet_residual``), so a parent trained elsewhere with
    other values than the library's defaults still fits."""

    @property
    def citations(self) -> tuple[CiteEntry, ...]:
        raise NotImplementedError

    # --- fine-tuning ------------------------------------------------------------------------------------
    def setting_value(self, setting: NetworkSetting, config: dict[str, Any]) -> Any:
        """A :class:`NetworkSetting`'s value in a library config (``config.json``, or the one a training builds), in
        one form for comparing: lists as tuples, the library's default where the key is missing."""
        value = config.get(setting.key, setting.default)
        return tuple(value) if isinstance(value, list) else value

    def option_value(self, setting: NetworkSetting, value: Any) -> Any:
        """A setting's library value as its training option takes it (tuples as lists); None when the option
        cannot express it (the difference is then reported)."""
        return list(value) if isinstance(value, tuple) else value

    # --- the model folder -------------------------------------------------------------------------------
    def detect(self, config: dict[str, Any]) -> bool:
        """Whether a ``config.json`` is this kind's."""
        raise NotImplementedError

    def check_config(self, config: dict[str, Any], path: Path) -> None:
        """Refuse a config this kind's library cannot build a network from, naming what is missing."""

    def load_keras(self, folder: ModelFolder):
        """The library's model with the folder's weights (Keras 2, csbdeep/stardist)."""
        raise NotImplementedError

    def predict(self, folder: ModelFolder, model, img: np.ndarray, tiles: tuple[int, ...], *, normalised: bool = False) -> KindPrediction:
        """Predict one image (axes :attr:`ModelFolder.image_axes`) with the library's own tiling. Image outputs are on the
        input's intensity scale (the library's de-normalisation), or with ``normalised`` as the network gives them
        (what deepImageJ and CSBDeep-Fiji write)."""
        raise NotImplementedError

    # --- export -----------------------------------------------------------------------------------------
    def check_export(self, folder: ModelFolder, *, fiji_zip: bool) -> None:
        """Refuse, before any slow step, what this kind cannot export (raise ExportError/DataError)."""

    def geometry(self, folder: ModelFolder, model) -> Geometry:
        raise NotImplementedError

    def normalize_input(self, folder: ModelFolder, x_batch: np.ndarray) -> np.ndarray:
        """The network's input for a raw (batch, spatial..., channel) image, as the package's preprocessing makes it:
        by default the training percentiles mapped to 0–1, as bioimage.io's ``scale_range`` computes it."""
        from ..normalize import scale_range

        return scale_range(x_batch, tuple(range(1, x_batch.ndim - 1)), *folder.percentiles)

    def preprocessing_descrs(self, ctx: ExportContext) -> list:
        """The input's preprocessing in the rdf, matching :meth:`normalize_input` (by default ``scale_range``)."""
        from bioimageio.spec.model import v0_5 as bio

        folder = ctx.folder
        return [bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(axes=[bio.AxisId(a.lower()) for a in folder.spatial_axes],
                                                              min_percentile=folder.percentiles[0],
                                                              max_percentile=folder.percentiles[1]))]  # fmt: skip

    test_pad_mode: ClassVar[Optional[str]] = None
    """How a test input shorter than the minimum size is padded (None: reflect, symmetric where it cannot)."""

    def exported_network(self, model) -> Any:
        """The Keras network the package's and the Fiji zip's graphs are frozen from, for the library's ``model``
        (also what ``runtimes check --reference MODEL_DIR`` compares a zip with)."""
        raise NotImplementedError

    def export_network(self, ctx: ExportContext) -> tuple[Any, bool, list[str]]:
        """The Keras model whose frozen graph becomes the package's TensorFlow and ONNX weights, whether the
        package also carries it as ``keras_hdf5``, and warnings for the user."""
        raise NotImplementedError

    def check_reference(self, ctx: ExportContext) -> None:
        """Check the Keras reference output ``ctx.y_ref`` (and put what is derived from it into ``ctx.extra``)."""

    def check_formats(self, ctx: ExportContext, outputs: dict[str, np.ndarray]) -> None:
        """Kind-specific agreement of the converted formats' outputs beyond max |diff| (raise ExportError)."""

    def test_outputs(self, ctx: ExportContext) -> tuple[np.ndarray, np.ndarray]:
        """The package's test output (batch first, as the network/postprocessing gives it) and sample output."""
        raise NotImplementedError

    def cover(self, ctx: ExportContext, path: Path) -> Path:
        raise NotImplementedError

    def package_name(self, name: Optional[str], folder: ModelFolder) -> str:
        return name or f"{self.title} {folder.name}"

    def card_values(self, ctx: ExportContext) -> dict[str, Any]:
        """The values of :attr:`card_template` (``packaging/model_card_*.md``)."""
        raise NotImplementedError

    def output_descrs(self, ctx: ExportContext) -> list:
        """The rdf's output tensor descriptions (bioimageio.spec 0.5)."""
        raise NotImplementedError

    def weight_comments(self, ctx: ExportContext) -> dict[str, str]:
        """Comments of the ``keras_hdf5``, ``tensorflow_saved_model_bundle`` and ``onnx`` weights entries."""
        raise NotImplementedError

    def tags(self, folder: ModelFolder) -> list[str]:
        raise NotImplementedError

    default_description: ClassVar[str] = ""

    def config_blocks(self, ctx: ExportContext) -> dict[str, Any]:
        """The rdf's ``config`` (``deepimagej``, ``fijiport`` and this kind's own blocks)."""
        raise NotImplementedError

    def attachments(self, ctx: ExportContext) -> list[Path]:
        """Files attached to the package (StarDist: the Keras weights, config and thresholds for deepImageJ)."""
        return []

    def fiji_meta(self, ctx: ExportContext) -> dict[str, Any]:
        """The Fiji zip's ``meta.json``."""
        raise NotImplementedError

    def fiji_network(self, ctx: ExportContext, net) -> Any:
        """A network of its own for the Fiji zip (a Keras model), or None for the package's (the default)."""
        return None

    def fiji_extra_outputs(self, folder: ModelFolder, fiji_zip: Path) -> list[Path]:
        """More files written beside the Fiji zip (checked before any work; e.g. the N2V plugin's own zip)."""
        return []

    def write_fiji_extras(self, ctx: ExportContext, tf_zip: Path, fiji_zip: Path, *, overwrite: bool) -> list[Path]:
        """Write :meth:`fiji_extra_outputs` (``tf_zip``: the package's TensorFlow bundle)."""
        return []

    def fiji_macro_values(self, ctx: ExportContext, fiji_zip: Path) -> tuple[dict[str, Any], str]:
        """The values filled into :attr:`fiji_macro` and the note stamped on it."""
        raise NotImplementedError

    def qc_markdown(self, qc) -> str:
        """The QC figures of the model card from a QC report (or the hint to make one)."""
        raise NotImplementedError

    def qc_section(self, ctx: ExportContext) -> str:
        """The model card's QC section: the export's notes on where the figures come from, then the figures."""
        return ctx.qc_note + self.qc_markdown(ctx.qc)

    def qc_figures(self, qc) -> dict[str, Any]:
        """This kind's QC figures for ``config.fijiport.qc`` (what ``zoo-check`` judges)."""
        raise NotImplementedError

    def qc_record(self, ctx: ExportContext) -> Optional[dict[str, Any]]:
        """``config.fijiport.qc``: the QC figures and where they come from (None without ``--qc``)."""
        qc = ctx.qc
        if qc is None:
            return None
        return {
            "task": self.qc_task,
            "n_images": qc.n_images,
            "split": qc.split,
            "from_other_model": bool(ctx.extra.get("qc_from_other_model")),
            **self.qc_figures(qc),
        }

    def training_markdown(self, folder: ModelFolder) -> str:
        """The model card's training-data sentence from the folder's training record."""
        raise NotImplementedError

    def training_text(self, folder: ModelFolder, given: Optional[str]) -> str:
        """The card's training-data paragraph: ``given`` (``training_data:`` of ``--meta``) or the record's sentence,
        then the training images' pixel size when the record has it."""
        text = given or self.training_markdown(folder)
        return text + pixel_size_markdown(folder.training_record.pixel_size_um if folder.training_record else None)

    @staticmethod
    def training_pixel_size(folder: ModelFolder) -> Optional[dict[str, float]]:
        """``config.fijiport.training_pixel_size_um``: the training record's, or None."""
        return folder.training_record.pixel_size_um if folder.training_record else None

    def parent_markdown(self, folder: ModelFolder) -> str:
        """The model card's "fine-tuned from ..." paragraph (empty for a model trained from scratch): the parent's name,
        its Zoo id, DOI and version when it came from a package, its weights' sha256 and what was taken from it."""
        record = folder.training_record
        parent = record.parent if record is not None else None
        if parent is None:
            return ""
        ids = [
            f"Zoo id `{parent.zoo_id}`" if parent.zoo_id else "",
            f"DOI [{parent.doi}](https://doi.org/{parent.doi})" if parent.doi else "",
        ]
        ids += [f"version {parent.version}" if parent.version else "", f"weights `{parent.weights}` sha256 `{parent.weights_sha256[:16]}…`"]
        taken = list(dict.fromkeys(INHERITED_WORDS.get(k, k.replace("_", " ")) for k in parent.inherited))
        words = ", ".join(taken[:-1]) + f" and {taken[-1]}" if len(taken) > 1 else "".join(taken)
        taken_text = f" It kept the parent's {words}." if taken else ""
        where = "bioimage.io package" if parent.source == "package" else "model folder"
        return (
            f"Fine-tuned from the {self.title} {where} **{parent.name}** ({'; '.join(i for i in ids if i)}): training started "
            f"from its weights instead of random ones.{taken_text}\n\n"
        )

    def parent_block(self, folder: ModelFolder) -> Optional[dict[str, Any]]:
        """``config.fijiport.parent``: the model this one was fine-tuned from (no local paths), or None."""
        record = folder.training_record
        parent = record.parent if record is not None else None
        if parent is None:
            return None
        return parent.model_dump(mode="json", exclude_none=True, exclude={"path"})


def fine_tune_differences(kind: ModelKind, parent: dict[str, Any], child: dict[str, Any], given=()) -> list[SettingDifference]:
    """The :attr:`ModelKind.fine_tune_settings` on which the library configs ``parent`` and ``child`` differ;
    ``given``: the training options the user set."""
    out = []
    for s in kind.fine_tune_settings:
        p, c = kind.setting_value(s, parent), kind.setting_value(s, child)
        if p != c:
            out.append(SettingDifference(s, p, c, bool(s.option) and s.option in given))
    return out


def check_fine_tune(kind: ModelKind, parent: dict[str, Any], child: dict[str, Any], *, parent_name: str, given=()) -> None:
    """Refuse, before any slow step, to fine-tune a network from a parent whose weights cannot load into it: name
    every setting that differs, the values of both, and the fix. When only the output head differs (CARE's output
    channels, StarDist's rays), say so: the parent's body would fit the new data."""
    if not kind.fine_tune_settings:
        raise ConfigError(f"{kind.title} models cannot be fine-tuned with fijiport (--init-from); train from scratch")
    diffs = fine_tune_differences(kind, parent, child, given)
    if not diffs:
        return
    what = "; ".join(d.describe() for d in diffs)
    fixes = "; ".join(dict.fromkeys(d.fix() for d in diffs))
    if all(d.setting.head for d in diffs):
        raise ConfigError(
            f"only the output head differs between {parent_name} and this training: {what}. The rest of the parent's "
            f"network would fit, but --init-from loads the whole network, head included: {fixes}"
        )
    raise ConfigError(f"{parent_name} cannot start this training, its network differs: {what}. To fine-tune from it: {fixes}")


INHERITED_WORDS = {
    "percentile_low": "normalisation percentiles",
    "percentile_high": "normalisation percentiles",
    "unet_depth": "network settings",
    "unet_first_filters": "network settings",
    "unet_kernel_size": "network settings",
    "n_rays": "network settings",
    "grid": "network settings",
    "probabilistic": "network settings",
    "thresholds": "probability and NMS thresholds",
    "batch_norm": "network settings",
    "normalization": "mean and standard deviation (normalisation)",
}
"""How the model card names the training options a fine-tuning took from its parent."""

RESTORATION_METRICS = {"psnr": "PSNR", "ssim": "SSIM", "nrmse": "NRMSE", "pearson": "Pearson r"}
"""The restoration metrics of a QC report (``qc.json``), in the order reports show them, each with its name in tables."""

NO_QC = (
    "No QC report was given at export. Run `fijiport qc` on held-out paired images and export "
    "again with `--qc qc_report/qc.json` to include its figures here."
)


def pixel_size_markdown(um: Optional[dict[str, float]]) -> str:
    """The card's sentence on the training pixel size (empty when unknown)."""
    if not um:
        return ""
    axes = [a for a in "ZYX" if a in um]
    sizes = " × ".join(f"{um[a]:.4g}" for a in axes) + f" µm ({' × '.join(axes)})"
    return (
        f"\n\nPixel size of the training images: **{sizes}**. The model restores structures at this sampling: "
        "rescale images of another pixel size to it first (Fiji: Image > Scale...); `fijiport predict` warns when an "
        "image differs by more than 20 %."
    )


NOT_DESCRIBED = "Not described. Set `training_data:` in --meta to describe or link the training data."


def citation_lines(cites) -> str:
    return "\n".join(f"- {c.text}" + (f" https://doi.org/{c.doi}" if c.doi else (f" {c.url}" if c.url else "")) for c in cites)


def _versions(library: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in (library, "tensorflow", "tf_keras"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} not installed")
    return ", ".join(out)


MISMATCH = ("layer count mismatch", "shape mismatch", "are incompatible", "you are trying to load a weight file", "axes don't match")
"""What tf_keras says when an .h5 holds the weights of another network than the one built (measured: depth +1 →
"Layer count mismatch ...", another kernel size → "... Shape mismatch ... are incompatible")."""
DAMAGED = ("unable to open", "unable to synchronously open", "truncated", "file signature not found", "bad object header", "unable to read")


def loading_error(folder: ModelFolder, library: str, e: BaseException) -> DataError:
    """The real cause of a failure to load a model folder into its library, in one line with the fix: weights of another
    network, a damaged file, a config the library refuses, or (none of those) a library or version problem."""
    first = (str(e).strip().splitlines() or [""])[0][:300]
    msg, low = f"{type(e).__name__}: {first}", first.lower()
    weights, config = folder.weights_path, folder.path / "config.json"
    if any(m in low for m in MISMATCH):
        return DataError(
            f"the weights in {weights} do not fit the network {config} describes ({msg}): they were saved from another "
            "network (another depth, number of filters or kernel size); use the config.json saved with these weights"
        )
    if "not allowed to add new parameters" in low or "invalid attributes in loaded config" in low or "invalid configuration" in low:
        return DataError(
            f"{library} refuses {config} ({msg}): it is not a {library} {folder.kind.title} config of this version "
            f"(another model type's, edited by hand, or from another {library} version; installed: {_versions(library)}); "
            "use the config.json saved with the weights"
        )
    if any(m in low for m in DAMAGED):
        return DataError(
            f"{weights} cannot be read ({msg}): the file is damaged or cut short; copy the model folder again, whole, from where it was trained"
        )
    return DataError(
        f"{library} could not load the model in {folder.path} ({msg}). This is neither a damaged file nor weights of "
        "another network: a config value the library cannot build a network from, or a version mismatch between the "
        f"library and the files it reads; installed {_versions(library)}, tested: the versions in packaging/constraints.txt"
    )


def test_image_layout(image: np.ndarray, folder: ModelFolder) -> np.ndarray:
    """A test image in network layout (spatial..., C): channels moved last (ImageJ writes them first)."""

    spatial, n_c = folder.spatial_axes, folder.n_channel_in
    expected = len(spatial) + (1 if n_c > 1 else 0)
    x = np.asarray(image)
    if x.ndim == expected + 1 and n_c == 1 and x.shape[-1] == 1:
        x = x[..., 0]
    if n_c > 1 and x.ndim == expected and x.shape[-1] != n_c and x.shape[0] == n_c:
        x = np.moveaxis(x, 0, -1)  # ImageJ writes channels first
    if x.ndim != expected:
        raise DataError(f"test input has shape {x.shape} but the model expects axes {folder.image_axes} ({expected} dimensions)")
    if n_c == 1:
        x = x[..., np.newaxis]
    elif x.shape[-1] != n_c:
        raise DataError(f"test input has {x.shape[-1]} channels (last axis) but the model expects {n_c}")
    return x
