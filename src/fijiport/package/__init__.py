"""Reading anyone's bioimage.io package without TensorFlow: the untrusted-input checks, safe extraction,
the description and its test tensors, the one agreement rule with the package's tolerance, and the one
report type every check writes."""

from .report import Check, Report, Status
from .tolerance import Agreement, Tolerance, agree, tolerance_for

__all__ = ["Agreement", "Check", "Report", "Status", "Tolerance", "agree", "tolerance_for"]
