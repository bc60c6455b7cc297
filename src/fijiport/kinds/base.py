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

from ..errors import DataError

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


class ModelKind:
    """One kind of model. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    """Short name used in commands and records (``care``, ``stardist``)."""
    title: ClassVar[str]
    """As users write it (``CARE``, ``StarDist``)."""
    output: ClassVar[Literal["image", "labels"]]
    """What prediction writes: a restored image, or a label image with ROI set and measurements."""
    qc_task: ClassVar[Literal["restoration", "segmentation"]]
    """Which QC the ``qc`` step runs: restoration metrics against ground truth, or instance matching."""
    default_percentiles: ClassVar[tuple[float, float]]
    default_percentiles_origin: ClassVar[str]
    weight_candidates: ClassVar[tuple[str, ...]] = ("weights_best.h5", "weights_last.h5", "weights_now.h5")
    test_image_splits: ClassVar[tuple[str, ...]] = ("test", "train")
    """Where a fijiport-trained model's data folder is searched for a test input, in order (training record splits)."""
    data_input_dir: ClassVar[str]
    """The data folder's sub-folder (of ``train``/``test``) holding the network inputs (``low``, ``images``)."""
    test_input_hint: ClassVar[str] = "a typical input image"
    fiji_plugin: ClassVar[str]
    """The Fiji plugin that runs a Fiji zip of this kind (``CSBDeep-Fiji``, ``StarDist-Fiji``)."""
    fiji_plugin_dims: ClassVar[tuple[int, ...]] = (2, 3)
    card_template: ClassVar[str]
    fiji_macro: ClassVar[str]
    input_id: ClassVar[str] = "input"
    graph_output_id: ClassVar[str] = "output"
    """The SavedModel signature's output key (Fiji's plugins take the first output whatever its name)."""

    @property
    def citations(self) -> tuple[CiteEntry, ...]:
        raise NotImplementedError

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


NO_QC = (
    "No QC report was given at export. Run `fijiport qc` on held-out paired images and export "
    "again with `--qc qc_report/qc.json` to include its figures here."
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
