"""`make bench`: fijiport's speed and memory as ratios against baselines measured in the same run.

1. export + validate a CARE 2D and a StarDist 2D model folder vs the official `bioimageio test` on the same zip;
2. inference on a 2048×2048 image and a 64×512×512 stack: csbdeep's own ``CARE.predict`` (baseline) vs
   ``fijiport predict`` with the Keras weights (model folder) and with the ONNX weights (package).

Every measured step runs in its own process; wall time and peak RSS (``wait4``, the process and its
children) are recorded. Writes ``bench/results/bench.json`` and ``bench.md`` (not kept in git).
3. CARE patch generation from 20 stacks of 64×1024×1024 uint16 (10 low/GT pairs, 2.7 GB on disk): csbdeep's
   ``create_patches`` vs fijiport's streaming sampler, peak RSS and time, and whether the patches are identical;
   fijiport also on 3 pairs, to show its peak does not grow with the number of stacks (beyond the patches).
4. `fijiport train care` vs the plain csbdeep script (same data, patches, network), end to end.
5. `fijiport train n2v` vs the plain n2v script (n2v's own ``N2V.train``; same data, patches, blind spot, network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import steady

HERE = Path(__file__).resolve().parent
THREADS = os.cpu_count() or 1  # every measured process gets the same thread settings (steady.thread_env); --threads
VENV_BIN = Path(sys.executable).parent
FIJIPORT = str(VENV_BIN / "fijiport")


LAUNCHER = """
import json, os, subprocess, sys, tempfile, threading, time
sys.path.insert(0, sys.argv[1])
from steady import tree_rss_mb  # the same process-tree sampler as the steady-state workers
for line in sys.stdin:
    job = json.loads(line)
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        peak, stop = [0], threading.Event()
        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], tree_rss_mb(proc.pid))
                stop.wait(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        out.seek(0)
        text = out.read().decode(errors="replace")[-3000:]
    print(json.dumps({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "tree_peak_kb": int(peak[0] * 1024),
                      "rc": os.waitstatus_to_exitcode(status), "text": text}), flush=True)
"""
_launcher: subprocess.Popen | None = None


def measure(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None, label: str = "") -> dict:
    """Run ``cmd``; return seconds and the peak RSS (MB) of its whole process tree (sampled) and of its largest
    single process (``wait4``).

    The command is started by a small launcher process, not by this one: Linux records the memory
    high-water mark of the process that forks into a child's peak RSS, so a child forked from this
    (large) process would report at least this process's peak."""
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(HERE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _launcher.stdin.write(
        json.dumps(
            {"cmd": [str(c) for c in cmd], "cwd": str(cwd) if cwd else None, "env": env if env is not None else steady.thread_env(THREADS)}
        )
        + "\n"
    )
    _launcher.stdin.flush()
    line = _launcher.stdout.readline()
    if not line:
        raise RuntimeError(f"the measuring launcher died while running {label or cmd[0]} (exit {_launcher.wait()})")
    r = json.loads(line)
    if r["rc"] != 0:
        raise RuntimeError(f"{label or cmd[0]} failed ({r['rc']}):\n{r['text']}")
    # the process tree's peak, sampled every 50 ms; never below the largest single process (wait4), which a short
    # spike between two samples could otherwise hide
    tree = max(r["tree_peak_kb"], r["maxrss_kb"]) / 1024
    print(f"  {label:<42} {r['seconds']:7.1f} s  {tree:7.0f} MB (tree)", flush=True)
    return {"seconds": round(r["seconds"], 2), "peak_rss_mb": round(tree, 1), "largest_process_rss_mb": round(r["maxrss_kb"] / 1024, 1)}


def keras3_env() -> dict:
    env = steady.thread_env(THREADS)
    env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def train_models(work: Path) -> dict[str, Path]:
    """Small but real models (setup, not measured): CARE 2D and 3D on fijiport's synthetic pairs, StarDist 2D on
    stardist's nuclei image (trained long enough to find objects)."""
    script = f"""
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
from pathlib import Path
import numpy as np, tifffile
from fijiport.config import CareTrainConfig, PrepareCareConfig, PrepareStardistConfig, StardistTrainConfig
from fijiport.data import prepare_care
from fijiport.data import prepare_stardist
from fijiport.data.synthetic import write_care_pairs
from fijiport.training import train_care
from fijiport.training import train_stardist
w = Path({str(work)!r})
for dims, patch in ((2, [64, 64]), (3, [16, 32, 32])):
    raw = w / f"care{{dims}}d_raw"
    low, gt = write_care_pairs(raw, dims=dims, seed=0)
    prepare_care(low, gt, w / f"care{{dims}}d_data", config=PrepareCareConfig(test_fraction=0.2))
    train_care(w / f"care{{dims}}d_data", w / f"care{{dims}}d", CareTrainConfig(epochs=2, steps_per_epoch=10, batch_size=8,
               patch_size=patch, patches_per_image=16, unet_first_filters=16, tensorboard=False))
from stardist.data import test_image_nuclei_2d
img, lbl = test_image_nuclei_2d(return_mask=True)
sd = w / "sd_raw"; (sd / "images").mkdir(parents=True); (sd / "masks").mkdir()
for i, (y, x) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
    tifffile.imwrite(sd / "images" / f"n{{i}}.tif", img[y:y + 256, x:x + 256])
    tifffile.imwrite(sd / "masks" / f"n{{i}}.tif", lbl[y:y + 256, x:x + 256])
prepare_stardist(sd / "images", w / "sd_data", masks_dir=sd / "masks", config=PrepareStardistConfig(test_fraction=0.25))
from fijiport.config.n2v import PrepareN2vConfig
from fijiport.data import prepare_n2v
from fijiport.data.synthetic import write_noisy_images
noisy, _ = write_noisy_images(w / "n2v_raw", dims=2, seed=0, n=9)
prepare_n2v([noisy], w / "n2v_data", config=PrepareN2vConfig(validation_fraction=0.12, test_fraction=0.12))
train_stardist(w / "sd_data", w / "stardist2d", StardistTrainConfig(epochs=15, steps_per_epoch=20, patch_size=[96, 96],
               unet_first_filters=16, learning_rate=1e-3, validation_fraction=0.34, tensorboard=False))
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return {"care2d": work / "care2d", "care3d": work / "care3d", "stardist2d": work / "stardist2d"}


def bench_export_validate(models: dict[str, Path], work: Path) -> dict:
    results = {}
    for key in ("care2d", "stardist2d"):
        print(f"export + validate: {key}")
        pkg = work / f"{key}.zip"
        r = {
            "export": measure([FIJIPORT, "export", str(models[key]), "-o", str(pkg), "--overwrite"], label=f"fijiport export {key}"),
            "validate": measure([FIJIPORT, "validate", str(pkg)], label="fijiport validate"),
            "validate_runtimes": measure([FIJIPORT, "validate", str(pkg), "--runtimes"], label="fijiport validate --runtimes"),
        }
        scratch = Path(tempfile.mkdtemp(dir=work))
        r["bioimageio_test"] = measure(
            [str(VENV_BIN / "bioimageio"), "test", str(pkg)], cwd=scratch, env=keras3_env(), label="bioimageio test (baseline)"
        )
        base = r["bioimageio_test"]["seconds"]
        r["ratio_export_validate_vs_test"] = round((r["export"]["seconds"] + r["validate"]["seconds"]) / base, 2)
        r["ratio_export_validate_runtimes_vs_test"] = round((r["export"]["seconds"] + r["validate_runtimes"]["seconds"]) / base, 2)
        r["ratio_peak_rss_vs_test"] = round(
            max(r["export"]["peak_rss_mb"], r["validate"]["peak_rss_mb"]) / r["bioimageio_test"]["peak_rss_mb"], 2
        )
        results[key] = r
    return results


BASELINE = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tifffile
from csbdeep.data import PercentileNormalizer
from csbdeep.models import CARE
from fijiport.artifacts import ModelFolder
folder, image, out, tiles = sys.argv[1], sys.argv[2], sys.argv[3], tuple(int(t) for t in sys.argv[4].split(","))
f = ModelFolder.open(folder)
model = CARE(None, name=f.path.name, basedir=str(f.path.parent))
img = tifffile.imread(image)
y = model.predict(img, f.spatial_axes, normalizer=PercentileNormalizer(*f.percentiles), n_tiles=tiles)
tifffile.imwrite(out, y.astype(np.float32))
"""


INFERENCE_CASES = {"2048x2048": ("care2d", (2048, 2048), "YX"), "64x512x512": ("care3d", (64, 512, 512), "ZYX")}


def prepare_inference_inputs(models: dict[str, Path], work: Path) -> None:
    """The images (``in_<case>/image.tif``, seeded) and packages (``<model>.zip``) the inference sections use (setup,
    not measured); kept when they exist."""
    import tifffile
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    for case, (key, shape, _axes) in INFERENCE_CASES.items():
        img = (gaussian_filter(rng.random(shape).astype(np.float32), 2) * 1000 + rng.normal(100, 10, shape)).astype(np.float32)
        inp = work / f"in_{case}"
        inp.mkdir(exist_ok=True)
        if not (inp / "image.tif").exists():
            tifffile.imwrite(inp / "image.tif", img)
        pkg = work / f"{key}.zip"
        if not pkg.exists():
            measure([FIJIPORT, "export", str(models[key]), "-o", str(pkg)], label=f"(setup) export {key}")


def bench_inference(models: dict[str, Path], work: Path) -> dict:
    """Whole processes, once each (start-up included, as a user running one command sees it)."""
    import tifffile

    from fijiport.artifacts import ModelFolder
    from fijiport.tiling import auto_tiles

    prepare_inference_inputs(models, work)
    results = {}
    for case, (key, shape, axes) in INFERENCE_CASES.items():
        print(f"inference, whole processes: {case}")
        inp = work / f"in_{case}"
        img = tifffile.imread(inp / "image.tif")
        pkg = work / f"{key}.zip"
        tiles = auto_tiles(shape, axes)
        base_out = work / f"baseline_{case}.tif"
        r = {
            "tiles": list(tiles),
            "csbdeep": measure(
                [sys.executable, "-c", BASELINE, str(models[key]), str(inp / "image.tif"), str(base_out), ",".join(map(str, tiles))],
                label="csbdeep CARE.predict (baseline)",
            ),
            "fijiport_keras": measure(
                [FIJIPORT, "predict", str(models[key]), str(inp), "-o", str(work / f"keras_{case}"), "--overwrite"],
                label="fijiport predict (Keras, model folder)",
            ),
            "fijiport_onnx": measure(
                [FIJIPORT, "predict", str(pkg), str(inp), "-o", str(work / f"onnx_{case}"), "--overwrite"],
                label="fijiport predict (ONNX, package)",
            ),
        }
        megapixels = float(np.prod(shape)) / 1e6
        for k in ("csbdeep", "fijiport_keras", "fijiport_onnx"):
            r[k]["megapixels_per_s"] = round(megapixels / r[k]["seconds"], 3)
        r["ratio_keras_vs_csbdeep"] = round(r["fijiport_keras"]["megapixels_per_s"] / r["csbdeep"]["megapixels_per_s"], 2)
        r["ratio_onnx_vs_csbdeep"] = round(r["fijiport_onnx"]["megapixels_per_s"] / r["csbdeep"]["megapixels_per_s"], 2)
        r["ratio_onnx_peak_rss_vs_csbdeep"] = round(r["fijiport_onnx"]["peak_rss_mb"] / r["csbdeep"]["peak_rss_mb"], 2)
        base = tifffile.imread(base_out).astype(np.float64)
        keras = tifffile.imread(work / f"keras_{case}" / "image.tif").astype(np.float64)
        onnx = tifffile.imread(work / f"onnx_{case}" / "image.tif").astype(np.float64)
        lo, hi = np.percentile(img, ModelFolder.open(models[key]).percentiles)
        r["max_abs_diff_keras_vs_csbdeep"] = float(np.abs(keras - base).max())
        # the package returns the normalised output; csbdeep maps it back with the input's percentiles
        r["max_abs_diff_onnx_vs_csbdeep"] = float(np.abs(onnx * (hi - lo) + lo - base).max())
        r["output_range"] = float(base.max() - base.min())
        results[case] = r
    return results


def bench_steady(models: dict[str, Path], work: Path, threads: int, repeats: int) -> dict:
    """Steady state, start-up apart (bench/steady.py): csbdeep's ``CARE.predict`` vs fijiport's runner on the model
    folder (Keras) and on the package (ONNX), the same TIFF, tiles and thread settings, ``repeats`` rounds in
    rotating order; the images written by the last round are compared."""
    import tifffile

    from fijiport.predict.openvino import openvino_available
    from fijiport.tiling import auto_tiles

    results = {}
    for case, (key, shape, axes) in INFERENCE_CASES.items():
        print(f"steady-state inference: {case} ({repeats} rounds, {threads} threads)")
        image = work / f"in_{case}" / "image.tif"
        pkg = work / f"{key}.zip"
        tiles = list(auto_tiles(shape, axes))
        outs = {"csbdeep": work / f"steady_csbdeep_{case}.tif", "fijiport_keras": work / f"steady_keras_{case}",
                "fijiport_onnx": work / f"steady_onnx_{case}", "fijiport_openvino": work / f"steady_openvino_{case}"}  # fmt: skip
        common = {"image": str(image), "tiles": tiles}
        r = steady.compare(
            {
                "csbdeep": ("csbdeep", {**common, "model": str(models[key]), "out": str(outs["csbdeep"]), "label": "csbdeep CARE.predict (baseline)"}),
                "fijiport_keras": ("fijiport", {**common, "model": str(models[key]), "out": str(outs["fijiport_keras"]),
                                                "label": "fijiport predict runner (Keras, folder)"}),
                "fijiport_onnx": ("fijiport", {**common, "model": str(pkg), "out": str(outs["fijiport_onnx"]),
                                               "label": "fijiport predict runner (ONNX, package)"}),
                **({"fijiport_openvino": ("fijiport", {**common, "model": str(pkg), "out": str(outs["fijiport_openvino"]),
                                                       "weights": "openvino",
                                                       "label": "fijiport predict --weights openvino (package)"})}
                   if openvino_available() else {}),
            },
            threads,
            repeats,
        )  # fmt: skip
        base = tifffile.imread(outs["csbdeep"]).astype(np.float64)
        for k in [k for k in ("fijiport_keras", "fijiport_onnx", "fijiport_openvino") if k in r]:
            y = tifffile.imread(outs[k] / "image.tif").astype(np.float64)
            r[k]["max_abs_diff_vs_csbdeep"] = float(np.abs(y - base).max())
            r[k]["speed_vs_csbdeep_min"] = round(r["csbdeep"]["steady_seconds"]["min"] / r[k]["steady_seconds"]["min"], 2)
            r[k]["speed_vs_csbdeep_median"] = round(r["csbdeep"]["steady_seconds"]["median"] / r[k]["steady_seconds"]["median"], 2)
            r[k]["startup_vs_csbdeep"] = round(r[k]["startup_seconds"] / r["csbdeep"]["startup_seconds"], 2)
        r["output_range"] = float(base.max() - base.min())
        r["tiles"] = tiles
        results[case] = r
    return results


NETWORK_INPUTS = {"care2d": (1, 1024, 1024, 1), "care3d": (1, 32, 256, 256, 1)}


def bench_limit(models: dict[str, Path], work: Path, threads: int, repeats: int) -> dict:
    """How close to the machine's limit: each network's FLOPs (from its ONNX graph) on a fixed input, its steady-state
    time on TensorFlow (tf_keras, as csbdeep runs it), onnxruntime and OpenVINO (when installed), and the FP32 rate a
    large matrix product reaches in the same run."""
    import zipfile

    from fijiport.predict.openvino import openvino_available

    def matmul(label: str) -> dict:
        return steady.compare({"matmul": ("matmul", {"n": 4096, "label": label})}, threads, max(repeats, 5))["matmul"]

    print(f"attainable FP32 rate: 4096x4096 float32 matrix product ({threads} threads)")
    have_ov = openvino_available()
    out: dict = {"matmul": matmul("numpy float32 matmul 4096²"), "openvino": have_ov, "networks": {}}
    rng = np.random.default_rng(0)
    for key, shape in NETWORK_INPUTS.items():
        pkg = work / f"{key}.zip"
        onnx_path = work / f"{key}_weights.onnx"
        with zipfile.ZipFile(pkg) as zf:
            onnx_path.write_bytes(zf.read("weights.onnx"))
        x = rng.normal(0.3, 0.2, shape).astype(np.float32)
        np.save(work / f"{key}_net_in.npy", x)
        flops = steady.onnx_flops(onnx_path, x)
        print(f"network alone: {key} on {'×'.join(map(str, shape))} ({flops / 1e9:.1f} GFLOP per pass)")
        ref = work / f"{key}_net_tf_out.npy"
        spec = {"input": str(work / f"{key}_net_in.npy"), "model": str(models[key]), "onnx": str(onnx_path)}
        # TensorFlow first and alone: the others compare their output with the one it saves when it starts
        engines = {"tf": ("net_tf", {**spec, "save_output": str(ref), "label": "TensorFlow (tf_keras predict_on_batch)"})}
        r = steady.compare(engines, threads, repeats)
        more = {"onnxruntime": ("net_ort", {**spec, "reference": str(ref), "label": "onnxruntime (package's ONNX)"})}
        if have_ov:
            more["openvino"] = ("net_ov", {**spec, "reference": str(ref), "label": "OpenVINO (package's ONNX, FP32)"})
        r.update(steady.compare(more, threads, repeats))
        for v in r.values():
            v["gflops"] = steady.gflops(flops, v["steady_seconds"]["min"])
        out["networks"][key] = {"input": list(shape), "gflop_per_pass": round(flops / 1e9, 2), **r}
    # the matrix product once more after the networks: the attainable rate is the better of the two measurements,
    # so a busy moment during one of them cannot make the networks look faster than the machine
    out["matmul_after"] = matmul("numpy float32 matmul 4096² (again)")
    peak = max(m["flops"] / m["steady_seconds"]["min"] / 1e9 for m in (out["matmul"], out["matmul_after"]))
    out["attainable_gflops"] = round(peak, 1)
    for n in out["networks"].values():
        for v in n.values():
            if isinstance(v, dict) and "gflops" in v:
                v["fraction_of_attainable"] = round(v["gflops"] / peak, 2) if v["gflops"] else None
    return out


PATCH_SETTINGS = {"patch_size": (16, 64, 64), "n_per_image": 64, "percentiles": (1.0, 99.8), "seed": 0}

PATCHES_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
import tifffile
which, data, n_pairs, out = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = json.loads(sys.argv[5])
names = sorted(p.name for p in (data / "low").glob("*.tif"))[:n_pairs]
pairs = [(data / "low" / n, data / "GT" / n) for n in names]
np.random.seed(s["seed"])
if which == "csbdeep":
    from csbdeep.data import RawData, create_patches, no_background_patches, norm_percentiles
    def gen():
        for a, b in pairs:
            yield tifffile.imread(a), tifffile.imread(b), "ZYX", None
    X, Y, axes = create_patches(RawData(gen, len(pairs), str(data)), patch_size=tuple(s["patch_size"]),
                                n_patches_per_image=s["n_per_image"], verbose=False,
                                patch_filter=no_background_patches(threshold=0.4, percentile=99.9),
                                normalization=norm_percentiles(percentiles=tuple(s["percentiles"])))
else:
    from fijiport.data.patches import sample_care_patches
    X, Y, axes = sample_care_patches(pairs, "ZYX", s["patch_size"], s["n_per_image"], tuple(s["percentiles"]))
Path(out).write_text(json.dumps({"X": hashlib.sha256(X.tobytes()).hexdigest(), "Y": hashlib.sha256(Y.tobytes()).hexdigest(),
                                 "shape": list(X.shape), "patch_mb": round(2 * X.nbytes / 2**20, 1)}))
"""


def make_large_stacks(folder: Path, n_pairs: int, shape=(64, 1024, 1024)) -> float:
    """``n_pairs`` low/GT uint16 stacks (uncompressed, as microscopes write them): bright blobs on a noisy
    background. Returns the fraction of voxels the background filter lets csbdeep sample around."""
    import tifffile

    from fijiport.data.patches import foreground_mask

    rng = np.random.default_rng(0)
    (folder / "low").mkdir(parents=True, exist_ok=True)
    (folder / "GT").mkdir(exist_ok=True)
    fraction = 0.0
    for i in range(n_pairs):
        path_low, path_gt = folder / "low" / f"stack{i:02d}.tif", folder / "GT" / f"stack{i:02d}.tif"
        coarse = rng.random((shape[0] // 8, shape[1] // 32, shape[2] // 32)) > 0.85
        bright = coarse.repeat(8, 0).repeat(32, 1).repeat(32, 2).astype(np.uint16)
        gt = 100 + 800 * bright + rng.integers(0, 40, shape, dtype=np.uint16)
        if i == 0:
            fraction = float(foreground_mask(gt, PATCH_SETTINGS["patch_size"]).mean())
        if not path_gt.exists():
            tifffile.imwrite(path_gt, gt)
            tifffile.imwrite(path_low, (25 + 200 * bright + rng.integers(0, 80, shape, dtype=np.uint16)).astype(np.uint16))
        del gt, bright
    return fraction


def bench_patches(work: Path, n_pairs: int = 10, few: int = 3) -> dict:
    print(f"patch generation: {2 * n_pairs} stacks of 64x1024x1024 uint16")
    data = work / "large_stacks"
    eligible = make_large_stacks(data, n_pairs)
    settings = json.dumps(PATCH_SETTINGS)
    runs = {}
    for key, which, n in (("csbdeep", "csbdeep", n_pairs), ("fijiport", "fijiport", n_pairs), ("fijiport_few", "fijiport", few)):
        out = work / f"patches_{key}.json"
        runs[key] = measure(
            [sys.executable, "-c", PATCHES_SCRIPT, which, str(data), str(n), str(out), settings],
            label=f"{which} patches from {2 * n} stacks" + (" (baseline)" if which == "csbdeep" else ""),
        )
        runs[key].update(json.loads(out.read_text()))
    disk = sum(p.stat().st_size for p in data.rglob("*.tif"))
    return {
        "stacks": 2 * n_pairs,
        "few_stacks": 2 * few,
        "shape": [64, 1024, 1024],
        "data_gb": round(disk / 1e9, 2),
        "settings": PATCH_SETTINGS,
        "eligible_fraction": round(eligible, 3),
        **runs,
        "identical_patches": runs["csbdeep"]["X"] == runs["fijiport"]["X"] and runs["csbdeep"]["Y"] == runs["fijiport"]["Y"],
        "ratio_peak_rss_fijiport_vs_csbdeep": round(runs["fijiport"]["peak_rss_mb"] / runs["csbdeep"]["peak_rss_mb"], 2),
        "ratio_speed_fijiport_vs_csbdeep": round(runs["csbdeep"]["seconds"] / runs["fijiport"]["seconds"], 2),
        "fijiport_peak_without_patches_mb": {
            f"{2 * n_pairs} stacks": round(runs["fijiport"]["peak_rss_mb"] - runs["fijiport"]["patch_mb"]),
            f"{2 * few} stacks": round(runs["fijiport_few"]["peak_rss_mb"] - runs["fijiport_few"]["patch_mb"]),
        },
    }


PLAIN_CSBDEEP_TRAINING = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
from csbdeep.data import RawData, create_patches, no_background_patches, norm_percentiles
from csbdeep.models import CARE, Config
from csbdeep.utils import axes_dict
data, out, epochs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
raw = RawData.from_folder(basepath=data + "/train", source_dirs=["low"], target_dir="GT", axes="YX")
X, Y, axes = create_patches(raw, patch_size=(64, 64), n_patches_per_image=16, verbose=False,
                            patch_filter=no_background_patches(threshold=0.4, percentile=99.9),
                            normalization=norm_percentiles(percentiles=(1.0, 99.8)))
from csbdeep.utils import move_image_axes
X, Y = move_image_axes(X, axes, "SYXC"), move_image_axes(Y, axes, "SYXC")
n_val = max(1, int(round(0.1 * len(X))))
config = Config("YX", n_channel_in=1, n_channel_out=1, unet_n_depth=2, unet_kern_size=5, unet_n_first=16,
                train_epochs=epochs, train_steps_per_epoch=steps, train_batch_size=8, train_tensorboard=False)
model = CARE(config, name=os.path.basename(out), basedir=os.path.dirname(out))
import json, time
import numpy as np
from csbdeep.utils.tf import keras_import
Callback = keras_import("callbacks", "Callback")
class EpochTimer(Callback):  # the same measure fijiport records: seconds per epoch
    seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): EpochTimer.seconds.append(time.perf_counter() - self.t)
model.prepare_for_training()
model.callbacks.append(EpochTimer())
model.train(X[n_val:], Y[n_val:], validation_data=(X[:n_val], Y[:n_val]))
with open(os.path.join(out, "epoch_seconds.json"), "w") as fh:
    json.dump(EpochTimer.seconds, fh)
"""


def bench_training(work: Path) -> dict:
    """`fijiport train care` vs the plain csbdeep script a lab would write (same data, patches and network);
    end-to-end wall time, so patch sampling and start-up count on both sides."""
    print("training throughput: CARE 2D")
    epochs, steps = 6, 40
    data = work / "care2d_data"
    r = {
        "epochs": epochs,
        "steps_per_epoch": steps,
        "csbdeep": measure(
            [sys.executable, "-c", PLAIN_CSBDEEP_TRAINING, str(data), str(work / "plain_train"), str(epochs), str(steps)],
            label="plain csbdeep training (baseline)",
        ),
        "fijiport": measure(
            [
                FIJIPORT,
                "train",
                "care",
                str(data),
                "-o",
                str(work / "fijiport_train"),
                "--overwrite",
                "--epochs",
                str(epochs),
                "--steps-per-epoch",
                str(steps),
                "--batch-size",
                "8",
                "--patch-size",
                "64,64",
                "--patches-per-image",
                "16",
                "--unet-depth",
                "2",
                "--unet-kernel-size",
                "5",
                "--unet-first-filters",
                "16",
                "--validation-fraction",
                "0.1",
                "--percentile-low",
                "1",
                "--percentile-high",
                "99.8",
                "--no-tensorboard",
            ],
            label="fijiport train care",
        ),
    }
    r["ratio_end_to_end_fijiport_vs_csbdeep"] = round(r["csbdeep"]["seconds"] / r["fijiport"]["seconds"], 2)
    # training step throughput: steps per second over the epochs after the first (graph tracing), median
    plain = json.loads((work / "plain_train" / "epoch_seconds.json").read_text())[1:]
    ours = json.loads((work / "fijiport_train" / "fijiport_training.json").read_text())["epoch_seconds"][1:]
    r["csbdeep"]["steps_per_second"] = round(steps / float(np.median(plain)), 2)
    r["fijiport"]["steps_per_second"] = round(steps / float(np.median(ours)), 2)
    r["ratio_throughput_fijiport_vs_csbdeep"] = round(r["fijiport"]["steps_per_second"] / r["csbdeep"]["steps_per_second"], 2)
    return r


PLAIN_N2V_TRAINING = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
from pathlib import Path
import numpy as np
if not hasattr(np, "product"):
    np.product = np.prod  # n2v 0.3.3 on numpy 2
import tifffile
from n2v.internals.N2V_DataGenerator import N2V_DataGenerator
from n2v.models import N2V, N2VConfig
import n2v.models.n2v_standard as n2v_standard
from csbdeep.utils.tf import keras_import
Callback = keras_import("callbacks", "Callback")
class NoImages(Callback):  # n2v's train adds a TensorBoard image callback, which needs the tensorboard package
    def __init__(self, *args, **kwargs): super().__init__()
n2v_standard.CARETensorBoardImage = NoImages
data, out, epochs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
load = lambda split: [tifffile.imread(p).astype(np.float32)[None, ..., None] for p in sorted(Path(data, split, "images").glob("*.tif"))]
gen = N2V_DataGenerator()
X = gen.generate_patches_from_list(load("train"), shape=(64, 64), augment=True)
X_val = gen.generate_patches_from_list(load("validation"), shape=(64, 64), augment=False)
config = N2VConfig(X, unet_kern_size=3, unet_n_depth=2, unet_n_first=16, single_net_per_channel=False, train_epochs=epochs,
                   train_steps_per_epoch=steps, train_batch_size=64, train_tensorboard=False, n2v_perc_pix=0.198,
                   n2v_patch_shape=(64, 64), n2v_manipulator="uniform_withCP", n2v_neighborhood_radius=5)
model = N2V(config, os.path.basename(out), basedir=os.path.dirname(out))
import json, time
class EpochTimer(Callback):  # the same measure fijiport records: seconds per epoch
    seconds = []
    def on_epoch_begin(self, epoch, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None): EpochTimer.seconds.append(time.perf_counter() - self.t)
model.prepare_for_training()
model.callbacks.append(EpochTimer())
model.train(X, X_val)
with open(os.path.join(out, "epoch_seconds.json"), "w") as fh:
    json.dump(EpochTimer.seconds, fh)
"""


def bench_training_n2v(work: Path) -> dict:
    """`fijiport train n2v` vs the plain n2v script a lab would write (n2v's own ``train``: same data, patches, blind
    spot and network); steps per second after the first epoch, and end to end."""
    print("training throughput: N2V 2D")
    epochs, steps = 6, 30
    data = work / "n2v_data"
    r: dict = {
        "epochs": epochs,
        "steps_per_epoch": steps,
        "n2v": measure(
            [sys.executable, "-c", PLAIN_N2V_TRAINING, str(data), str(work / "plain_n2v"), str(epochs), str(steps)],
            label="plain n2v training (baseline)",
        ),
        "fijiport": measure(
            [FIJIPORT, "train", "n2v", str(data), "-o", str(work / "fijiport_n2v"), "--overwrite", "--epochs", str(epochs),
             "--steps-per-epoch", str(steps), "--batch-size", "64", "--patch-size", "64,64", "--unet-depth", "2",
             "--unet-kernel-size", "3", "--unet-first-filters", "16", "--no-tensorboard"],
            label="fijiport train n2v",
        ),
    }  # fmt: skip
    r["ratio_end_to_end_fijiport_vs_n2v"] = round(r["n2v"]["seconds"] / r["fijiport"]["seconds"], 2)
    plain = json.loads((work / "plain_n2v" / "epoch_seconds.json").read_text())[1:]
    ours = json.loads((work / "fijiport_n2v" / "fijiport_training.json").read_text())["epoch_seconds"][1:]
    r["n2v"]["steps_per_second"] = round(steps / float(np.median(plain)), 2)
    r["fijiport"]["steps_per_second"] = round(steps / float(np.median(ours)), 2)
    r["ratio_throughput_fijiport_vs_n2v"] = round(r["fijiport"]["steps_per_second"] / r["n2v"]["steps_per_second"], 2)
    return r


def environment() -> dict:
    import bioimageio.core
    import csbdeep
    import onnxruntime
    import stardist
    import tensorflow as tf

    import fijiport

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024**2, 1),
        "python": platform.python_version(),
        "fijiport": fijiport.__version__,
        "tensorflow": tf.__version__,
        "csbdeep": csbdeep.__version__,
        "stardist": stardist.__version__,
        "bioimageio.core": bioimageio.core.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def warm(e: dict) -> str:
    return f" (+{e['warmup_seconds']} warm-up)" if "warmup_seconds" in e else ""


def steady_markdown(report: dict) -> list[str]:
    lines: list[str] = []
    st = report.get("steady")
    if st:
        lines += [
            "",
            f"## Inference, steady state ({report['repeats']} rounds in rotating order, model loaded once; start-up apart)",
            "",
            "| image | engine | start-up s | steady s min / median | speed vs csbdeep (min / median) | peak tree MB | max \\|diff\\| vs csbdeep (output range) |",
            "|---|---|---|---|---|---|---|",
        ]
        for case, r in st.items():
            for k in [k for k in ("csbdeep", "fijiport_keras", "fijiport_onnx", "fijiport_openvino") if k in r]:
                e = r[k]
                speed = "1 (baseline)" if k == "csbdeep" else f"**{e['speed_vs_csbdeep_min']}** / {e['speed_vs_csbdeep_median']}"
                diff = "" if k == "csbdeep" else f"{e['max_abs_diff_vs_csbdeep']:.2g} ({r['output_range']:.3g})"
                lines.append(
                    f"| {case} | {e['label']} | {e['startup_seconds']}{warm(e)} | {e['steady_seconds']['min']} / "
                    f"{e['steady_seconds']['median']} | {speed} | {e['peak_tree_rss_mb']:.0f} | {diff} |"
                )
    lim = report.get("limit")
    if lim:
        lines += [
            "",
            f"## How close to the limit (network alone, fixed input; attainable FP32: **{lim['attainable_gflops']} GFLOP/s**,"
            " float32 4096² matmul before and after the networks, best round)",
            "",
            "| network | input | GFLOP per pass | engine | start-up s | steady s min / median | GFLOP/s | of attainable | max \\|diff\\| vs TF |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, n in lim["networks"].items():
            for eng in ("tf", "onnxruntime", "openvino"):
                if eng not in n:
                    continue
                e = n[eng]
                diff = e.get("max_abs_diff_vs_tf")
                lines.append(
                    f"| {key} | {'×'.join(map(str, n['input']))} | {n['gflop_per_pass']} | {e['label']} | {e['startup_seconds']}{warm(e)} | "
                    f"{e['steady_seconds']['min']} / {e['steady_seconds']['median']} | {e['gflops']} | "
                    f"**{e['fraction_of_attainable']:.0%}** | {'' if diff is None else f'{diff:.2g}'} |"
                )
        if not lim["openvino"]:
            lines += ["", "OpenVINO is not installed (`make bench` installs it; `pip install openvino`)."]
    return lines


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        "# fijiport benchmarks",
        "",
        f"{env['cpu']}, {env['cores']} cores, {env['memory_gb']} GB; "
        + ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("cpu", "cores", "memory_gb")),
    ]
    threads = report.get("threads")
    if threads:
        lines += ["", f"Every measured process ran with {threads} intra-op thread(s) (OMP/OpenBLAS/MKL/TF intra-op; TF inter-op 1).", ""]
    if "export_validate" in report:
        lines += [
            "",
            "## Export + validate vs `bioimageio test` alone (same zip)",
            "",
            "| model | export s | validate s | validate --runtimes s | bioimageio test s | (export+validate)/test | (export+validate --runtimes)/test | peak RSS ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for key, r in report.get("export_validate", {}).items():
        lines.append(
            f"| {key} | {r['export']['seconds']} | {r['validate']['seconds']} | {r['validate_runtimes']['seconds']} | "
            f"{r['bioimageio_test']['seconds']} | **{r['ratio_export_validate_vs_test']}** | "
            f"{r['ratio_export_validate_runtimes_vs_test']} | {r['ratio_peak_rss_vs_test']} |"
        )
    if "inference" in report:
        lines += [
            "",
            "## Inference, whole processes once each (tiled as `fijiport predict` chooses; start-up included)",
            "",
            "| image | tiles | csbdeep MP/s | fijiport Keras MP/s | fijiport ONNX MP/s | ONNX / csbdeep | Keras / csbdeep | "
            "peak RSS MB csbdeep / Keras / ONNX | max \\|diff\\| Keras, ONNX (output range) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for case, r in report.get("inference", {}).items():
        lines.append(
            f"| {case} | {'×'.join(map(str, r['tiles']))} | {r['csbdeep']['megapixels_per_s']} | "
            f"{r['fijiport_keras']['megapixels_per_s']} | {r['fijiport_onnx']['megapixels_per_s']} | "
            f"**{r['ratio_onnx_vs_csbdeep']}** | {r['ratio_keras_vs_csbdeep']} | {r['csbdeep']['peak_rss_mb']:.0f} / "
            f"{r['fijiport_keras']['peak_rss_mb']:.0f} / {r['fijiport_onnx']['peak_rss_mb']:.0f} | "
            f"{r['max_abs_diff_keras_vs_csbdeep']:.2g}, {r['max_abs_diff_onnx_vs_csbdeep']:.2g} ({r['output_range']:.3g}) |"
        )
    lines += steady_markdown(report)
    t = report.get("training")
    if t:
        lines += [
            "",
            f"## Training, CARE 2D ({t['epochs']} epochs × {t['steps_per_epoch']} steps)",
            "",
            "| | plain csbdeep | fijiport | fijiport / csbdeep |",
            "|---|---|---|---|",
            f"| training steps per second (epochs 2+, median) | {t['csbdeep']['steps_per_second']} | {t['fijiport']['steps_per_second']} | "
            f"**{t['ratio_throughput_fijiport_vs_csbdeep']}** |",
            f"| end to end s (start-up, patches, training, records) | {t['csbdeep']['seconds']} | {t['fijiport']['seconds']} | "
            f"{t['ratio_end_to_end_fijiport_vs_csbdeep']} (speed) |",
            f"| peak RSS MB | {t['csbdeep']['peak_rss_mb']:.0f} | {t['fijiport']['peak_rss_mb']:.0f} | |",
        ]
    n = report.get("training_n2v")
    if n:
        lines += [
            "",
            f"## Training, N2V 2D ({n['epochs']} epochs × {n['steps_per_epoch']} steps, batch 64 of 64×64)",
            "",
            "| | plain n2v (`N2V.train`) | fijiport | fijiport / n2v |",
            "|---|---|---|---|",
            f"| training steps per second (epochs 2+, median) | {n['n2v']['steps_per_second']} | {n['fijiport']['steps_per_second']} | "
            f"**{n['ratio_throughput_fijiport_vs_n2v']}** |",
            f"| end to end s (start-up, patches, training, records) | {n['n2v']['seconds']} | {n['fijiport']['seconds']} | "
            f"{n['ratio_end_to_end_fijiport_vs_n2v']} (speed) |",
            f"| peak RSS MB | {n['n2v']['peak_rss_mb']:.0f} | {n['fijiport']['peak_rss_mb']:.0f} | |",
        ]
    p = report.get("patches")
    if p:
        lines += [
            "",
            f"## CARE patch generation: {p['stacks']} stacks of {'×'.join(map(str, p['shape']))} uint16 ({p['data_gb']} GB), "
            f"{p['settings']['n_per_image']} patches of {'×'.join(map(str, p['settings']['patch_size']))} per pair "
            f"({p['eligible_fraction']:.0%} of voxels eligible)",
            "",
            f"| | csbdeep create_patches | fijiport | fijiport, {p['few_stacks']} stacks |",
            "|---|---|---|---|",
            f"| seconds | {p['csbdeep']['seconds']} | {p['fijiport']['seconds']} | {p['fijiport_few']['seconds']} |",
            f"| peak RSS MB | {p['csbdeep']['peak_rss_mb']:.0f} | {p['fijiport']['peak_rss_mb']:.0f} | {p['fijiport_few']['peak_rss_mb']:.0f} |",
            f"| of which the patches MB | {p['csbdeep']['patch_mb']} | {p['fijiport']['patch_mb']} | {p['fijiport_few']['patch_mb']} |",
            "",
            f"Peak RSS fijiport / csbdeep **{p['ratio_peak_rss_fijiport_vs_csbdeep']}**, speed fijiport / csbdeep "
            f"**{p['ratio_speed_fijiport_vs_csbdeep']}**, identical patches: **{p['identical_patches']}**.",
            "",
        ]
    return "\n".join(lines)


SECTIONS = ("export_validate", "inference", "steady", "limit", "training", "training_n2v", "patches")


def main() -> int:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--work", type=Path, default=None, help="keep models and images here (default: a temp folder)")
    parser.add_argument("--threads", type=int, default=THREADS, help="intra-op threads of every measured process (default: all cores)")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state repetitions per engine (at least 3)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections to run ({', '.join(SECTIONS)})")
    args = parser.parse_args()
    THREADS = args.threads
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or args.repeats < 3:
        parser.error(f"unknown section(s) {unknown}" if unknown else "--repeats must be at least 3 (min and median need them)")
    work = args.work or Path(tempfile.mkdtemp(prefix="fijiport-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if all((work / k).is_dir() for k in ("care2d", "care3d", "stardist2d")):
        print(f"reusing the benchmark models in {work}", flush=True)
        models = {k: work / k for k in ("care2d", "care3d", "stardist2d")}
    else:
        print(f"training the benchmark models in {work} (setup, not measured)", flush=True)
        models = train_models(work)
    report: dict = {"environment": environment(), "threads": THREADS, "repeats": args.repeats, "sections": only}
    steps = {
        "export_validate": lambda: bench_export_validate(models, work),
        "inference": lambda: bench_inference(models, work),
        "steady": lambda: bench_steady(models, work, THREADS, args.repeats),
        "limit": lambda: bench_limit(models, work, THREADS, args.repeats),
        "training": lambda: bench_training(work),
        "training_n2v": lambda: bench_training_n2v(work),
        "patches": lambda: bench_patches(work),
    }
    for key in SECTIONS:
        if key in only:
            if key in ("steady", "limit"):
                prepare_inference_inputs(models, work)
            report[key] = steps[key]()
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "bench.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'} ({report['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
