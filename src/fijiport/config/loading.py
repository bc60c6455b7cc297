"""Reading YAML configuration files and merging them with command-line options."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, UsageError

M = TypeVar("M", bound=BaseModel)


def load_yaml_config(path: Path | None) -> dict[str, Any]:
    """Read a YAML mapping (safe loader only: YAML tags that build objects are refused)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option names to values, found {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def merge_options(model: type[M], file_values: dict[str, Any], cli_values: dict[str, Any], *, source: str = "options") -> M:
    """Build ``model`` from file values overridden by the command-line values that were given (not None)."""
    values = dict(file_values)
    values.update({k: v for k, v in cli_values.items() if v is not None})
    return validate_config(model, values, source=source)


def validate_config(model: type[M], values: dict[str, Any], *, source: str) -> M:
    """Validate ``values`` into ``model``, turning pydantic's errors into one readable :class:`ConfigError`."""
    try:
        return model.model_validate(values)
    except ConfigError as e:  # a validator's own message (axes, say); typed on the command line it is a usage error
        if source == "options" and not isinstance(e, UsageError):
            raise UsageError(str(e)) from None
        raise
    except ValidationError as e:
        lines = []
        options = source == "options"  # values typed on the command line: name them as typed
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(config)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                known = ", ".join(sorted(model.model_fields))
                msg = f"unknown option; known options are: {known}"
                lines.append(f"{loc}: {msg}")
            elif options and len(err["loc"]) == 1:
                lines.append(f"--{loc.replace('_', '-')} {err.get('input')!r}: {msg}")
            else:
                lines.append(f"{loc}: {msg}")
        text = "; ".join(lines) + ("; see --help" if options else "")
        raise (UsageError if options else ConfigError)(f"invalid {source}: {text}") from None
