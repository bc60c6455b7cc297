"""The blocks fijiport writes into a bioimage.io rdf's ``config``, and reads back from anyone's package.

- ``config.fijiport`` (:class:`FijiportBlock`): which kind of model, its normalisation, size step and
  halo, and how far each weight format was from the Keras reference at export.
- ``config.stardist`` (:class:`StardistBlock`): what deepImageJ's StarDist command and ``fijiport predict``
  need to make labels (stardist's own config, thresholds, the attached Keras weights).
- ``config.deepimagej``: the keys deepImageJ 3.1 reads (tiling allowed; no pre/postprocessing of its own).
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict

from .. import __version__


class FijiportBlock(BaseModel):
    """``config.fijiport``."""

    model_config = ConfigDict(extra="allow")
    version: str = __version__
    kind: str
    csbdeep_config: Optional[dict[str, Any]] = None
    """CARE: csbdeep's config.json, so ``predict --weights keras`` can rebuild the model folder."""
    percentiles: list[float]
    div_by: int
    halo: int
    max_abs_diff_to_keras: dict[str, float]
    object_stats: Optional[dict[str, float]] = None
    """Label kinds: the training masks' objects (count, median area, objects per megapixel) from the training record;
    ``predict`` flags images whose objects are far from them."""
    qc: Optional[dict[str, Any]] = None
    """The QC figures export put in the card (``task``, ``n_images``, ``split``, ``from_other_model`` and the kind's
    metrics); ``zoo-check`` fails a package whose figures show a model that makes images worse."""
    training_pixel_size_um: Optional[dict[str, float]] = None
    """The training images' pixel size (micrometres along Z, Y, X) from the training record; ``predict`` warns on
    images whose pixel size differs by more than 20 %."""
    parent: Optional[dict[str, Any]] = None
    """The model this one was fine-tuned from (``train --init-from``): its name, kind, weights file and sha256, and
    for packages its Zoo id, version and DOI. The rdf's own ``parent`` holds the Zoo id when there is one."""

    def to_rdf(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=True)
        return {
            k: data[k]
            for k in (
                "version",
                "kind",
                "csbdeep_config",
                "percentiles",
                "div_by",
                "halo",
                "max_abs_diff_to_keras",
                "object_stats",
                "training_pixel_size_um",
                "qc",
                "parent",
                *sorted(set(data) - set(FijiportBlock.model_fields)),
            )
            if k in data
        }


class StardistBlock(BaseModel):
    """``config.stardist``: deepImageJ counts a model as StarDist when this block exists (and its name says so)."""

    model_config = ConfigDict(extra="allow")
    stardist_version: str = ""
    weights: str = "weights_best.h5"
    config: dict[str, Any]
    thresholds: dict[str, float]
    postprocessing: dict[str, Any] = {}


def deepimagej_block() -> dict[str, Any]:
    """``config.deepimagej``: tiling allowed (deepImageJ defaults it to false once the block exists)."""
    return {
        "pyramidal_model": False,
        "allow_tiling": True,
        "model_keys": None,
        "prediction": {"preprocess": [{"spec": None}], "postprocess": [{"spec": None}]},
    }


def fijiport_block(config: dict[str, Any]) -> Optional[FijiportBlock]:
    """``config.fijiport`` of a package's config (plain data), if it has a readable one."""
    block = config.get("fijiport")
    if not isinstance(block, dict) or "kind" not in block:
        return None
    try:
        return FijiportBlock.model_validate(block)
    except ValueError:
        return None


def stardist_block(config: dict[str, Any]) -> Optional[StardistBlock]:
    """``config.stardist`` with stardist's config (with ``n_rays``) and both thresholds, or None."""
    block = config.get("stardist")
    if not isinstance(block, dict):
        return None
    cfg, thresholds = block.get("config"), block.get("thresholds")
    if not (isinstance(cfg, dict) and "n_rays" in cfg and isinstance(thresholds, dict) and {"prob", "nms"} <= set(thresholds)):
        return None
    try:
        return StardistBlock.model_validate(block)
    except ValueError:
        return None
