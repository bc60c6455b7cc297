"""Quality control: restoration metrics against ground truth, reports and panels."""

from .metrics import RestorationScores, nrmse, psnr, restoration_scores, ssim
from .restoration import QcResult, qc_care

__all__ = ["QcResult", "RestorationScores", "nrmse", "psnr", "qc_care", "restoration_scores", "ssim"]
