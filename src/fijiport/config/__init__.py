"""Pydantic models of every configuration fijiport reads or writes (no TensorFlow import here)."""

from .care import CareTrainConfig
from .data import PrepareCareConfig, PrepareStardistConfig
from .export import CiteEntry, ExportMeta, Person
from .loading import load_yaml_config, merge_options
from .stardist import StardistTrainConfig

__all__ = [
    "CareTrainConfig",
    "CiteEntry",
    "ExportMeta",
    "Person",
    "PrepareCareConfig",
    "PrepareStardistConfig",
    "StardistTrainConfig",
    "load_yaml_config",
    "merge_options",
]
