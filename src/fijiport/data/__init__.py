"""Training data: pairing acquisitions, checking images and masks, splitting, and writing the data folders
(:mod:`fijiport.artifacts.data_folder` defines their layout and manifest)."""

from ..artifacts.data_folder import MANIFEST_NAME, DataManifest, StardistManifest, load_manifest, load_stardist_manifest
from .care import prepare_care
from .pairing import ImagePair, PairingResult, pair_images
from .split import split_names
from .stardist import prepare_stardist

__all__ = [
    "MANIFEST_NAME",
    "DataManifest",
    "ImagePair",
    "PairingResult",
    "StardistManifest",
    "load_manifest",
    "load_stardist_manifest",
    "pair_images",
    "prepare_care",
    "prepare_stardist",
    "split_names",
]
