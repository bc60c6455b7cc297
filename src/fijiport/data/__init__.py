"""Training data: pairing acquisitions, splitting, and the data folders fijiport writes."""

from .pairing import ImagePair, PairingResult, pair_images
from .prepare import MANIFEST_NAME, DataManifest, load_manifest, prepare_care
from .split import split_names

__all__ = [
    "MANIFEST_NAME",
    "DataManifest",
    "ImagePair",
    "PairingResult",
    "load_manifest",
    "pair_images",
    "prepare_care",
    "split_names",
]
