"""The runtimes that Fiji's, deepImageJ's and KNIME's plugins embed, run offline from a cache.

TensorFlow 1.13.1 (KNIME), 1.15.0 (CSBDeep-Fiji, StarDist-Fiji, N2V-Fiji, deepImageJ TF1) and 2.10.1
(deepImageJ TF2) are the C libraries inside the official wheels, driven through the TF C API in
child processes; onnxruntime 1.13.1 (deepImageJ ONNX) is the npm package ``onnxruntime-node``.
"""

from .install import install_runtimes
from .registry import RUNTIMES, Runtime, default_cache_dir, runtime_status

__all__ = ["RUNTIMES", "Runtime", "default_cache_dir", "install_runtimes", "runtime_status"]
