"""How far each output pixel sees: the halo that tiled prediction must crop."""

from __future__ import annotations


def package_halo(depth: int, kernel_size: int, pool: int = 2) -> int:
    """The U-Net halo rounded up so that ``2 * halo`` is a multiple of ``pool**depth``.

    Consumers pad each tile by the halo on both sides; the padded tile must stay divisible by
    what the network needs, or the skip connections no longer line up.
    """
    half_block = max(1, pool**depth // 2)
    return -(-unet_halo(depth, kernel_size, pool) // half_block) * half_block


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
