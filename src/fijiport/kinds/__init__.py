"""Model kinds as plugins: what differs between CARE, StarDist and the kinds to come, in one table.

Each kind is one module with a :class:`~fijiport.kinds.base.ModelKind` (how its library loads and
predicts, its normalisation, the exported network, the rdf's outputs and config, the model card, the
Fiji zip and macro). The steps look a model's kind up here, once, through
:meth:`fijiport.artifacts.model_folder.ModelFolder.open` (folders) or :func:`kind_of_package`
(bioimage.io packages), and dispatch on it. Adding a kind: a module and a line in :data:`KINDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError
from .base import ExportContext, Geometry, KindPrediction, ModelKind
from .care import CARE
from .n2v import N2V
from .stardist import STARDIST

KINDS: dict[str, ModelKind] = {k.name: k for k in (STARDIST, N2V, CARE)}
"""Every kind, most specific first: the first whose ``detect`` accepts a config.json is the folder's kind."""


def kind_named(name: str) -> ModelKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown model kind {name!r}; fijiport knows {', '.join(KINDS)}") from None


def kind_of_config(config: dict[str, Any], path: Optional[Path] = None) -> ModelKind:
    """The kind of a model folder's ``config.json``."""
    for kind in KINDS.values():
        if kind.detect(config):
            return kind
    raise ConfigError(f"{path or 'config.json'} is not the config of a model kind fijiport knows ({', '.join(KINDS)})")


def kind_of_package(config: dict[str, Any], name: str = "", tags: Sequence[str] = ()) -> Optional[ModelKind]:
    """The kind of a bioimage.io package from its rdf's ``config`` (plain data), name and tags: what fijiport
    recorded in ``config.fijiport``, else a StarDist package by deepImageJ's rule (a ``config.stardist`` block or
    "stardist" in the name), an N2V package by the tags n2v's exporter writes (``n2v``/``noise2void``); None for
    other packages."""
    block = config.get("fijiport")
    if isinstance(block, dict) and block.get("kind") in KINDS:
        return KINDS[block["kind"]]
    if config.get("stardist") or "stardist" in name.lower():
        return STARDIST
    if {str(t).lower() for t in tags} & {"n2v", "noise2void"}:
        return N2V
    return None


def kind_of_fiji_meta(meta: dict[str, Any]) -> Optional[ModelKind]:
    """The kind of a CSBDeep/StarDist Fiji zip from its ``meta.json`` (csbdeep writes ``type: CARE``, stardist
    ``type: StarDist`` and ``n_rays``); None when it does not say."""
    kind = str(meta.get("type", "")).lower()
    if "n_rays" in meta or kind == STARDIST.title.lower():
        return STARDIST
    return next((k for k in KINDS.values() if k.title.lower() == kind), None)


__all__ = [
    "CARE",
    "KINDS",
    "N2V",
    "STARDIST",
    "ExportContext",
    "Geometry",
    "KindPrediction",
    "ModelKind",
    "kind_named",
    "kind_of_config",
    "kind_of_fiji_meta",
    "kind_of_package",
]
