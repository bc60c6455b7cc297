"""Exporting trained models: bioimage.io packages, frozen TensorFlow graphs, ONNX."""

from .bioimageio import ExportOptions, ExportResult, export_care

__all__ = ["ExportOptions", "ExportResult", "export_care"]
