"""Training data: pairing acquisitions, checking images and masks, splitting, and writing the data folders
(:mod:`fijiport.artifacts.data_folder` defines their layout and manifest)."""

from ..artifacts.data_folder import (
    MANIFEST_NAME,
    DataManifest,
    N2vManifest,
    StardistManifest,
    load_manifest,
    load_n2v_manifest,
    load_stardist_manifest,
)
from .care import plan_care_pairs, prepare_care
from .n2v import prepare_n2v
from .pairing import ImagePair, PairingResult, pair_acquisitions, pair_images
from .split import split_names
from .stardist import prepare_stardist

__all__ = [
    "MANIFEST_NAME",
    "DataManifest",
    "ImagePair",
    "N2vManifest",
    "PairingResult",
    "StardistManifest",
    "load_manifest",
    "load_n2v_manifest",
    "load_stardist_manifest",
    "pair_acquisitions",
    "pair_images",
    "plan_care_pairs",
    "prepare_care",
    "prepare_n2v",
    "prepare_stardist",
    "split_names",
]
