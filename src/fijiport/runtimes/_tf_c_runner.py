"""Child process: run a SavedModel on one TensorFlow C runtime (the library inside a TF wheel).

``python -m fijiport.runtimes._tf_c_runner REQUEST.json`` with REQUEST holding ``library`` (path of
``_pywrap_tensorflow_internal.so``), optional ``preload`` (shared objects to load first),
``saved_model_dir``, ``tag``, ``input_op``/``input_index``, ``output_op``/``output_index``,
``input_npy`` and ``output_npy``. Prints one JSON line: ``{"ok": true, "tf_version": ..., "shape": [...]}``
or ``{"ok": false, "stage": ..., "error": <the runtime's own message>}``.

This process never imports TensorFlow's Python package: the old runtimes are driven through their
C API with ctypes, as the Java bindings inside Fiji and KNIME drive them.
"""

from __future__ import annotations

import ctypes
import json
import sys

import numpy as np

TF_FLOAT = 1
TF_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    17: np.uint16,
    19: np.float16,
    22: np.uint32,
    23: np.uint64,
}
"""TF_DataType codes (tensorflow/c/tf_datatype.h) of the numeric outputs read back, as numpy types."""


class TF_Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t), ("data_deallocator", ctypes.c_void_p)]


class TF_Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


def _bind(lib):
    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype, f.argtypes = restype, list(argtypes)
        return f

    vp, cp, i, i64p = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64)
    return {
        "TF_Version": fn("TF_Version", cp),
        "TF_NewStatus": fn("TF_NewStatus", vp),
        "TF_GetCode": fn("TF_GetCode", i, vp),
        "TF_Message": fn("TF_Message", cp, vp),
        "TF_NewGraph": fn("TF_NewGraph", vp),
        "TF_NewSessionOptions": fn("TF_NewSessionOptions", vp),
        "TF_LoadSessionFromSavedModel": fn("TF_LoadSessionFromSavedModel", vp, vp, vp, cp, ctypes.POINTER(cp), i, vp, vp, vp),
        "TF_GraphOperationByName": fn("TF_GraphOperationByName", vp, vp, cp),
        "TF_AllocateTensor": fn("TF_AllocateTensor", vp, i, i64p, i, ctypes.c_size_t),
        "TF_TensorData": fn("TF_TensorData", vp, vp),
        "TF_TensorByteSize": fn("TF_TensorByteSize", ctypes.c_size_t, vp),
        "TF_TensorType": fn("TF_TensorType", i, vp),
        "TF_NumDims": fn("TF_NumDims", i, vp),
        "TF_Dim": fn("TF_Dim", ctypes.c_int64, vp, i),
        "TF_SessionRun": fn(
            "TF_SessionRun",
            None,
            vp,
            vp,
            ctypes.POINTER(TF_Output),
            ctypes.POINTER(vp),
            i,
            ctypes.POINTER(TF_Output),
            ctypes.POINTER(vp),
            i,
            vp,
            i,
            vp,
            vp,
        ),
        "TF_CloseSession": fn("TF_CloseSession", None, vp, vp),
        "TF_DeleteSession": fn("TF_DeleteSession", None, vp, vp),
        "TF_DeleteTensor": fn("TF_DeleteTensor", None, vp),
    }


def run(req: dict) -> dict:
    mode = getattr(ctypes, "RTLD_LAZY", 1) | ctypes.RTLD_GLOBAL
    try:
        for pre in req.get("preload", []):
            ctypes.CDLL(pre, mode=mode)
        lib = ctypes.CDLL(req["library"], mode=mode)
        api = _bind(lib)
    except OSError as e:
        return {"ok": False, "stage": "load runtime", "error": str(e)}
    version = api["TF_Version"]().decode()
    if "saved_model_dir" not in req:  # a health check: the library loads and answers
        return {"ok": True, "tf_version": version}
    status = api["TF_NewStatus"]()

    def failed() -> str | None:
        if api["TF_GetCode"](status) != 0:
            return api["TF_Message"](status).decode(errors="replace")
        return None

    graph = api["TF_NewGraph"]()
    opts = api["TF_NewSessionOptions"]()
    tags = (ctypes.c_char_p * 1)(req.get("tag", "serve").encode())
    session = api["TF_LoadSessionFromSavedModel"](opts, None, req["saved_model_dir"].encode(), tags, 1, graph, None, status)
    if (msg := failed()) is not None or not session:
        return {"ok": False, "tf_version": version, "stage": "load SavedModel", "error": msg or "no session"}

    def output(op_name: str, index: int):
        op = api["TF_GraphOperationByName"](graph, op_name.encode())
        if not op:
            raise LookupError(f"operation {op_name!r} not in the graph")
        return TF_Output(op, index)

    try:
        inp, out = output(req["input_op"], req["input_index"]), output(req["output_op"], req["output_index"])
    except LookupError as e:
        return {"ok": False, "tf_version": version, "stage": "find tensors", "error": str(e)}
    x = np.ascontiguousarray(np.load(req["input_npy"]), dtype=np.float32)
    dims = (ctypes.c_int64 * x.ndim)(*x.shape)
    tensor = api["TF_AllocateTensor"](TF_FLOAT, dims, x.ndim, x.nbytes)
    ctypes.memmove(api["TF_TensorData"](tensor), x.ctypes.data, x.nbytes)
    in_vals = (ctypes.c_void_p * 1)(tensor)
    out_vals = (ctypes.c_void_p * 1)()
    api["TF_SessionRun"](session, None, ctypes.byref(inp), in_vals, 1, ctypes.byref(out), out_vals, 1, None, 0, None, status)
    if (msg := failed()) is not None:
        return {"ok": False, "tf_version": version, "stage": "run", "error": msg}
    result = out_vals[0]
    code = api["TF_TensorType"](result)
    if code not in TF_DTYPES:
        return {"ok": False, "tf_version": version, "stage": "read output", "error": f"output has TF_DataType {code}, not a numeric type"}
    shape = [api["TF_Dim"](result, d) for d in range(api["TF_NumDims"](result))]
    nbytes = api["TF_TensorByteSize"](result)
    y = np.empty(shape, dtype=TF_DTYPES[code])
    if y.nbytes != nbytes:
        return {"ok": False, "tf_version": version, "stage": "read output", "error": f"{nbytes} bytes for shape {shape}"}
    ctypes.memmove(y.ctypes.data, api["TF_TensorData"](result), nbytes)
    np.save(req["output_npy"], y)
    api["TF_DeleteTensor"](result)
    api["TF_DeleteTensor"](tensor)
    api["TF_CloseSession"](session, status)
    api["TF_DeleteSession"](session, status)
    return {"ok": True, "tf_version": version, "shape": shape}


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        request = json.load(fh)
    try:
        answer = run(request)
    except Exception as e:  # report, never a bare traceback: the parent quotes this
        answer = {"ok": False, "stage": "runner", "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer), flush=True)
