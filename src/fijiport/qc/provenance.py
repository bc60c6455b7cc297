"""What a QC report says about what it measured: which model (its weights' sha256) and which images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import __version__
from ..artifacts.data_folder import MANIFEST_NAME, split_of_folder
from ..artifacts.model_folder import ModelFolder

log = logging.getLogger(__name__)


def qc_provenance(folder: ModelFolder, test_dir: Path, names: list[str]) -> dict[str, Any]:
    """The provenance fields of a QC report (:class:`~fijiport.artifacts.qc_report.QcProvenance`), warning when
    the images are the model's own training images (the data folder's ``train`` split, or the names its training
    record lists for that data folder): QC on them flatters the model."""
    test_dir = Path(test_dir)
    split = split_of_folder(test_dir)
    data_dir = test_dir if (test_dir / MANIFEST_NAME).is_file() else test_dir.parent
    if folder.trained_on(names, data_dir):
        split = "train"
    if split == "train":
        log.warning(
            "%s holds images this model was trained on: QC on training images flatters the model; measure it on the "
            "held-out split (DATA/test)",
            test_dir,
        )
    return {
        "kind": folder.kind.name,
        "fijiport_version": __version__,
        "model": str(folder.extra.get("source") or folder.path.resolve()),  # a package's model: the package
        "weights": folder.weights_path.name,
        "weights_sha256": folder.weights_sha256(),
        "test_dir": str(test_dir.resolve()),
        "split": split,
    }
