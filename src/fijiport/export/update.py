"""A new version of a model already shared: keep what the earlier package said about it.

``fijiport export ... --update PREVIOUS.zip --version 1.1.0`` takes the earlier package's Zoo id,
name, description, authors, maintainers, license, citations, tags, repository and training-data
text as defaults (options and ``--meta`` still win), refuses a version that is not newer, and adds
the change to the "Version history" of the model card. ``--parent ZOO_ID`` records the Zoo id of a
published model when its package is not at hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from ..errors import ExportError
from ..package.read import read_model_package
from ..package.untrusted import PackageFiles

HISTORY = "## Version history"


def previous_values(previous: Path) -> dict:
    """ExportMeta values taken from an earlier package (zip or rdf.yaml)."""

    descr = read_model_package(previous, purpose="--update")

    def person(p) -> dict:
        keys = ("name", "affiliation", "email", "orcid", "github_user")
        return {k: str(getattr(p, k)) for k in keys if getattr(p, k, None)}

    values: dict = {
        "name": descr.name,
        "authors": [person(a) for a in descr.authors or []],
        "maintainers": [person(m) for m in descr.maintainers or [] if getattr(m, "github_user", None)],
        "cite": [
            {"text": c.text, **({"doi": str(c.doi)} if c.doi else {}), **({"url": str(c.url)} if getattr(c, "url", None) else {})}
            for c in descr.cite or []
        ],
        "tags": [str(t) for t in descr.tags or []],
    }
    if descr.description:
        values["description"] = descr.description
    if descr.license:
        values["license"] = str(descr.license)
    if getattr(descr, "git_repo", None):
        values["git_repo"] = str(descr.git_repo)
    if getattr(descr, "id", None):
        values["id"] = str(descr.id)
    if getattr(descr, "version", None) is not None:
        values["_previous_version"] = str(descr.version)
    readme = _readme(previous, descr)
    # the card's "Fine-tuned from ..." paragraph is written anew from the training record, not kept as training data
    training = "\n\n".join(b for b in _section(readme, "## Training data").split("\n\n") if not b.startswith("Fine-tuned from "))
    if training and "not described" not in training.lower():
        values["training_data"] = training
    values["_history"] = _section(readme, HISTORY)
    return values


def apply_update(values: dict, previous: Optional[Path], parent: Optional[str], changes: Optional[str]) -> dict:
    """Merge an earlier package's values under ``values`` (the user's own win) and write the version history."""
    if previous is None and parent is None:
        return values
    base = previous_values(previous) if previous is not None else {}
    old_version = base.pop("_previous_version", None)
    history = base.pop("_history", "") or ""
    merged = {**base, **{k: v for k, v in values.items() if v not in (None, [], "")}}
    if "tags" in values and "tags" in base:
        merged["tags"] = list(dict.fromkeys([*base["tags"], *values["tags"]]))
    if "cite" in values and "cite" in base:
        merged["cite"] = [*base["cite"], *values["cite"]]
    if parent:
        merged["id"] = parent
    version = merged.get("version")
    if not version:
        raise ExportError("a new version needs --version (e.g. 1.1.0)" + (f"; the earlier package is {old_version}" if old_version else ""))
    if old_version and not _newer(version, old_version):
        raise ExportError(f"--version {version} is not newer than the earlier package's {old_version}; pick a higher version")
    entry = f"- {version}: {changes or 're-exported with fijiport'}"
    if old_version or merged.get("id"):
        entry += (
            " (follows "
            + ", ".join(x for x in (old_version and f"version {old_version}", merged.get("id") and f"Zoo id {merged['id']}") if x)
            + ")"
        )
    extra = merged.get("documentation_extra") or ""
    merged["documentation_extra"] = (extra + "\n\n" if extra else "") + f"{HISTORY}\n\n{entry}\n" + (f"{history}\n" if history else "")
    return merged


def _newer(new: str, old: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(new) > Version(old)
    except InvalidVersion:
        return new != old


def _readme(previous: Path, descr) -> str:
    from bioimageio.spec.utils import extract_file_name

    if descr.documentation is None:
        return ""
    data = PackageFiles(previous).read(extract_file_name(descr.documentation.source))
    return data.decode("utf-8", errors="replace") if data is not None else ""


def _section(text: str, heading: str) -> str:
    m = re.search(r"^" + re.escape(heading) + r"\s*$(.*?)(?=^#{1,2} |\Z)", text, re.M | re.S)
    return m.group(1).strip() if m else ""
