"""Peak memory of ``fijiport predict`` on a large time-lapse: the whole process tree sampled (psutil) while a CARE 2D
model restores a T×Y×X ImageJ TIFF (uncompressed: read memory-mapped) and the same frames as an OME-Zarr, frame by
frame. The claim measured: memory follows a frame (or a tile of it), not the file.

    .venv/bin/python bench/timelapse_memory.py --work /dev/shm/tl --frames 256 --height 2048 --width 4096

(256 × 2048 × 4096 uint16 = 4.3 GB in; the float32 output is twice that, so the work folder needs ~13 GB; a tmpfs such
as /dev/shm keeps the disk out of the figure.) The network is a csbdeep CARE 2D net with random weights (8 first
filters): its speed is not what is measured. Prints one JSON line per input format and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from steady import tree_rss_mb


def make_model(path: Path) -> None:
    from csbdeep.models import CARE, Config

    config = Config("YX", n_channel_in=1, n_channel_out=1, unet_n_depth=2, unet_n_first=8, train_tensorboard=False)
    model = CARE(config, path.name, basedir=str(path.parent))
    model.keras_model.save_weights(str(path / "weights_best.h5"))


def frames(n: int, shape: tuple[int, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(100, 4000, size=shape, dtype=np.uint16)
    for t in range(n):
        yield np.roll(base, t, axis=1)


def write_inputs(work: Path, n: int, shape: tuple[int, int], zarr_too: bool, tiff_too: bool = True) -> list[Path]:
    import tifffile

    out = []
    if tiff_too:
        out.append(work / "movie.tif")
        tifffile.imwrite(out[0], frames(n, shape), shape=(n, *shape), dtype=np.uint16, imagej=True, metadata={"axes": "TYX"})
    if zarr_too:
        import zarr

        root = zarr.open_group(str(work / "movie.ome.zarr"), mode="w", zarr_format=2)
        arr = root.create_array("0", shape=(n, *shape), dtype=np.uint16, chunks=(1, 1024, 1024), compressors=None)
        for t, f in enumerate(frames(n, shape)):
            arr[t] = f
        axes = [{"name": "t", "type": "time"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
        root.attrs["multiscales"] = [
            {
                "version": "0.4",
                "axes": axes,
                "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}],
            }
        ]
        out.append(work / "movie.ome.zarr")
    return out


def anon_mb(pid: int) -> float:
    """Private anonymous memory (``RssAnon``) of ``pid`` and its descendants (MB): what the processes allocated, without
    the pages of memory-mapped files (a tmpfs input counts in RSS as shared memory the process does not own)."""
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("RssAnon:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total / 2**20


def measure(model: Path, image: Path, out_dir: Path, interval: float = 0.5) -> dict:
    import tempfile

    started = time.perf_counter()
    cmd = [str(Path(sys.executable).parent / "fijiport"), "predict", str(model), str(image), "-o", str(out_dir)]
    with tempfile.TemporaryFile() as log:  # a pipe nobody reads while it runs would fill and block the child
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        peak = peak_anon = 0.0
        while proc.poll() is None:
            peak, peak_anon = max(peak, tree_rss_mb(proc.pid)), max(peak_anon, anon_mb(proc.pid))
            time.sleep(interval)
        log.seek(0)
        err = log.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"predict failed ({proc.returncode}): {err[-2000:]}")
    size = sum(p.stat().st_size for p in image.rglob("*")) if image.is_dir() else image.stat().st_size
    return {
        "input": image.name,
        "input_gb": round(size / 1e9, 2),
        "peak_tree_rss_mb": round(peak),
        "peak_tree_anon_mb": round(peak_anon),
        "seconds": round(time.perf_counter() - started),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--height", type=int, default=2048)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--no-zarr", action="store_true")
    ap.add_argument("--no-tiff", action="store_true", help="measure the OME-Zarr input only")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "timelapse_memory.json")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    make_model(args.work / "model")
    existing = args.work / "movie.tif"
    if args.no_zarr and existing.is_file() and existing.stat().st_size >= args.frames * args.height * args.width * 2:
        images = [existing]  # written by an earlier run with the same size
    else:
        images = write_inputs(args.work, args.frames, (args.height, args.width), not args.no_zarr, not args.no_tiff)
    results = []
    for image in images:
        out_dir = args.work / f"out_{image.name}"
        r = measure(args.work / "model", image, out_dir)
        r["frame_mb"] = round(args.height * args.width * 4 / 2**20)
        print(json.dumps(r), flush=True)
        results.append(r)
        shutil.rmtree(out_dir, ignore_errors=True)  # the next run needs the room
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
