"""Simulated low-light acquisitions of images that ship inside installed packages (no downloads).

A clean image stands in for the high-laser-power ground truth; the low-power acquisition is the
same scene imaged with few photons: Poisson shot noise at ``photons`` counts for the brightest
pixel, a camera offset, and Gaussian read noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def simulate_low_snr(
    clean: np.ndarray,
    rng: np.random.Generator,
    photons: float = 15.0,
    read_noise: float = 3.0,
    offset: float = 100.0,
    background: float = 1.0,
) -> np.ndarray:
    """A uint16 low-light acquisition of ``clean`` (any numeric dtype, any shape)."""
    x = clean.astype(np.float64)
    lo, hi = np.percentile(x, 0.1), np.percentile(x, 99.9)
    scaled = np.clip((x - lo) / max(hi - lo, 1e-12), 0, None)
    counts = rng.poisson(scaled * photons + background).astype(np.float64)
    signal = counts * 10.0 + offset + rng.normal(0.0, read_noise, size=x.shape)
    return np.clip(np.round(signal), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def nuclei_2d() -> np.ndarray:
    """stardist's bundled 512×512 uint16 nuclei image."""
    from stardist.data import test_image_nuclei_2d

    return np.asarray(test_image_nuclei_2d())


def nuclei_3d() -> np.ndarray:
    """stardist's bundled 31×61×57 nuclei stack."""
    from stardist.data import test_image_nuclei_3d

    return np.asarray(test_image_nuclei_3d())


def crops(image: np.ndarray, size: tuple[int, ...], n_per_axis: tuple[int, ...]) -> list[np.ndarray]:
    """Crops of ``size`` spread evenly over ``image`` (a grid of ``n_per_axis`` crops)."""
    starts = [np.linspace(0, s - c, n).astype(int) for s, c, n in zip(image.shape, size, n_per_axis)]
    grid = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, image.ndim)
    return [image[tuple(slice(o, o + c) for o, c in zip(origin, size))].copy() for origin in grid]


def write_care_pairs(out_dir: Path, *, dims: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """Write ``out_dir/low`` and ``out_dir/GT`` with paired TIFFs: crops of stardist's bundled nuclei image as the GT
    and simulated low-light acquisitions of them (Poisson noise at ~15 photons, offset and read noise) as inputs.

    Parameters
    ----------
    out_dir
        The folder to write into (created).
    dims
        2 (nine 160×160 crops of ``test_image_nuclei_2d``) or 3 (eight 16×48×48 crops of ``test_image_nuclei_3d``).
    seed
        Seeds the simulated noise.

    Returns
    -------
    tuple[Path, Path]
        The ``low`` and ``GT`` folders.
    """
    import tifffile

    rng = np.random.default_rng(seed)
    if dims == 2:
        clean = crops(nuclei_2d(), (160, 160), (3, 3))
    else:
        clean = crops(nuclei_3d(), (16, 48, 48), (2, 2, 2))
    low_dir, gt_dir = Path(out_dir) / "low", Path(out_dir) / "GT"
    low_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    for i, gt in enumerate(clean):
        name = f"nuclei_{i:02d}.tif"
        tifffile.imwrite(gt_dir / name, gt.astype(np.uint16))
        tifffile.imwrite(low_dir / name, simulate_low_snr(gt, rng))
    return low_dir, gt_dir


def write_noisy_images(out_dir: Path, *, dims: int = 2, seed: int = 0, n: int = 6) -> tuple[Path, Path]:
    """Write ``out_dir/noisy`` (simulated low-light acquisitions, what Noise2Void trains on) and ``out_dir/clean`` (the
    scenes they image, for QC only) as TIFFs with the same names, at most 9 (2D) or 8 (3D).

    Parameters
    ----------
    out_dir
        The folder to write into (created).
    dims
        2 (128×128 crops of stardist's 2D nuclei image) or 3 (crops of its 3D stack).
    seed
        Seeds the simulated noise.
    n
        How many images.

    Returns
    -------
    tuple[Path, Path]
        The ``noisy`` and ``clean`` folders.
    """
    import tifffile

    rng = np.random.default_rng(seed)
    if dims == 2:
        clean = crops(nuclei_2d(), (128, 128), (3, 3))[:n]
    else:
        clean = crops(nuclei_3d(), (16, 48, 48), (2, 2, 2))[:n]
    noisy_dir, clean_dir = Path(out_dir) / "noisy", Path(out_dir) / "clean"
    noisy_dir.mkdir(parents=True, exist_ok=True)
    clean_dir.mkdir(parents=True, exist_ok=True)
    for i, scene in enumerate(clean):
        name = f"nuclei_{i:02d}.tif"
        tifffile.imwrite(clean_dir / name, scene.astype(np.uint16))
        tifffile.imwrite(noisy_dir / name, simulate_low_snr(scene, rng, photons=30.0))
    return noisy_dir, clean_dir
