"""What every bioimage.io package fijiport writes shares: people and citations in the rdf's types,
and writing the zip whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..config.export import CiteEntry, ExportMeta
from ..errors import ExportError
from ..files import atomic_file, check_output


def rdf_people_and_citations(meta: ExportMeta, default_cites: list[CiteEntry]):
    """(authors, maintainers, cite) for a spec 0.5 ModelDescr; unset fields stay unset."""
    from bioimageio.spec.model import v0_5 as bio

    def person(p, cls):
        return cls(**{k: v for k, v in p.model_dump().items() if v is not None})

    authors = [person(a, bio.Author) for a in meta.authors if a.name] or [bio.Author(name="fijiport user")]
    maintainers = [person(m, bio.Maintainer) for m in meta.maintainers if m.github_user]
    unique: dict[str, CiteEntry] = {}
    for c in [*default_cites, *meta.cite]:  # the first of equal references stays (an update repeats the defaults)
        unique.setdefault((c.doi or c.url or c.text).lower(), c)
    cites = [bio.CiteEntry(text=c.text, **({"doi": bio.Doi(c.doi)} if c.doi else {}), **({"url": c.url} if c.url else {}))
             for c in unique.values()]
    return authors, maintainers, cites


def export_outputs(output_zip: Path, fiji_zip: Optional[Path], overwrite: bool) -> list[Path]:
    """The files an export writes (the package; with --fiji-zip also the Fiji zip and its macro), checked
    before any work is done."""
    output_zip = Path(output_zip)
    if output_zip.suffix.lower() != ".zip":
        raise ExportError(f"output {output_zip} must end in .zip (bioimage.io packages are zip files)")
    outputs = [output_zip]
    if fiji_zip is not None:
        fiji_zip = Path(fiji_zip)
        if fiji_zip.suffix.lower() != ".zip":
            raise ExportError(f"--fiji-zip {fiji_zip} must end in .zip")
        outputs += [fiji_zip, fiji_zip.with_suffix(".ijm")]
    for path in outputs:
        check_output(path, overwrite)
    return outputs


def optional_rdf_fields(meta: ExportMeta) -> dict:
    """The rdf keys that are only written when set (explicit Nones would be written as `key: null`)."""
    return {k: v for k, v in (("version", meta.version), ("git_repo", meta.git_repo), ("id", meta.id)) if v}


def write_package(descr, output_zip: Path, *, overwrite: bool) -> Path:
    """Save a model description as a bioimage.io zip through a temporary file (never half-written)."""
    from bioimageio.spec import save_bioimageio_package

    from .._bioimageio_compat import offline_tolerant_github_check

    with offline_tolerant_github_check(), atomic_file(Path(output_zip), overwrite=overwrite) as partial:
        partial.unlink()  # bioimageio.spec wants to create the file itself, with a .zip name
        written = partial.with_suffix(".zip")
        try:
            save_bioimageio_package(descr, output_path=written)
        except BaseException as e:
            written.unlink(missing_ok=True)  # a full disk or Ctrl-C must not leave the partial zip behind
            if isinstance(e, OSError) and e.errno is not None and e.filename in (None, str(written)):
                raise OSError(e.errno, e.strerror, str(output_zip)) from None  # about the zip being written
            if isinstance(e, Exception):
                raise ExportError(f"bioimageio.spec could not write the package: {type(e).__name__}: {e}") from None
            raise
        written.rename(partial)
    return Path(output_zip)
