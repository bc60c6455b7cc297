import numpy as np
import pytest

from fijiport.kinds._unet import package_halo, unet_halo
from fijiport.normalize import scale_range


def test_scale_range_matches_bioimageio_core():
    """Test outputs reproduce in `bioimageio test` only if our normalisation is the spec op's."""
    import xarray as xr
    from bioimageio.core import Sample, Tensor
    from bioimageio.core.proc_ops import ScaleRange
    from bioimageio.core.stat_calculators import compute_measures
    from bioimageio.spec.model import v0_5

    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 100.0, size=(1, 40, 30, 1)).astype(np.float32)
    descr = v0_5.ScaleRangeDescr(
        kwargs=v0_5.ScaleRangeKwargs(axes=[v0_5.AxisId("y"), v0_5.AxisId("x")], min_percentile=2.0, max_percentile=99.8)
    )
    op = ScaleRange.from_proc_descr(descr, v0_5.TensorId("input"))
    tensor = Tensor.from_xarray(xr.DataArray(x, dims=("batch", "y", "x", "channel")))
    sample = Sample(members={"input": tensor}, stat={}, id="s")
    sample.stat = compute_measures(op.required_measures, [sample])
    op(sample)
    theirs = sample.members["input"].data.to_numpy()
    ours = scale_range(x, (1, 2), 2.0, 99.8)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("depth,kern,expected", [(2, 3, 22), (2, 5, 43), (1, 3, 9), (3, 3, 46)])
def test_unet_halo_uses_csbdeep_measured_table(depth, kern, expected):
    assert unet_halo(depth, kern) == expected


@pytest.mark.parametrize("depth,kern", [(1, 3), (2, 3), (2, 5), (3, 7), (4, 5), (2, 9)])
def test_package_halo_keeps_padded_tiles_divisible(depth, kern):
    halo = package_halo(depth, kern)
    assert halo >= unet_halo(depth, kern)
    assert (2 * halo) % (2**depth) == 0


def test_halo_outside_csbdeep_table_falls_back_to_analytic():
    assert unet_halo(2, 9) >= unet_halo(2, 7)
