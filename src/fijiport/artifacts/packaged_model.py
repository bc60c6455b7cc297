"""The model folder a bioimage.io package carries, for the steps that need the library's own model from a package:
``predict --weights keras`` and ``train --init-from PACKAGE``.

Two layouts carry one (nothing else does: a package's frozen graph or ONNX weights cannot be trained or loaded
into csbdeep/stardist):

- fijiport's packages of csbdeep networks: csbdeep's ``config.json`` in ``config.fijiport.csbdeep_config`` (n2v's in
  ``config.fijiport.n2v_config``) and the network as ``keras_hdf5`` weights;
- StarDist packages (fijiport's and deepImageJ-style ones): ``weights_best.h5``, ``config.json`` and
  ``thresholds.json`` attached, stardist's config also in ``config.stardist``.

The files are read through :class:`~fijiport.package.untrusted.PackageFiles` after
:func:`~fijiport.package.read.read_model_package` has checked the package (entries inside it, sha256, no code).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError
from ..kinds.stardist import ATTACHED
from ..package.config_blocks import fijiport_block
from ..package.read import config_dict, read_model_package
from ..package.untrusted import PackageFiles


@dataclass(frozen=True)
class PackageOrigin:
    """What a package says about itself: its name, its BioImage Model Zoo id, version and DOI (when it was
    published), the input normalisation it declares and which of its files holds the weights."""

    path: Path
    name: str
    weights: str
    zoo_id: Optional[str] = None
    version: Optional[str] = None
    doi: Optional[str] = None
    percentiles: Optional[tuple[float, float]] = None


def is_package(path: Path) -> bool:
    """Whether ``path`` is a bioimage.io package (a zip, an rdf.yaml, or a folder with one and no ``config.json``)."""
    path = Path(path)
    if path.is_dir():
        return not (path / "config.json").is_file() and any((path / n).is_file() for n in ("rdf.yaml", "bioimageio.yaml"))
    return path.suffix.lower() in (".zip", ".yaml", ".yml")


def packaged_model_files(source: Path, descr, *, hint: str) -> tuple[dict[str, bytes], str]:
    """The model folder's files (``config.json``, ``weights_best.h5``, for StarDist ``thresholds.json``) a package
    carries, and the package's name of the weights file; ``hint`` ends the message when it carries none."""
    from bioimageio.spec.utils import extract_file_name

    cfg = config_dict(descr)
    files = PackageFiles(source)
    block = fijiport_block(cfg)
    keras = descr.weights.keras_hdf5
    if "stardist" in cfg and all(files.has(n) for n in ATTACHED):
        return {n: files.read(n) or b"" for n in ATTACHED}, "weights_best.h5"
    if block is not None and block.csbdeep_config is not None and keras is not None:
        name = extract_file_name(keras.source)
        return {"config.json": json.dumps(block.csbdeep_config).encode(), "weights_best.h5": files.read(name) or b""}, name
    n2v_config = (block.model_extra or {}).get("n2v_config") if block is not None else None
    if isinstance(n2v_config, dict) and keras is not None:
        name = extract_file_name(keras.source)
        return {"config.json": json.dumps(n2v_config).encode(), "weights_best.h5": files.read(name) or b""}, name
    raise DataError(
        f"{source} carries no csbdeep/stardist/n2v model folder (fijiport's packages carry csbdeep's or n2v's config in "
        "config.fijiport with keras_hdf5 weights; StarDist packages attach weights_best.h5, config.json and "
        f"thresholds.json); {hint}"
    )


def input_percentiles(descr) -> Optional[tuple[float, float]]:
    """The percentiles of the input's ``scale_range`` preprocessing, if it has one."""
    for p in descr.inputs[0].preprocessing or []:
        if getattr(p, "id", "") == "scale_range":
            return float(p.kwargs.min_percentile), float(p.kwargs.max_percentile)
    return None


def package_origin(source: Path, descr, weights: str) -> PackageOrigin:
    """Name, Zoo id, version and DOI of a package (the Zoo writes its DOI to ``config.bioimageio.doi``; older Zoo
    ids are DOIs themselves)."""
    zoo_id = str(descr.id) if getattr(descr, "id", None) else None
    bioimageio = config_dict(descr).get("bioimageio")
    doi = bioimageio.get("doi") if isinstance(bioimageio, dict) else None
    if doi is None and zoo_id and zoo_id.startswith("10."):
        doi = zoo_id
    version = getattr(descr, "version", None)
    return PackageOrigin(
        Path(source),
        str(descr.name),
        weights,
        zoo_id,
        str(version) if version is not None else None,
        str(doi) if doi else None,
        input_percentiles(descr),
    )


@contextmanager
def unpacked_model_folder(source: Path, *, purpose: str, hint: str) -> Iterator[tuple[Path, PackageOrigin]]:
    """The model folder a package carries, written to a temporary folder (named after the package) for as long as
    the block runs, with the package's :class:`PackageOrigin`."""
    descr = read_model_package(source, purpose=purpose)
    files, weights = packaged_model_files(source, descr, hint=hint)
    origin = package_origin(source, descr, weights)
    with tempfile.TemporaryDirectory(prefix="fijiport_pkg_") as tmp:
        folder = Path(tmp) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", origin.name).strip("._")[:64] or "model")
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        yield folder, origin
