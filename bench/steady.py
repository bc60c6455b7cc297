"""Steady-state measurement for `make bench` (issue 18): a model is loaded once in a worker process, start-up (imports
+ model load) is timed apart, then the same work is repeated; fijiport and its baseline alternate which goes first;
every worker gets the same thread settings; memory is the peak of the worker's whole process tree, sampled.

Workers are this file run as a script (``python bench/steady.py ENGINE SPEC``): they print one JSON line when ready,
then answer each ``run`` line on stdin with one JSON line, until ``quit``.

Engines:

- ``csbdeep``: csbdeep's ``CARE.predict`` on a TIFF (read, percentile normalisation, tiled prediction, write), as a
  lab's script does it.
- ``fijiport``: fijiport's own runner for a model folder (Keras) or a package (ONNX on onnxruntime, or on OpenVINO
  with ``weights: openvino``), the one ``fijiport predict`` uses, on the same TIFF (read, checks, normalisation, tiling, write).
- ``net_tf`` / ``net_ort`` / ``net_ov``: the network alone on one fixed input, on TensorFlow (tf_keras, as csbdeep
  runs it), onnxruntime (the package's ONNX weights) and OpenVINO (the same ONNX file), for GFLOP/s.
- ``matmul``: a float32 N×N matrix product (numpy's BLAS): the machine's attainable FP32 rate in this run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

THREADS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def thread_env(threads: int) -> dict:
    """The environment every worker runs in: the same intra-op thread count for every library, one inter-op thread."""
    env = dict(os.environ)
    for k in THREADS_ENV:
        env[k] = str(threads)
    env["TF_NUM_INTEROP_THREADS"] = "1"
    env["TF_USE_LEGACY_KERAS"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MB), from /proc."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


class Worker:
    """One engine in its own process, model loaded once; ``run()`` times one repetition and samples the tree's peak
    memory while it runs."""

    def __init__(self, engine: str, spec: dict, threads: int):
        self.engine, self.label = engine, spec.get("label", engine)
        started = time.perf_counter()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close()); the libraries' chatter; a pipe nobody reads would fill and block
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), engine, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=thread_env(threads),
        )
        self.peak_mb = 0.0
        ready = self._read(started)
        # start-up: process start, imports and model load (for net_* engines also one forward pass whose output is
        # compared); the warm-up run that follows is timed by the worker and reported apart
        self.startup_seconds = round(time.perf_counter() - started - ready.get("warmup_seconds", 0.0), 2)
        self.info = ready

    def _read(self, started: float, sample: bool = True) -> dict:
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                self.peak_mb = max(self.peak_mb, tree_rss_mb(self.proc.pid))
                stop.wait(0.05)

        t = threading.Thread(target=sampler, daemon=True)
        if sample:
            t.start()
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
        finally:
            stop.set()
            if sample:
                t.join()
        if not line:
            self.log.seek(0)
            err = self.log.read().decode(errors="replace")
            raise RuntimeError(f"{self.label} ({self.engine}) died after {time.perf_counter() - started:.0f} s:\n{err[-3000:]}")
        return json.loads(line)

    def run(self) -> dict:
        assert self.proc.stdin is not None
        started = time.perf_counter()
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        r = self._read(started)
        r["wall_seconds"] = round(time.perf_counter() - started, 4)
        return r

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        self.log.close()


def _stats(seconds: list[float]) -> dict:
    import statistics

    return {"min": round(min(seconds), 4), "median": round(statistics.median(seconds), 4), "runs": [round(s, 4) for s in seconds]}


def compare(workers: dict[str, tuple[str, dict]], threads: int, repeats: int = 3) -> dict:
    """Start every worker (start-up timed), then ``repeats`` rounds in which each runs once, the order rotated by one
    each round so no engine always goes first (the first of a round reads a colder page cache). Returns per engine
    its start-up seconds, min/median/all steady-state seconds (the worker's own timer, around the work only), peak
    memory of its process tree and what the worker reported."""
    started = {}
    out: dict = {}
    try:
        for key, (engine, spec) in workers.items():
            w = Worker(engine, spec, threads)
            started[key] = w
            print(f"  {spec.get('label', key):<44} start-up {w.startup_seconds:6.1f} s", flush=True)
        order = list(started)
        runs: dict[str, list[dict]] = {k: [] for k in order}
        for r in range(repeats):
            rotated = order[r % len(order) :] + order[: r % len(order)]
            for key in rotated:
                runs[key].append(started[key].run())
        for key, w in started.items():
            seconds = [x["seconds"] for x in runs[key]]
            out[key] = {
                "label": w.label,
                "startup_seconds": w.startup_seconds,
                "steady_seconds": _stats(seconds),
                "peak_tree_rss_mb": round(w.peak_mb, 1),
                **{k: v for k, v in runs[key][-1].items() if k not in ("seconds", "wall_seconds")},
                **{k: v for k, v in w.info.items() if k != "ready"},
            }
            print(
                f"  {w.label:<44} steady min {out[key]['steady_seconds']['min']:7.3f} s, median "
                f"{out[key]['steady_seconds']['median']:7.3f} s, peak tree {w.peak_mb:6.0f} MB",
                flush=True,
            )
    finally:
        for w in started.values():
            w.close()
    return out


# ---------------------------------------------------------------- FLOPs


def onnx_flops(onnx_path: Path, x) -> int:
    """Floating-point operations of one forward pass on input ``x`` (NumPy, the ONNX input's layout): 2 × the
    multiply-adds of every Conv, ConvTranspose, MatMul and Gemm. Shapes are the real ones: the graph is run once in
    onnxruntime with every such node's inputs and output exposed (the U-Nets' resize shapes are computed at run time,
    which static shape inference cannot follow)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    inits = {i.name: tuple(i.dims) for i in model.graph.initializer}
    counted = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")]
    wanted = {n.output[0] for n in counted} | {n.input[0] for n in counted} | {n.input[1] for n in counted if n.input[1] not in inits}
    have = {o.name for o in model.graph.output}
    for name in sorted(wanted - have - {i.name for i in model.graph.input}):
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))
    values[sess.get_inputs()[0].name] = x
    shape = {k: v.shape for k, v in values.items()}
    total = 0
    for n in counted:
        if n.op_type == "Conv":  # W: (Cout, Cin/group, k...); out: (N, Cout, spatial...)
            w = inits.get(n.input[1]) or shape[n.input[1]]
            total += 2 * int(np.prod(shape[n.output[0]])) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":  # W: (Cin, Cout/group, k...); in: (N, Cin, spatial...)
            w = inits.get(n.input[1]) or shape[n.input[1]]
            total += 2 * int(np.prod(shape[n.input[0]])) * int(np.prod(w[1:]))
        else:  # MatMul / Gemm: out (..., M, N), K = last dim of A
            k = shape[n.input[0]][-1]
            total += 2 * int(np.prod(shape[n.output[0]])) * int(k)
    return total


