"""The ImageJ macros of ``fiji_macros/``: list them, fill in a model's values, install them into Fiji.

Each macro starts with a header (purpose, plugins and tested versions, how to run it, citation).
Lines of the form ``var NAME = "VALUE";  // fijiport:KEY`` hold defaults that ``fijiport export``
replaces with a model's own values (path, thresholds, percentiles, tiling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from .._resources import macro_text
from ..errors import DataError
from ..files import atomic_file, check_output

MACROS = (
    "make_stardist_masks.ijm",
    "rois_to_masks.ijm",
    "deepimagej_predict_folder.ijm",
    "care_predict_folder.ijm",
    "stardist_segment_folder.ijm",
)
MENU_FOLDER = Path("scripts") / "Plugins" / "fijiport"
"""Where ``macros install`` puts the macros inside Fiji.app: they appear under Plugins > fijiport."""

_DEFAULT = re.compile(r'^(var \w+ = )"([^"\n]*)";(\s*// fijiport:(\w+))$', re.MULTILINE)


@dataclass(frozen=True)
class MacroInfo:
    name: str
    purpose: str
    plugins: str
    fill_keys: tuple[str, ...]


def macro_info(name: str) -> MacroInfo:
    """Purpose and needed plugins from the macro's header, and the keys export can fill in."""
    text = macro_text(name)
    header = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        header.append(line[2:].strip())
    joined = " ".join(header)
    purpose = joined.split(" - ", 1)[1] if " - " in joined else joined
    purpose = re.split(r"[:,;]\s|\.\s", purpose, maxsplit=1)[0].rstrip(".")
    purpose = purpose[:1].upper() + purpose[1:]
    plugins = next((h.split(":", 1)[1].strip() for h in header if h.startswith("Plugins needed:")), "")
    plugins = plugins.split(" (")[0].split(". ")[0].rstrip(".,")
    keys = tuple(m.group(4) for m in _DEFAULT.finditer(text))
    return MacroInfo(name, purpose, plugins, keys)


def list_macros() -> list[MacroInfo]:
    return [macro_info(n) for n in MACROS]


def _macro_string(value) -> str:
    """A value as the inside of an ImageJ macro string literal (forward slashes work on every OS)."""
    text = str(value).replace("\\", "/")
    if '"' in text or "\n" in text:
        raise DataError(f"{text!r} cannot go into an ImageJ macro string (quote or line break)")
    return text


def fill_macro(name: str, values: dict, note: str) -> str:
    """The macro with the marked defaults replaced by ``values`` and ``note`` added below its header."""
    text = macro_text(name)
    unknown = set(values) - set(m.group(4) for m in _DEFAULT.finditer(text))
    if unknown:
        raise ValueError(f"{name} has no fill-in keys {sorted(unknown)}")

    def replace(m: re.Match) -> str:
        key = m.group(4)
        return f'{m.group(1)}"{_macro_string(values[key])}";{m.group(3)}' if key in values else m.group(0)

    filled = _DEFAULT.sub(replace, text)
    lines = filled.splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if not line.startswith("//"))
    stamp = [f"// Filled in by fijiport {__version__}: {note}\n", "//\n"]
    return "".join(lines[:end] + ["//\n"] + stamp + lines[end:])


def write_filled_macro(name: str, target: Path, values: dict, note: str, *, overwrite: bool = False) -> Path:
    text = fill_macro(name, values, note)
    with atomic_file(Path(target), overwrite=overwrite) as tmp:
        tmp.write_text(text)
    return Path(target)


def install_macros(fiji_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy every macro to ``Fiji.app/scripts/Plugins/fijiport/`` (menu Plugins > fijiport)."""
    fiji_dir = Path(fiji_dir)
    if not fiji_dir.is_dir():
        raise DataError(f"{fiji_dir} is not a folder; pass your Fiji installation, e.g. --fiji ~/Fiji.app")
    if not any((fiji_dir / d).is_dir() for d in ("jars", "plugins")):
        raise DataError(
            f"{fiji_dir} does not look like Fiji.app (no jars/ or plugins/ folder); pass the folder that holds the ImageJ-* launcher"
        )
    target_dir = fiji_dir / MENU_FOLDER
    targets = [target_dir / n for n in MACROS]
    for t in targets:
        check_output(t, overwrite)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {target_dir} ({e.strerror}); is Fiji.app writable?") from None
    for name, target in zip(MACROS, targets):
        with atomic_file(target, overwrite=overwrite) as tmp:
            tmp.write_text(macro_text(name))
    return targets


__all__ = ["MACROS", "MacroInfo", "fill_macro", "install_macros", "list_macros", "macro_info", "write_filled_macro"]
