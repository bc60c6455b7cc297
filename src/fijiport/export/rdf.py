"""The parts of a bioimage.io rdf (spec 0.5) every package fijiport writes shares, whatever the kind:
people and citations, the input tensor with its ``scale_range``, the three weight formats, and writing
the zip whole or not at all. What differs per kind (outputs, config blocks, attachments, tags) comes from
the kind (:mod:`fijiport.kinds`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from ..config.export import CiteEntry, ExportMeta
from ..errors import ExportError
from ..files import atomic_file, check_output
from ..kinds.base import ExportContext
from ..package.read import offline_tolerant_github_check

DEEPIMAGEJ_FORMAT_VERSION = "0.5.10"
"""The ``format_version`` fijiport declares: the newest 0.5 patch whose ``documentation`` and ``covers`` may be plain
file names. bioimageio.spec 0.5.11+ wants ``{source: ...}`` mappings there, which deepImageJ 3.x's reader (JDLL) casts
to String and throws on (:mod:`fijiport.package.jdll`); bioimageio.spec 0.5.12 reads a 0.5.10 rdf as 0.5.12 (it bumps
the patch version and wraps the file names itself), so both read the same package."""

TF_BUNDLE_VERSION = "1.15.0"
"""``tensorflow_version`` declared for the frozen graph: deepImageJ picks the engine closest to it,
and the graph is made for TF 1.13–2.10 (what Fiji's and KNIME's plugins embed)."""


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
    cites = [bio.CiteEntry(text=c.text, **_set({"doi": bio.Doi(c.doi) if c.doi else None, "url": c.url})) for c in unique.values()]
    return authors, maintainers, cites


def _set(values: dict[str, Any]) -> dict[str, Any]:
    """Only the values that are set: bioimageio.spec writes a field explicitly set to None as ``key: null``."""
    return {k: v for k, v in values.items() if v is not None}


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


def metadata_warnings(meta: ExportMeta) -> list[str]:
    """What the BioImage Model Zoo expects and the metadata lacks, each with the option that fixes it."""
    out = []
    if not meta.authors:
        out.append("no authors: the Zoo expects them; set --author 'Name' or `authors:` in --meta FILE.yaml")
    if not any(p.github_user for p in meta.maintainers + meta.authors):
        out.append(
            "no maintainer with a GitHub user: the Zoo contacts models' maintainers on GitHub; "
            "set --maintainer GITHUB_USER or `maintainers: [{github_user: ...}]` in --meta"
        )
    if not meta.description:
        out.append("no description: set --description or `description:` in --meta")
    if not meta.tags:
        out.append("no tags: set --tag (repeatable) or `tags:` in --meta, e.g. denoising, fluorescence-light-microscopy")
    if not meta.version:
        out.append("no version: set --version or `version:` in --meta, e.g. 1.0.0")
    return out


def safe_name(name: str, fallback: str) -> str:
    """A name bioimage.io accepts: letters, digits, spaces and ``_-()``, at most 128 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9 _\-()]", "-", name).strip()
    return cleaned[:128] or fallback


