"""Training networks with their own libraries: CARE with csbdeep, StarDist with stardist; progress events,
atomic checkpoints, resumable runs and the training record shared by both."""

from .care import train_care
from .common import TrainProgress, TrainResult
from .stardist import train_stardist

__all__ = ["TrainProgress", "TrainResult", "train_care", "train_stardist"]
