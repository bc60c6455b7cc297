"""Metadata of an exported model: the bioimage.io rdf's own keys (``--meta FILE.yaml``)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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
        return v.strip().removeprefix("https://doi.org/").removeprefix("doi:")

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