def model_descr(
    ctx: ExportContext, cover: Path, readme: Path, h5_path: Optional[Path], tf_zip: Path, onnx_path: Path, *, opset: int, tf_version: str
):
    """The spec 0.5 model description: the shared input and weights, the kind's outputs, config and attachments."""
    from bioimageio.spec.model import v0_5 as bio

    folder, kind, meta, g, tmp = ctx.folder, ctx.folder.kind, ctx.meta, ctx.geometry, ctx.tmp
    authors, maintainers, cites = rdf_people_and_citations(meta, list(kind.citations))
    inputs = [
        bio.InputTensorDescr(
            id=bio.TensorId(ctx.input_id),
            axes=[
                bio.BatchAxis(),
                *(
                    bio.SpaceInputAxis(id=bio.AxisId(a.lower()), size=bio.ParameterizedSize(min=g.axis_min(a), step=g.axes_div_by[a]))
                    for a in folder.spatial_axes
                ),
                bio.ChannelAxis(channel_names=[f"channel{i}" for i in range(folder.n_channel_in)]),
            ],
            test_tensor=bio.FileDescr(source=tmp / "test_input.npy"),
            sample_tensor=bio.FileDescr(source=tmp / "sample_input.tif"),
            data=bio.IntervalOrRatioDataDescr(type="float32"),
            preprocessing=kind.preprocessing_descrs(ctx),
        )
    ]
    comments = kind.weight_comments(ctx)
    keras = None
    if h5_path is not None:
        keras = bio.KerasHdf5WeightsDescr(source=h5_path, tensorflow_version=bio.Version(tf_version), comment=comments["keras_hdf5"])
    # unset fields, not None: bioimageio.spec writes explicitly set Nones as `key: null` into the rdf
    tf_bundle = bio.TensorflowSavedModelBundleWeightsDescr(
        source=tf_zip,
        tensorflow_version=bio.Version(TF_BUNDLE_VERSION),
        **_set({"parent": "keras_hdf5" if keras else None}),
        comment=comments["tensorflow_saved_model_bundle"],
    )
    onnx_weights = bio.OnnxWeightsDescr(
        source=onnx_path, opset_version=opset, parent="keras_hdf5" if keras else "tensorflow_saved_model_bundle", comment=comments["onnx"]
    )
    weights = bio.WeightsDescr(**_set({"keras_hdf5": keras}), tensorflow_saved_model_bundle=tf_bundle, onnx=onnx_weights)
    attachments = kind.attachments(ctx)
    kwargs: dict[str, Any] = dict(
        name=safe_name(ctx.name, f"{kind.title} model"),
        description=meta.description or kind.default_description,
        authors=authors,
        maintainers=maintainers,
        cite=cites,
        license=meta.license,
        tags=list(dict.fromkeys([*meta.tags, *kind.tags(folder)])),
        covers=[bio.FileDescr(source=cover)],
        documentation=bio.FileDescr(source=readme),
        **({"attachments": [bio.FileDescr(source=p) for p in attachments]} if attachments else {}),
        inputs=inputs,
        outputs=kind.output_descrs(ctx),
        weights=weights,
        config=kind.config_blocks(ctx),
    )
    kwargs.update(optional_rdf_fields(meta))
    kwargs.update(parent_field(ctx))
    try:
        return bio.ModelDescr(**kwargs)
    except Exception as e:
        raise ExportError(f"the model description is invalid: {e}") from None


def parent_field(ctx: ExportContext) -> dict[str, Any]:
    """The rdf's ``parent`` (bioimageio.spec 0.5: "the model from which this model is derived, e.g. by fine-tuning
    the weights", a Zoo model's ``id`` and ``version``) when the model was fine-tuned from a package with a Zoo id;
    nothing otherwise (a local folder or an unpublished package has no id to link: the card and
    ``config.fijiport.parent`` name it)."""
    from bioimageio.spec.model import v0_5 as bio

    record = ctx.folder.training_record
    parent = record.parent if record is not None else None
    if parent is None or not parent.zoo_id:
        return {}
    if ctx.meta.id and ctx.meta.id.lower() == parent.zoo_id.lower():
        raise ExportError(
            f"this package's Zoo id {ctx.meta.id!r} is the id of the model it was fine-tuned from; a fine-tuned model is a "
            "new model: drop the id (--update/--parent take it from the parent) so the Zoo gives it its own"
        )
    try:
        return {"parent": bio.LinkedModel(id=bio.ModelId(parent.zoo_id), **_set({"version": parent.version}))}
    except Exception as e:  # an id or version the spec refuses: the card still names the parent
        raise ExportError(
            f"the parent recorded in {ctx.folder.path / 'fijiport_training.json'} has a Zoo id or version bioimageio.spec "
            f"refuses ({parent.zoo_id!r}, {parent.version!r}: {str(e).splitlines()[0]})"
        ) from None


