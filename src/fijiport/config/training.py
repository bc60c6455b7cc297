"""What the training configs of every kind share."""

from __future__ import annotations

FINE_TUNE_LEARNING_RATE = 1e-4
"""The default initial learning rate when a training starts from a trained model (``--init-from``), for every kind:
a quarter of CARE's 4e-4 and a third of StarDist's 3e-4 from scratch, so that the first updates adjust the parent's
weights rather than overwrite them. ``--learning-rate`` sets another."""
