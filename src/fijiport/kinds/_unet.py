"""How far each output pixel of csbdeep's U-Net sees: the halo that tiled prediction must crop, and the
input sizes a package accepts. Shared by the kinds built on that U-Net (CARE, StarDist, N2V)."""

from __future__ import annotations


def round_halo(halo: int, div_by: int) -> int:
    """``halo`` rounded up so that ``2 * halo`` is a multiple of ``div_by``.

    Consumers pad each tile by the halo on both sides; the padded tile must stay divisible by
    what the network needs, or the skip connections no longer line up.
    """
    half_block = max(1, div_by // 2)
    return int(-(-int(halo) // half_block) * half_block)


def min_input_size(halo: int, div_by: int) -> int:
    """The smallest valid input size above ``2 * halo`` (the spec requires outputs larger than their halos)."""
    return int(div_by * -(-(2 * halo + 1) // div_by))


def package_halo(depth: int, kernel_size: int, pool: int = 2) -> int:
    """The U-Net halo rounded for tiling (see :func:`round_halo`)."""
    return round_halo(unet_halo(depth, kernel_size, pool), pool**depth)


def unet_halo(depth: int, kernel_size: int, pool: int = 2) -> int:
    """Halo (per side) of csbdeep's U-Net (two convolutions per level).

    csbdeep tabulates measured receptive fields (``tile_overlap``); for settings outside its table
    this falls back to the analytic half receptive field of the deepest path, rounded up.
    """
    from csbdeep.internals.predict import tile_overlap

    try:
        return int(tile_overlap(depth, kernel_size, pool))
    except ValueError:
        half_k = (kernel_size - 1) // 2
        convs = sum(4 * half_k * pool**d for d in range(depth)) + 2 * half_k * pool**depth
        pools = sum((pool - 1) * pool**d for d in range(depth))
        return int(convs + (pools + 1) // 2)
