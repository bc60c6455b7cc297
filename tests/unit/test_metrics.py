import math

import numpy as np
import pytest

from fijiport.qc.metrics import normalize_gt, nrmse, psnr, restoration_scores, scale_to, ssim


def test_psnr_and_nrmse_by_hand():
    gt = np.zeros((10, 10))
    x = np.full((10, 10), 0.1)  # MSE 0.01 -> PSNR 10*log10(1/0.01) = 20 dB, RMSE 0.1
    assert psnr(gt, x) == pytest.approx(20.0)
    assert nrmse(gt, x) == pytest.approx(0.1)
    assert psnr(gt, x, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.01))
    assert nrmse(gt, x, data_range=2.0) == pytest.approx(0.05)
    assert psnr(gt, gt) == math.inf


def test_half_wrong_pixels_by_hand():
    gt = np.zeros(4)
    x = np.array([0.0, 0.0, 1.0, 1.0])  # MSE 0.5 -> PSNR 10*log10(2) = 3.0103 dB
    assert psnr(gt, x) == pytest.approx(3.0103, abs=1e-4)
    assert nrmse(gt, x) == pytest.approx(math.sqrt(0.5))


def test_affine_scaling_undoes_gain_and_offset():
    rng = np.random.default_rng(0)
    target = rng.random((20, 20))
    assert np.allclose(scale_to(3.0 * target + 7.0, target), target)
    assert np.allclose(scale_to(np.ones((20, 20)), target), target.mean())  # constant input: no division by zero


def test_gt_normalisation_maps_percentiles_to_0_and_1():
    gt = np.arange(1001, dtype=float)
    n = normalize_gt(gt)
    assert np.percentile(n, 0.1) == pytest.approx(0.0) and np.percentile(n, 99.9) == pytest.approx(1.0)


def test_scores_ignore_gain_and_offset_but_not_noise():
    rng = np.random.default_rng(1)
    gt = rng.random((32, 32)) * 1000
    perfect = restoration_scores(gt, 0.5 * gt + 12)
    assert perfect.psnr > 100 and perfect.ssim == pytest.approx(1.0) and perfect.nrmse < 1e-6
    noisy = restoration_scores(gt, gt + rng.normal(0, 200, gt.shape))
    assert noisy.psnr < 30 and noisy.ssim < 0.9 and noisy.nrmse > 0.01


def test_ssim_by_hand_and_thin_stacks_work():
    """Two constant images a and b: no structure or contrast term, only luminance (2ab + C1) / (a² + b² + C1) with
    C1 = (0.01 · data range)², here (0.24 + 1e-4) / (0.40 + 1e-4) = 0.60010; the same on a 3-slice stack (window 3)."""
    expected = (2 * 0.2 * 0.6 + 1e-4) / (0.2**2 + 0.6**2 + 1e-4)
    assert ssim(np.full((16, 16), 0.2), np.full((16, 16), 0.6)) == pytest.approx(expected, rel=1e-9)
    assert ssim(np.full((3, 16, 16), 0.2), np.full((3, 16, 16), 0.6)) == pytest.approx(expected, rel=1e-9)
    rng = np.random.default_rng(2)
    stack = rng.random((3, 16, 16))
    assert ssim(stack, stack + rng.normal(0, 0.3, stack.shape)) < 0.7  # noise lowers it (0.62 here)
    with pytest.raises(ValueError, match="too small"):
        ssim(np.zeros((2, 2)), np.zeros((2, 2)))


def test_pearson_by_hand_and_unchanged_by_gain_and_offset():
    from fijiport.qc.metrics import pearson

    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert pearson(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, -1.0, -1.0, 1.0])) == pytest.approx(0.0)
    assert pearson(np.ones(5), np.arange(5.0)) == 0.0  # a constant image: no correlation, no division by zero
    rng = np.random.default_rng(3)
    gt = rng.random((16, 16))
    x = gt + rng.normal(0, 0.1, gt.shape)
    assert pearson(gt, 5 * x - 3) == pytest.approx(pearson(gt, x)) == pytest.approx(float(np.corrcoef(gt.ravel(), x.ravel())[0, 1]))
    assert restoration_scores(gt, x).pearson == pytest.approx(pearson(gt, x))
    with pytest.raises(ValueError, match="pixels"):
        pearson(np.zeros(3), np.zeros(4))


def test_ssim_and_rse_maps_agree_with_the_scores():
    from fijiport.qc.metrics import rse_map, ssim_map

    rng = np.random.default_rng(4)
    gt = rng.random((24, 24))
    x = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1)
    m = ssim_map(gt, x)
    assert m.shape == gt.shape and m[3:-3, 3:-3].mean() == pytest.approx(ssim(gt, x), abs=1e-9)  # skimage's mean leaves out half a window
    assert np.allclose(ssim_map(gt, gt), 1.0)
    r = rse_map(gt, x)
    assert r.shape == gt.shape and (r >= 0).all() and np.sqrt(np.mean(r**2)) == pytest.approx(nrmse(gt, x))
    assert not rse_map(gt, gt).any()


def test_qc_json_written_before_pearson_still_reads(tmp_path):
    """qc.json files from before Pearson's r was measured: they read, and export's model card shows what they have."""
    import json

    from fijiport.artifacts.qc_report import RestorationQc, read_qc_report
    from fijiport.kinds.care import CARE

    old_scores = {"psnr": 20.0, "ssim": 0.5, "nrmse": 0.1}
    old = {
        "kind": "care",
        "fijiport_version": "0.1.0",
        "model": "m",
        "test_dir": "t",
        "normalization": {},
        "n_images": 1,
        "summary": {m: {"input": v, "prediction": v + 1} for m, v in old_scores.items()},
        "images": [{"name": "a.tif", "shape": [8, 8], "n_tiles": [1, 1], "input": old_scores, "prediction": old_scores}],
    }
    (tmp_path / "qc.json").write_text(json.dumps(old))
    report = read_qc_report(tmp_path / "qc.json")
    assert isinstance(report, RestorationQc) and report.images[0].input.pearson is None
    card = CARE.qc_markdown(report)
    assert "| PSNR |" in card and "Pearson" not in card
    assert set(CARE.qc_figures(report)) == {"psnr", "ssim", "nrmse"}
