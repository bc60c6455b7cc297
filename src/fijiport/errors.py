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
    """One line for an operating-system refusal (disk full, read-only, permissions), naming the path and the fix.
    The path may be an input or an output: the fix says which is which.

    Parameters
    ----------
    e
        The error raised by the operating system.

    Returns
    -------
    str
        The message the command line prints.
    """
    import errno

    name = e.filename if e.filename else None
    if e.filename2:
        name = f"{e.filename} → {e.filename2}"
    at = f" ({name})" if name else ""
    code = e.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk{at}; free some space or write elsewhere with -o, then run the command again"
    if code == errno.EFBIG:
        return f"a file grew past the largest file this system allows{at}; write elsewhere with -o"
    if code == errno.EROFS:
        return f"read-only file system{at}; choose a location you can write to with -o"
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied{at}; if it is an input, get read access to it; if it is the output, choose a "
            "location you may write to with -o"
        )
    if code == errno.ENOTDIR:
        return f"part of a path is a file, not a folder{at}; check the paths given"
    if code == errno.EEXIST:
        return f"exists already, a file where a folder is needed or the other way round{at}; choose another path"
    if code == errno.ENOENT:
        return f"no such file or folder{at}; check the path (or a folder on its way)"
    return f"{e.strerror or e}{at}; check the paths given and that there is room to write"