# ---------------------------------------------------------------- engines (run in the worker process)


def _engine(engine: str, spec: dict):
    """(setup info, one repetition as a function returning its extra results) for ``engine``."""
    import numpy as np

    if engine == "matmul":
        n = int(spec.get("n", 4096))
        rng = np.random.default_rng(0)
        a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)

        def once():
            a @ b
            return {"flops": 2 * n**3}

        return {"n": n}, once

    if engine in ("csbdeep", "fijiport"):
        import tifffile

        image, out = Path(spec["image"]), Path(spec["out"])
        tiles = tuple(spec["tiles"])
        if engine == "csbdeep":
            from csbdeep.data import PercentileNormalizer
            from csbdeep.models import CARE

            from fijiport.artifacts import ModelFolder

            f = ModelFolder.open(Path(spec["model"]))
            model = CARE(None, name=f.path.name, basedir=str(f.path.parent))
            norm = PercentileNormalizer(*f.percentiles)

            def once():
                img = tifffile.imread(image)
                y = model.predict(img, f.spatial_axes, normalizer=norm, n_tiles=tiles)
                tifffile.imwrite(out, y.astype(np.float32))
                return {}

        else:
            from fijiport.predict.folder import folder_runner
            from fijiport.predict.package import package_runner

            model_path = Path(spec["model"])
            weights = spec.get("weights", "onnx")
            run = package_runner(model_path, weights, "input") if model_path.suffix == ".zip" else folder_runner(model_path)
            out.mkdir(parents=True, exist_ok=True)
            run.check(image, tifffile.imread(image), out, True, tiles)

            def once():
                run(image, out, tiles, True)
                return {}

        return {}, once

    x = np.load(spec["input"]).astype(np.float32)
    if engine == "net_tf":
        from csbdeep.models import CARE

        folder = Path(spec["model"])
        keras_model = CARE(None, name=folder.name, basedir=str(folder.parent)).keras_model

        def run_net():
            return keras_model.predict_on_batch(x)

    elif engine == "net_ort":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(spec["onnx"], opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        def run_net():
            return sess.run(None, {name: x})[0]

    elif engine == "net_ov":
        import openvino as ov

        core = ov.Core()
        threads = os.environ.get("OMP_NUM_THREADS")
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        model = core.read_model(spec["onnx"])
        model.reshape({model.inputs[0].any_name: list(x.shape)})
        compiled = core.compile_model(model, "CPU", config)
        request = compiled.create_infer_request()

        def run_net():
            request.infer({0: x})
            return request.get_output_tensor(0).data.copy()

    else:
        raise SystemExit(f"unknown engine {engine}")
    y0 = run_net()  # the output compared and saved; the warm-up follows in _serve
    reference = spec.get("reference")
    diff = None
    if reference:
        diff = float(np.abs(np.asarray(y0, np.float64) - np.load(reference)).max())
    if spec.get("save_output"):
        np.save(spec["save_output"], np.asarray(y0, np.float64))

    def once():
        run_net()
        return {"max_abs_diff_vs_tf": diff}

    return {}, once


def _serve(engine: str, spec: dict) -> None:
    # the protocol gets the real stdout; whatever the libraries print goes to stderr (the worker's log)
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    info, once = _engine(engine, spec)
    warm = time.perf_counter()
    once()  # warm-up (graph building, first allocations, page cache): timed, reported apart from start-up
    info["warmup_seconds"] = round(time.perf_counter() - warm, 3)
    print(json.dumps({"ready": True, **info}), file=proto, flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t = time.perf_counter()
        extra = once()
        print(json.dumps({"seconds": time.perf_counter() - t, **(extra or {})}), file=proto, flush=True)


def gflops(flops: Optional[int], seconds: float) -> Optional[float]:
    return None if not flops else round(flops / seconds / 1e9, 1)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]))
