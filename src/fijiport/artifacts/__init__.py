"""The files handed from one step to the next, each a type read and written in one place.

- :mod:`.data_folder`: the data folder ``prepare`` writes (manifest, splits, layout);
- :mod:`.model_folder`: the model folder ``train`` writes (kind, network config, weights, normalisation,
  thresholds, training record, resume state);
- :mod:`.qc_report`: ``qc.json``.

The blocks fijiport writes into a bioimage.io rdf's ``config`` live with the package layer
(:mod:`fijiport.package.config_blocks`): they are read from anyone's package, too.
"""

from .data_folder import DataManifest, StardistManifest, load_manifest, load_stardist_manifest
from .model_folder import ModelFolder, TrainingProgress, TrainingRecord
from .qc_report import DenoisingQc, QcReport, RestorationQc, SegmentationQc, read_qc_report

__all__ = [
    "DataManifest",
    "DenoisingQc",
    "ModelFolder",
    "QcReport",
    "RestorationQc",
    "SegmentationQc",
    "StardistManifest",
    "TrainingProgress",
    "TrainingRecord",
    "load_manifest",
    "load_stardist_manifest",
    "read_qc_report",
]