def nickname_for(rdf: dict) -> str:
    """``config.bioimageio.nickname`` for a package: its Zoo id if it has one, else its name in lower case with dashes."""
    if isinstance(rdf.get("id"), str) and rdf["id"]:
        return rdf["id"]
    return re.sub(r"[^a-z0-9]+", "-", str(rdf.get("name", "")).lower()).strip("-") or "fijiport-model"


def deepimagej_readable(rdf: dict) -> dict:
    """The rdf (plain data) in the forms both bioimageio.spec and deepImageJ 3.x's reader take: ``documentation`` and
    ``covers`` as file names with :data:`DEEPIMAGEJ_FORMAT_VERSION`, and ``config.bioimageio.nickname``, without which
    JDLL throws a NullPointerException on a package that has a ``config`` (JDLL issue 53)."""
    rdf = dict(rdf)
    doc = rdf.get("documentation")
    if isinstance(doc, dict) and isinstance(doc.get("source"), str):
        rdf["documentation"] = doc["source"]
    if isinstance(rdf.get("covers"), list):
        rdf["covers"] = [c["source"] if isinstance(c, dict) and isinstance(c.get("source"), str) else c for c in rdf["covers"]]
    fv = str(rdf.get("format_version", ""))
    parts = fv.split(".")
    if len(parts) == 3 and parts[:2] == ["0", "5"] and parts[2].isdigit() and int(parts[2]) > 10:
        rdf["format_version"] = DEEPIMAGEJ_FORMAT_VERSION
    config = dict(rdf.get("config") or {})
    bioimageio = dict(config.get("bioimageio") or {})
    bioimageio.setdefault("nickname", nickname_for(rdf))
    config["bioimageio"] = bioimageio
    rdf["config"] = config
    return rdf


def _rewrite_rdf_for_deepimagej(zip_path: Path) -> None:
    """Replace the package's rdf.yaml by its :func:`deepimagej_readable` form (every other entry copied unchanged)."""
    import zipfile

    import yaml

    rewritten = zip_path.with_name(zip_path.name + ".rdf")
    try:
        with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(rewritten, "w", compression=zipfile.ZIP_DEFLATED) as dst:
            rdf = yaml.safe_load(src.read("rdf.yaml"))
            for info in src.infolist():
                if info.filename == "rdf.yaml":
                    dst.writestr(info, yaml.safe_dump(deepimagej_readable(rdf), sort_keys=False, allow_unicode=True, width=120))
                else:
                    dst.writestr(info, src.read(info))
        rewritten.replace(zip_path)
    except OSError as e:  # a full disk: about the zip being written, as the caller reports it
        raise OSError(e.errno, e.strerror, str(zip_path)) from None
    finally:
        rewritten.unlink(missing_ok=True)


def write_package(descr, output_zip: Path, *, overwrite: bool) -> Path:
    """Save a model description as a bioimage.io zip through a temporary file (never half-written), its rdf in the
    forms deepImageJ 3.x can read too (:func:`deepimagej_readable`)."""
    from bioimageio.spec import save_bioimageio_package

    with offline_tolerant_github_check(), atomic_file(Path(output_zip), overwrite=overwrite) as partial:
        partial.unlink()  # bioimageio.spec wants to create the file itself, with a .zip name
        written = partial.with_suffix(".zip")
        try:
            save_bioimageio_package(descr, output_path=written)
            _rewrite_rdf_for_deepimagej(written)
        except BaseException as e:
            written.unlink(missing_ok=True)  # a full disk or Ctrl-C must not leave the partial zip behind
            if isinstance(e, OSError) and e.errno is not None and e.filename in (None, str(written)):
                raise OSError(e.errno, e.strerror, str(output_zip)) from None  # about the zip being written
            if isinstance(e, Exception):
                raise ExportError(f"bioimageio.spec could not write the package: {type(e).__name__}: {e}") from None
            raise
        written.rename(partial)
    return Path(output_zip)
