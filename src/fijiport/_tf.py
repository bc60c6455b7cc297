"""Access to TensorFlow in the right Keras world.

csbdeep and stardist build, train and save their networks with Keras 2 (``tf_keras``), which
TensorFlow ≥ 2.16 uses only when ``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is
imported. bioimageio.core's Keras and SavedModel runners need Keras 3 (the variable unset), so
validation runs them in a child process (:mod:`fijiport.verify.validate`).
"""

from __future__ import annotations

import logging
import os
import sys

from .errors import DependencyError

log = logging.getLogger(__name__)

LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"


def legacy_tensorflow(gpu_memory_growth: bool = False):
    """Import and return TensorFlow set up for csbdeep/stardist (Keras 2 through ``tf_keras``).

    Raises :class:`DependencyError` when TensorFlow was already imported in the Keras 3 world,
    which cannot be undone inside one process.
    """
    if "tensorflow" in sys.modules and os.environ.get(LEGACY_KERAS_ENV) != "1":
        raise DependencyError(
            "TensorFlow was imported before fijiport could select Keras 2 (tf_keras); "
            f"set {LEGACY_KERAS_ENV}=1 in the environment before importing TensorFlow"
        )
    os.environ[LEGACY_KERAS_ENV] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
        import tf_keras  # noqa: F401  (csbdeep needs it under TF >= 2.16)
    except ImportError as e:
        raise DependencyError(
            f"TensorFlow with tf_keras is required ({e}); run `make demo` or `pip install -c packaging/constraints.txt -e .`"
        ) from None
    if gpu_memory_growth:
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError as e:  # already initialised
                log.warning("could not enable memory growth on %s: %s", gpu.name, e)
    return tf


def keras3_env() -> dict[str, str]:
    """The environment for a child process that must use Keras 3 (bioimageio.core's runners)."""
    env = dict(os.environ)
    env.pop(LEGACY_KERAS_ENV, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class _LogWriter:
    """A file-like object that sends lines to a logger (csbdeep prints to stdout, which is ours for results)."""

    def __init__(self, logger: logging.Logger, level: int = logging.DEBUG):
        self.logger, self.level, self._buf = logger, level, ""

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.strip():
                self.logger.log(self.level, "%s", line.rstrip())
        return len(text)

    def flush(self) -> None:
        pass


def quiet_stdout():
    """Context manager that routes prints of csbdeep/stardist/Keras to the debug log."""
    import contextlib

    return contextlib.redirect_stdout(_LogWriter(logging.getLogger("fijiport.thirdparty")))
