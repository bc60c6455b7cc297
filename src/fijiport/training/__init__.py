"""Training CARE (and, later, StarDist) networks with csbdeep/stardist."""

from .care import TrainProgress, TrainResult, train_care

__all__ = ["TrainProgress", "TrainResult", "train_care"]
