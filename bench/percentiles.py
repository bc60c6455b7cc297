"""Normalisation percentiles of a volume too large to hold (issue 16): ``fijiport.percentiles.exact_percentiles`` over
a Zarr array's chunks (Dask threads, and a 2-worker ``dask.distributed`` LocalCluster) against ``np.percentile`` on
the whole volume read into memory (the single-process baseline), and ``dask.array.percentile`` (approximate) for
reference. Each method runs in a fresh process, ``--repeats`` times, in alternating order; the parent samples the
process tree's resident memory (psutil); the child times the computation alone (imports, the Zarr open and the
cluster's start-up are timed apart). The values are checked against the baseline's, bit for bit.

    .venv/bin/python bench/percentiles.py --work /dev/shm/pct --shape 128,1024,1024 --out bench/results/percentiles.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from steady import tree_rss_mb

PERCENTILES = [2.0, 99.8]
METHODS = ("numpy whole volume", "exact, dask threads", "exact, 2-worker cluster", "dask.array.percentile")


def make_store(path: Path, shape: tuple[int, ...], chunk: tuple[int, ...]) -> None:
    import zarr

    z = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunk, dtype="uint16", zarr_format=2)
    rng = np.random.default_rng(0)
    for k in range(0, shape[0], chunk[0]):
        n = min(chunk[0], shape[0] - k)
        z[k : k + n] = (100 + rng.poisson(20, (n, *shape[1:])) * 15 + (k * 7) % 3000).astype(np.uint16)


def one(method: str, store: Path) -> dict:
    started = time.perf_counter()
    import dask
    import dask.array as da
    import zarr

    from fijiport.percentiles import exact_percentiles

    arr = da.from_zarr(zarr.open_array(str(store), mode="r"))
    client = None
    if method == "exact, 2-worker cluster":
        from distributed import Client, LocalCluster

        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None))
    startup = time.perf_counter() - started
    t = time.perf_counter()
    if method == "numpy whole volume":
        x = np.asarray(zarr.open_array(str(store), mode="r")[:]).astype(np.float32)
        values = [float(np.percentile(x, p)) for p in PERCENTILES]
    elif method == "dask.array.percentile":
        with dask.config.set(scheduler="threads"):
            values = [float(v) for v in da.percentile(arr.astype(np.float32).ravel(), PERCENTILES).compute()]
    elif client is None:
        with dask.config.set(scheduler="threads"):
            values = [float(v) for v in exact_percentiles(arr, PERCENTILES)]
    else:
        values = [float(v) for v in exact_percentiles(arr, PERCENTILES)]
    seconds = time.perf_counter() - t
    if client is not None:
        client.close()
    return {"seconds": seconds, "startup_seconds": startup, "values": values}


def measure(method: str, store: Path) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--one", method, "--store", str(store)], stdout=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{method} failed ({proc.returncode})")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_rss_mb": peak[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/dev/shm/fijiport-percentiles"))
    ap.add_argument("--shape", default="128,1024,1024")
    ap.add_argument("--chunk", default="8,512,512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--one")
    ap.add_argument("--store", type=Path)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.store)))
        return
    shape, chunk = tuple(int(s) for s in args.shape.split(",")), tuple(int(s) for s in args.chunk.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "volume.zarr"
    try:
        make_store(store, shape, chunk)
        runs: dict[str, list[dict]] = {m: [] for m in METHODS}
        for r in range(args.repeats):
            for method in METHODS if r % 2 == 0 else METHODS[::-1]:
                runs[method].append(measure(method, store))
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    base = runs[METHODS[0]]
    base_s, base_mb = statistics.median(x["seconds"] for x in base), statistics.median(x["peak_rss_mb"] for x in base)
    report = {
        "volume": {"shape": list(shape), "chunks": list(chunk), "dtype": "uint16", "MB": round(np.prod(shape) * 2 / 2**20)},
        "percentiles": PERCENTILES,
        "repeats": args.repeats,
        "methods": {},
    }
    for method, xs in runs.items():
        secs = [x["seconds"] for x in xs]
        report["methods"][method] = {
            "seconds_min": round(min(secs), 3),
            "seconds_median": round(statistics.median(secs), 3),
            "startup_seconds_median": round(statistics.median(x["startup_seconds"] for x in xs), 3),
            "peak_rss_mb_median": round(statistics.median(x["peak_rss_mb"] for x in xs)),
            "time_vs_numpy": round(statistics.median(secs) / base_s, 2),
            "memory_vs_numpy": round(statistics.median(x["peak_rss_mb"] for x in xs) / base_mb, 2),
            "equal_to_numpy_bit_for_bit": all(
                np.float32(a).tobytes() == np.float32(b).tobytes() for a, b in zip(xs[0]["values"], base[0]["values"])
            ),
            "values": xs[0]["values"],
        }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
