"""A package's ONNX weights on OpenVINO, as a bioimageio.core model adapter (``fijiport predict --weights openvino``).

OpenVINO is the fastest CPU runtime measured for these U-Nets (``make bench``, "how close to the limit"), but it is
no requirement of fijiport: ``pip install openvino`` adds it. The same ONNX file runs as with onnxruntime; only the
engine differs, so everything around it (the package's pre- and postprocessing, tiling, halo) is bioimageio.core's
and fijiport's as for ``--weights onnx``. Each input shape is compiled once (a tiled image has one or a few).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ..errors import DataError

INSTALL = "pip install openvino  (or `make bench`, which installs the tested release)"


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_adapter(descr, source) -> Any:
    """A bioimageio.core ``ModelAdapter`` running ``descr``'s ONNX weights on OpenVINO's CPU plugin (FP32: the
    output agrees with onnxruntime's to float rounding, not to a lower precision)."""
    if not openvino_available():
        raise DataError(f"--weights openvino needs OpenVINO, which is not installed: {INSTALL}")
    if descr.weights.onnx is None:
        raise DataError(f"{source} has no ONNX weights for OpenVINO to run; add them with `fijiport convert {source} -o with_onnx.zip`")
    import openvino as ov
    from bioimageio.core._model_adapter import LocalModelAdapter

    class OpenVinoAdapter(LocalModelAdapter):
        def __init__(self, model_description):
            self._ov_model = None
            self._compiled: dict[tuple[int, ...], Any] = {}
            super().__init__(model_description=model_description, devices=None)

        def _parse_devices(self, devices: Optional[Sequence[str]]) -> Sequence[str]:
            return ["CPU"]

        def _init_model_on_device(self, device: str):
            core = ov.Core()
            onnx = self._model_descr.weights.onnx
            assert onnx is not None  # checked before the adapter is made
            data = onnx.get_reader().read()
            self._ov_model = core.read_model(model=bytes(data), weights=b"")
            self._core = core
            return core

        def _compile(self, shape: tuple[int, ...]):
            if shape not in self._compiled:
                assert self._ov_model is not None
                model = self._ov_model.clone()
                model.reshape({model.inputs[0].any_name: list(shape)})
                config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
                threads = os.environ.get("OMP_NUM_THREADS")
                if threads and threads.isdigit():
                    config["INFERENCE_NUM_THREADS"] = threads
                self._compiled[shape] = self._core.compile_model(model, "CPU", config).create_infer_request()
            return self._compiled[shape]

        def _forward_impl(self, device, model, input_arrays):
            if len(input_arrays) != 1 or input_arrays[0] is None:
                raise DataError(f"{source}: OpenVINO runs models with one input here")
            x = np.ascontiguousarray(input_arrays[0], dtype=np.float32)
            request = self._compile(tuple(x.shape))
            request.infer({0: x})
            return [request.get_output_tensor(i).data.copy() for i in range(len(request.model_outputs))]

        def _cleanup_pre_model_deletion(self, device, model) -> None:
            self._compiled.clear()

        def _cleanup_post_model_deletion(self, device) -> None:
            return

    return OpenVinoAdapter(descr)
