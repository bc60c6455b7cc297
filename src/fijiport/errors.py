"""The exceptions fijiport raises.

Every message says what was expected, what was found and how to fix it; the CLI prints the
message alone (a traceback only with ``--debug``) and maps the type to an exit code.
"""

from __future__ import annotations


class FijiportError(Exception):
    """Base class of every error fijiport raises on purpose."""


class DataError(FijiportError):
    """Input images, masks or folders are missing, unreadable or inconsistent."""


class ConfigError(FijiportError):
    """A configuration (options, YAML file, model config) is invalid."""


class TrainingError(FijiportError):
    """Training could not start or did not produce a usable model."""


class ExportError(FijiportError):
    """A model could not be exported or its output could not be written."""


class DependencyError(FijiportError):
    """An optional dependency or external program is missing."""


class OutputExistsError(FijiportError):
    """The output exists and ``--overwrite`` was not given."""
