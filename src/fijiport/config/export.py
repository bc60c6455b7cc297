"""Metadata of an exported model: the bioimage.io rdf's own keys (``--meta FILE.yaml``).

Every value is checked here, with the Model Zoo's rules, before an export starts its slow steps: a name of
5–128 characters, an SPDX license id, DOIs and ORCID iDs in their own formats, a web address for the repository.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import UsageError

ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
DOI = re.compile(r"^10\.\d{4,9}/\S+$")


@functools.cache
def spdx_licenses() -> dict[str, bool]:
    """SPDX license ids bioimageio.spec knows, each with whether it is deprecated (read from the spec's own list
    without importing bioimageio.spec, which takes seconds)."""
    from importlib.util import find_spec

    spec = find_spec("bioimageio.spec")
    if spec is None or not spec.submodule_search_locations:
        return {}
    data = json.loads((Path(next(iter(spec.submodule_search_locations))) / "static" / "spdx_licenses.json").read_text())
    return {d["licenseId"]: bool(d.get("isDeprecatedLicenseId")) for d in data["licenses"]}


def suggest_license(text: str) -> Optional[str]:
    """The SPDX id meant by ``text`` ('CC BY 4.0' → 'CC-BY-4.0'), if one matches when spaces become dashes."""
    wanted = re.sub(r"[\s_]+", "-", text.strip()).lower()
    return next((k for k in spdx_licenses() if k.lower() == wanted), None)


def checked_percentiles(values, option: str = "--percentiles") -> Optional[tuple[float, float]]:
    """``LOW,HIGH`` normalisation percentiles, in percent: 0 ≤ LOW < HIGH ≤ 100 (fractions such as 0.02,0.998 are
    refused with the percent values they likely mean)."""
    if values is None:
        return None
    low, high = (float(v) for v in values)
    if 0 <= low < high <= 1.0 and high < 1.0:
        raise UsageError(
            f"{option} {low:g},{high:g}: percentiles are in percent (0-100); did you mean {option} {low * 100:g},{high * 100:g}?"
        )
    if not 0 <= low < high <= 100:
        hint = f"; did you mean {option} {high:g},{low:g}?" if 0 <= high < low <= 100 else ""
        raise UsageError(f"{option} {low:g},{high:g}: give LOW,HIGH with 0 <= LOW < HIGH <= 100, e.g. {option} 2,99.8{hint}")
    return low, high


class Person(BaseModel):
    """An author or maintainer as the rdf describes them."""

    model_config = ConfigDict(extra="forbid")

    name: Optional[str] = None
    """Full name."""
    affiliation: Optional[str] = None
    """Institute or company."""
    email: Optional[str] = None
    """Contact e-mail."""
    orcid: Optional[str] = None
    """ORCID iD, e.g. 0000-0001-2345-6789."""
    github_user: Optional[str] = None
    """GitHub user name; the Zoo contacts maintainers through it."""

    @field_validator("orcid")
    @classmethod
    def _orcid(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = v.strip().removeprefix("https://orcid.org/")
        if not ORCID.match(v):
            raise ValueError(f"ORCID iD {v!r} must look like 0000-0002-1825-0097")
        return v


class CiteEntry(BaseModel):
    """A citation: free text plus a DOI (preferred) or URL."""

    model_config = ConfigDict(extra="forbid")

    text: str
    """How the reference reads, e.g. 'Weigert et al., Nature Methods 2018'."""
    doi: Optional[str] = None
    """DOI without the https://doi.org/ prefix."""
    url: Optional[str] = None
    """Web address, when there is no DOI."""

    @field_validator("doi")
    @classmethod
    def _doi(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = v.strip().removeprefix("https://doi.org/").removeprefix("doi:")
        if not DOI.match(v):
            raise ValueError(f"DOI {v!r} must look like 10.1038/s41592-018-0216-7")
        return v

    @model_validator(mode="after")
    def _doi_or_url(self) -> CiteEntry:
        if not (self.doi or self.url):
            raise ValueError(f"citation {self.text!r} needs a doi or a url (on the command line: --cite 'TEXT|DOI')")
        return self


class ExportMeta(BaseModel):
    """The descriptive part of a bioimage.io model; keys as in the rdf."""

    model_config = ConfigDict(extra="forbid")

    name: Optional[str] = None
    """Human-readable model name (letters, digits, spaces, ``_-()``; at most 128 characters)."""
    description: Optional[str] = None
    """One or two sentences: what the model restores or segments and on which data."""
    authors: list[Person] = Field(default_factory=list)
    """People who trained the model."""
    maintainers: list[Person] = Field(default_factory=list)
    """People who answer questions about the model; each needs a ``github_user`` for the Zoo."""
    license: str = "CC-BY-4.0"
    """SPDX license identifier of the weights and package."""
    cite: list[CiteEntry] = Field(default_factory=list)
    """References besides the model kind's own papers (CARE, StarDist: cited by default)."""
    tags: list[str] = Field(default_factory=list)
    """Keywords: modality, organism, structure, task (e.g. ``fluorescence-light-microscopy``, ``nuclei``)."""
    version: Optional[str] = None
    """Version of this model, e.g. ``1.0.0``."""
    git_repo: Optional[str] = None
    """Repository with the training code or data description."""
    documentation_extra: Optional[str] = None
    """Extra Markdown appended to the generated model card (e.g. a data description)."""
    training_data: Optional[str] = None
    """Description or link of the training data, shown in the model card."""
    id: Optional[str] = None
    """Zoo id of the published model this package is a new version of (kept from ``--update`` or set by ``--parent``)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        v = v.strip()
        if not 5 <= len(v) <= 128:
            raise ValueError(f"name {v!r} has {len(v)} characters; the Model Zoo takes 5 to 128, e.g. 'CARE nuclei denoising'")
        return v  # characters the Zoo does not take (other than letters, digits, spaces, _-()) become '-' at export

    @field_validator("license")
    @classmethod
    def _license(cls, v: str) -> str:
        known = spdx_licenses()
        if known and v not in known:
            better = suggest_license(v)
            raise ValueError(
                f"license {v!r} is not an SPDX license id; "
                + (f"use {better!r}" if better else "use one such as 'CC-BY-4.0', 'MIT' or 'BSD-3-Clause'")
            )
        return v

    @field_validator("git_repo")
    @classmethod
    def _git_repo(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.match(r"^https?://[^\s/]+\.[^\s]+$", v.strip()):
            raise ValueError(f"git_repo {v!r} must be a web address, e.g. https://github.com/lab/project")
        return None if v is None else v.strip()

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: object) -> Optional[str]:
        """The version as bioimageio.spec reads it back (its ``Version`` is ``packaging``'s PEP 440 version):
        ``v1`` is stored as ``1``, as zoo-check and the Zoo show it, instead of ``v1`` in the rdf and ``1``
        everywhere else; what is no version is refused."""
        if v is None:
            return None
        if isinstance(v, float):  # YAML reads version: 1.10 as 1.1
            raise ValueError(f"version {v!r} is a number in YAML; quote it, e.g. version: '{v}'")
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise ValueError(f"version {v!r} must be text such as 1.0.0")
        from packaging.version import InvalidVersion, Version

        try:
            return str(Version(str(v).strip()))
        except InvalidVersion:
            raise ValueError(f"{str(v)!r} is not a version number (PEP 440, as bioimageio.spec reads it); try 1.0.0") from None
