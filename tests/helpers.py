"""Helpers shared by the tests (not fixtures)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (to prove inputs are untouched)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def run_official_bioimageio_test(package: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The official `bioimageio test` CLI, in the Keras 3 world, in a scratch directory."""
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    exe = Path(sys.executable).with_name("bioimageio")
    return subprocess.run([str(exe), "test", str(package)], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def read_rdf(package: Path) -> dict:
    import zipfile

    import yaml

    with zipfile.ZipFile(package) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


IJ_JAR = Path("/usr/share/java/ij.jar")


def run_imagej_macro(macro: Path, argument: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """A macro in real ImageJ 1.x (Debian's `imagej`) in batch mode under Xvfb. A macro error opens a
    dialog that nobody closes, so a hang past ``timeout`` fails the test with what was printed."""
    import shutil

    import pytest

    if not IJ_JAR.is_file() or shutil.which("xvfb-run") is None:
        pytest.fail("ImageJ (Debian package imagej) and xvfb are needed: run `make runtimes`")
    proc = subprocess.Popen(
        ["xvfb-run", "-a", "java", "-jar", str(IJ_JAR), "-batch", str(macro), argument],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # java and Xvfb too
        stdout, stderr = proc.communicate()
        pytest.fail(f"{Path(macro).name} did not finish in {timeout} s (a macro error dialog?); printed: {stdout[-2000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def two_channel_pairs(root: Path, n: int = 4, **imwrite) -> tuple[Path, Path]:
    """Pairs of 2-channel ``CYX`` ImageJ hyperstacks (as Fiji saves them) from the demo's simulated acquisitions:
    channel 0 and 1 are two fields of the same sample."""
    import numpy as np
    import tifffile

    from fijiport.data.synthetic import write_care_pairs

    raw_low, raw_gt = write_care_pairs(root / "raw", dims=2, seed=0)
    names = sorted(p.name for p in raw_low.iterdir())
    low, gt = root / "low", root / "GT"
    low.mkdir()
    gt.mkdir()
    kw = imwrite or {"imagej": True, "metadata": {"axes": "CYX"}}
    for i in range(n):
        for src, dest in ((raw_low, low), (raw_gt, gt)):
            stack = np.stack([tifffile.imread(src / names[i]), tifffile.imread(src / names[i + 1])])
            tifffile.imwrite(dest / f"f{i}.tif", stack, **kw)
    return low, gt


def related_pair(rng, shape, dtype="uint16"):
    """A (low, GT) pair that is one: GT a smooth random field, low the same field with noise added (``prepare care``
    checks pairs; two independent noise images are refused as unrelated)."""
    import numpy as np
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.random(shape), 2.0)
    field = (field - field.min()) / (np.ptp(field) or 1.0)
    gt = 100 + 900 * field
    low = gt + rng.normal(0, 150, shape)
    if np.dtype(dtype).kind == "f":
        return (low / 1000).astype(dtype), (gt / 1000).astype(dtype)
    return np.clip(low, 0, None).astype(dtype), gt.astype(dtype)


LIGHTSHEET_PAIR_BY = r"_ch(?P<channel>\d+)_stack(?P<stack>\d+)_.*_(?P<x>\d+)x_(?P<y>\d+)y_(?P<z>\d+)z_"
"""Pairs :func:`lightsheet_tree`'s files by channel, stack and position, ignoring laser power and time stamps."""


def lightsheet_name(power: str, channel: int, stack: int, pos: int, msec_abs: int) -> str:
    """A file name as the light-sheet microscopes of the CARE paper's lab write them, e.g.
    ``488-20_560-10_her_CamA_ch0_stack0000_488nm_0000000msec_002277875msecAbs_01x_01y_01z_00000.tif``."""
    nm = (488, 560, 640)[channel]
    return (
        f"{power}_her_CamA_ch{channel}_stack{stack:04d}_{nm}nm_{stack * 30000:07d}msec_{msec_abs:09d}msecAbs_"
        f"{pos:02d}x_01y_01z_{stack:05d}.tif"
    )


LIGHTSHEET_TIME_LAPSE = dict(imagej=True, resolution=(1 / 0.406, 1 / 0.406), metadata={"axes": "TYX", "unit": "micron", "finterval": 30.0})
"""``lightsheet_tree(..., **LIGHTSHEET_TIME_LAPSE)``: each file a calibrated ImageJ time-lapse (0.406 µm pixels, a frame every 30 s)."""


def lightsheet_tree(root, shape=(48, 48), stacks=3, positions=2, channels=2, seed=0, **imwrite):
    """A nested acquisition tree as a light-sheet lab's microscope leaves it: ``root/low`` at low laser power
    (``488-20_560-10``) and ``root/GT`` at high power (``488-100_560-50``), each in folders by date / sample /
    position / channel, every stack of every channel and position a file whose name differs between low and GT by the
    laser power and the time stamps. Returns ``(low_dir, gt_dir, pairs)`` with ``pairs`` the (low, GT) paths that
    belong together. Images are related pairs (GT smooth, low noisy), so the pair checks pass."""
    import numpy as np
    import tifffile

    rng = np.random.default_rng(seed)
    low_dir, gt_dir = Path(root) / "low", Path(root) / "GT"
    pairs = []
    t = 2277875
    for pos in range(1, positions + 1):
        for ch in range(channels):
            for stack in range(stacks):
                low, gt = related_pair(rng, shape)
                folder = Path("2026-03-14") / "embryo1" / f"pos{pos:02d}" / f"ch{ch}"
                paths = []
                for base, power, img, offset in ((low_dir, "488-20_560-10", low, 0), (gt_dir, "488-100_560-50", gt, 3435)):
                    path = base / folder / lightsheet_name(power, ch, stack, pos, t + offset)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tifffile.imwrite(path, img, **imwrite)
                    paths.append(path)
                pairs.append(tuple(paths))
                t += 61234
    return low_dir, gt_dir, pairs


def imagej_calibrated(path, img, xy_um, z_um=None, unit="micron", axes=None, finterval=None):
    """A TIFF as Fiji saves a calibrated image: resolution tags in pixels per unit, unit and Z step in the description."""
    import tifffile

    meta = {"unit": unit, "axes": axes or ("ZYX" if img.ndim == 3 else "YX")}
    if z_um is not None:
        meta["spacing"] = z_um
    if finterval is not None:
        meta["finterval"] = finterval
    tifffile.imwrite(path, img, imagej=True, resolution=(1 / xy_um, 1 / xy_um), metadata=meta)


def blobs_3d(seed: int, shape=(32, 64, 64), n: int = 14):
    """A 3D image of ``n`` separate, slightly flattened ellipsoids (radius 4-7 px, Z squeezed to 0.8) on a noisy
    background, and their label image: star-convex objects a small StarDist 3D network learns in a few hundred steps
    (stardist's real nuclei stack takes a bigger network several times as long to leave the loss plateau)."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    zz, yy, xx = np.indices(shape)
    for _ in range(200):
        r = rng.uniform(4, 7)
        c = [rng.uniform(r, s - r) for s in shape]
        ball = ((zz - c[0]) / (r * 0.8)) ** 2 + ((yy - c[1]) / r) ** 2 + ((xx - c[2]) / r) ** 2 <= 1
        if labels[ball].any():
            continue
        labels[ball] = labels.max() + 1
        if labels.max() == n:
            break
    signal = ndimage.gaussian_filter((labels > 0).astype(np.float32) * rng.uniform(0.6, 1.0), 1.0)
    return ((signal + rng.normal(0, 0.05, shape)) * 1000 + 100).astype(np.float32), labels


def csbdeep_patches(images, axes: str, patch_size, n: int, seed: int, percentiles=(2.0, 99.8)):
    """The reference for fijiport's patch sampler: csbdeep's ``create_patches`` on ``images`` ((source, target)
    arrays, in this order) with its background filter and percentile normalisation, ``np.random`` seeded."""
    import numpy as np
    from csbdeep.data import RawData, create_patches, no_background_patches, norm_percentiles

    def gen():
        for x, y in images:
            yield x, y, axes, None

    np.random.seed(seed)
    return create_patches(
        RawData(gen, len(images), "test"),
        patch_size=patch_size,
        n_patches_per_image=n,
        patch_filter=no_background_patches(threshold=0.4, percentile=99.9),
        normalization=norm_percentiles(percentiles=percentiles),
        verbose=False,
    )
