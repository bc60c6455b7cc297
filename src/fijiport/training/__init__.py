"""Training networks with their own libraries: CARE with csbdeep, StarDist with stardist, Noise2Void with n2v;
progress events, atomic checkpoints, resumable runs and the training record shared by all."""

from .care import train_care
from .common import TrainProgress, TrainResult
from .n2v import train_n2v
from .stardist import train_stardist

__all__ = ["TrainProgress", "TrainResult", "train_care", "train_n2v", "train_stardist"]
