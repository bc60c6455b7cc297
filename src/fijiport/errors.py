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


class UsageError(ConfigError):
    """Options that cannot go together or values out of range: the command line itself is wrong (exit code 2)."""


class DependencyError(FijiportError):
    """An optional dependency or external program is missing."""


class OutputExistsError(FijiportError):
    """The output exists and ``--overwrite`` was not given."""


def os_error_message(e: OSError) -> str:
    """One line for an operating-system refusal (disk full, read-only, permissions), naming the path and the fix."""
    import errno

    name = e.filename or "the output"
    if e.filename2:
        name = f"{e.filename} → {e.filename2}"
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk holding {name}; free some space or write elsewhere with -o, then run the command again"
    if code == errno.EFBIG:
        return f"{name} grew past the largest file this system allows; write elsewhere with -o"
    if code == errno.EROFS:
        return f"{name} is on a read-only file system; choose a location you can write to with -o"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied for {name}; choose a location you may write to with -o (or get write access to it)"
    if code == errno.ENOTDIR:
        return f"{name}: part of this path is a file, not a folder; choose another path"
    if code == errno.EEXIST:
        return f"{name} exists (a file where a folder is needed, or the other way round); choose another path"
    if code == errno.ENOENT:
        return f"{name} does not exist (or a folder on its way is missing); check the path"
    return f"{name}: {e.strerror or e}; check the path and that there is room to write"
