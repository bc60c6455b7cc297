"""Exporting trained models: bioimage.io packages, frozen TensorFlow graphs, ONNX, the Fiji zip and macro,
and repairing models others exported (:mod:`.convert`)."""

from .exporter import ExportOptions, ExportResult, export_care, export_model, export_stardist

__all__ = ["ExportOptions", "ExportResult", "export_care", "export_model", "export_stardist"]
