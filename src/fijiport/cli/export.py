"""``fijiport export``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..config.export import ExportMeta, checked_percentiles
from ..config.loading import load_yaml_config, validate_config
from ..export import ExportOptions, export_model
from ..export.update import apply_update
from ._common import err, out, parse_numbers, print_diffs, spinner


def _meta(
    meta_file: Optional[Path],
    name,
    description,
    authors,
    maintainers,
    license_,
    cites,
    tags,
    version,
    git_repo,
    training_data,
    update: Optional[Path] = None,
    parent: Optional[str] = None,
    changes: Optional[str] = None,
) -> ExportMeta:
    values = load_yaml_config(meta_file)
    if name:
        values["name"] = name
    if description:
        values["description"] = description
    if authors:
        values["authors"] = [{"name": a} for a in authors]
    if maintainers:
        values["maintainers"] = [{"github_user": m} for m in maintainers]
    if license_:
        values["license"] = license_
    if cites:
        entries = []
        for c in cites:
            text, _, ref = c.partition("|")
            ref = ref.strip()
            entry = {"text": text.strip()}
            if ref.startswith("http") and "doi.org/" not in ref:
                entry["url"] = ref
            elif ref:
                entry["doi"] = ref
            entries.append(entry)
        values["cite"] = list(values.get("cite", [])) + entries
    if tags:
        values["tags"] = list(values.get("tags", [])) + list(tags)
    if version:
        values["version"] = version
    if git_repo:
        values["git_repo"] = git_repo
    if training_data:
        values["training_data"] = training_data

    values = apply_update(values, update, parent, changes)
    return validate_config(ExportMeta, values, source=f"metadata{' in ' + str(meta_file) if meta_file else ''}")


def export(
    model_dir: Path = typer.Argument(
        ...,
        help="csbdeep CARE or stardist model folder (config.json + weights_best.h5 [+ thresholds.json]), trained by fijiport or elsewhere.",
        show_default=False,
    ),
    output: Path = typer.Option(..., "--output", "-o", help="bioimage.io package to write (.zip).", show_default=False),
    test_input: Optional[Path] = typer.Option(
        None,
        "--test-input",
        help="A typical input image (TIFF) for the test tensors and cover; default: the first held-out test image of a fijiport-trained model.",
    ),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="Weights file in the model folder (default weights_best.h5, else weights_last.h5)."
    ),
    percentiles: Optional[str] = typer.Option(
        None,
        "--percentiles",
        help="Input normalisation percentiles LOW,HIGH; default: as recorded by fijiport training, else csbdeep's 2,99.8.",
    ),
    qc_json: Optional[Path] = typer.Option(None, "--qc", help="qc.json from `fijiport qc`; its figures go into the model card."),
    meta_file: Optional[Path] = typer.Option(
        None,
        "--meta",
        help="YAML with rdf keys: name, description, authors (name, affiliation, orcid, github_user), maintainers, license, cite (text, doi), tags, version, git_repo, training_data.",
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Model name shown in the Zoo and in deepImageJ."),
    description: Optional[str] = typer.Option(
        None, "--description", help="One or two sentences on what the model restores and on which data."
    ),
    author: Optional[list[str]] = typer.Option(
        None, "--author", help="Author's full name; repeat for several (use --meta for affiliation and ORCID)."
    ),
    maintainer: Optional[list[str]] = typer.Option(None, "--maintainer", help="Maintainer's GitHub user name; repeat for several."),
    license_: Optional[str] = typer.Option(None, "--license", help="SPDX license identifier (default CC-BY-4.0)."),
    cite: Optional[list[str]] = typer.Option(
        None, "--cite", help="A reference as 'TEXT|DOI' (or 'TEXT|URL'); the CARE paper is always cited."
    ),
    tag: Optional[list[str]] = typer.Option(
        None, "--tag", help="Keyword (modality, content, task), e.g. nuclei, denoising; repeat for several."
    ),
    version: Optional[str] = typer.Option(None, "--version", help="Version of this model, e.g. 1.0.0."),
    git_repo: Optional[str] = typer.Option(None, "--git-repo", help="Repository with the training code or data description."),
    training_data: Optional[str] = typer.Option(
        None, "--training-data", help="Description or link of the training data for the model card."
    ),
    fiji_zip: Optional[Path] = typer.Option(
        None,
        "--fiji-zip",
        help="Also write the TensorFlow SavedModel zip that CSBDeep-Fiji and KNIME load, plus a ready Fiji macro next to it (same name, .ijm).",
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (≤ 17: onnxruntime 1.13.1 in deepImageJ fails on 18)."),
    update: Optional[Path] = typer.Option(
        None,
        "--update",
        help="An earlier package of this model: keep its Zoo id, name, authors, maintainers, citations, tags and license (options given here still win) and add this version to the card's version history; needs a newer --version.",
    ),
    parent: Optional[str] = typer.Option(
        None,
        "--parent",
        help="Zoo id of the published model this package is a new version of (when its zip is not at hand); needs --version.",
    ),
    changes: Optional[str] = typer.Option(
        None, "--changes", help="What changed in this version, for the card's version history (with --update or --parent)."
    ),
    qc_from_other_model: bool = typer.Option(
        False,
        "--qc-from-other-model",
        help="Accept a --qc report that measured other weights than these (export refuses it otherwise); the card says so.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output zip if it exists."),
) -> None:
    """Export a CARE or StarDist model folder to a bioimage.io model package (spec 0.5).

    CARE: Keras, frozen TensorFlow (loads in TF 1.13–2.10) and ONNX weights, each checked to
    reproduce the Keras output. StarDist: frozen TensorFlow and ONNX weights of the full-resolution
    network plus stardist_postprocessing, so the package outputs labels; the Keras weights, config
    and thresholds are attached for deepImageJ. Both get test and sample tensors, a 2:1 cover and a
    model card; the zip is written to a temporary file and renamed at the end.

    Example: [bold]fijiport export models/care_nuclei -o care_nuclei.zip --qc qc_report/qc.json --author "Jane Doe" --maintainer janedoe[/]
    """

    pct = checked_percentiles(parse_numbers(percentiles, float, "--percentiles", count=2))
    meta = _meta(
        meta_file, name, description, author, maintainer, license_, cite, tag, version, git_repo, training_data, update, parent, changes
    )
    options = ExportOptions(
        test_input=test_input,
        weights=weights,
        percentiles=pct,
        qc_json=qc_json,
        qc_from_other_model=qc_from_other_model,
        opset=opset,
        fiji_zip=fiji_zip,
        overwrite=overwrite,
    )
    with spinner("exporting") as step:
        result = export_model(model_dir, output, meta, options, progress=step)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    print_diffs(str(output), result.max_diffs, "max |diff| to Keras")
    out.print(
        f"halo {result.halo} px, input size ≥ {result.min_size} in steps of {result.div_by}; graph rewrites: "
        f"{', '.join(result.rewrites) or 'none'}"
    )
    out.print(f"package: {output}")
    if result.fiji_zip:
        out.print(f"Fiji/KNIME zip: {result.fiji_zip}")
        out.print(f"Fiji macro: {result.fiji_macro}")
        for extra in result.fiji_extras:
            out.print(f"N2V Fiji plugin zip: {extra}" if extra.name.endswith(".n2v-plugin.zip") else f"also: {extra}")
