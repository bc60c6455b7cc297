"""What the BioImage Model Zoo expects of a model package beyond a valid rdf, checked before upload.

:func:`check_zoo` reports each expectation as passed / warning / failed with the option or file that fixes
it; it reads any bioimage.io model zip (or rdf.yaml), not only fijiport's. :func:`upload_package`
sends a package that passes ``--strict`` through bioimageio.spec's upload API.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import DataError, FijiportError
from ..package.config_blocks import fijiport_block
from ..package.read import config_dict, offline_tolerant_github_check, read_model_package
from ..package.report import Check, Report, Status
from ..package.untrusted import PackageFiles
from .validate import validate_package, weight_formats_of

PASS, WARN, FAIL = Status.PASSED, Status.WARNING, Status.FAILED
TITLE = "BioImage Model Zoo pre-flight"
COVER_MAX_BYTES = 500 * 1024
COVER_RATIOS = (1.0, 2.0)
"""Width:height ratios the Zoo asks covers to have (1:1 or 2:1)."""
TOKEN_ENV = "BIOIMAGEIO_HYPHA_UPLOAD_TOKEN"
UPLOAD_HELP = (
    "get a token by logging in at https://bioimage.io and creating one at https://bioimage.io/#/api?tab=hypha-rpc, "
    f"then `export {TOKEN_ENV}=...`; or upload the same zip with the web uploader at https://bioimage.io/#/upload"
)


def _expectation(key: str, title: str, status: Status, detail: str, fix: str = "") -> Check:
    """One Zoo expectation as a :class:`~fijiport.package.report.Check` (``key`` names it for scripts)."""
    return Check(title, status, detail, fix=fix, key=key)


def _file_name(file_descr) -> Optional[str]:
    from bioimageio.spec.utils import extract_file_name

    if file_descr is None:
        return None
    source = getattr(file_descr, "source", file_descr)
    try:
        return extract_file_name(source)
    except Exception:
        return str(source)


def check_zoo(package: Path, *, run_test: bool = True, progress: Optional[Callable[[str], None]] = None) -> Report:
    """Every Zoo expectation for ``package``; ``run_test=False`` skips the (slow) official test."""
    package = Path(package)
    if not package.exists():
        raise DataError(f"{package} does not exist; pass a bioimage.io model zip")
    step = progress or (lambda _m: None)
    descr = read_model_package(package, purpose="the Zoo")
    files = PackageFiles(package)
    report = Report(str(package), TITLE)
    add = report.checks.append

    step("running the official bioimage.io test")
    add(
        _official_test(package)
        if run_test
        else _expectation("test", "official bioimage.io test", WARN, "not run (--no-test)", "run without --no-test")
    )
    step("checking metadata")
    add(_readme(descr, files))
    qc = _qc(descr)
    if qc is not None:  # only packages whose export recorded QC figures (config.fijiport.qc) have this expectation
        add(qc)
    add(_covers(descr, files))
    add(_maintainers(descr))
    add(_license(descr))
    add(_citations(descr))
    add(_tags(descr))
    add(_tensors(descr))
    add(_training_data(descr, files))
    add(_version(descr))
    add(_new_upload(descr))
    return report


def _official_test(package: Path) -> Check:

    report = validate_package(package)
    if report.passed:
        return _expectation("test", "official bioimage.io test", PASS, f"passed for {', '.join(weight_formats_of(report))}")
    failed = [
        f"{c.name}{f' ({c.weight_format})' if c.weight_format else ''}: {c.details.splitlines()[0][:120] if c.details else ''}"
        for c in report.failures()
    ]
    return _expectation(
        "test",
        "official bioimage.io test",
        FAIL,
        "; ".join(failed[:3]) or "failed",
        f"`fijiport validate {package}` shows each failing check; re-export the model folder with `fijiport export`",
    )


def _readme(descr, files: PackageFiles) -> Check:
    title = "README with a Validation section"
    name = _file_name(descr.documentation)
    if not name:
        return _expectation(
            "readme",
            title,
            FAIL,
            "the package has no documentation (README.md)",
            "export with fijiport (it writes a model card with '## Validation'), or add README.md as `documentation`",
        )
    data = files.read(name)
    if data is None:
        return _expectation("readme", title, FAIL, f"documentation {name} is missing from the package", "re-export the package")
    text = data.decode("utf-8", errors="replace")
    if not re.search(r"^#+\s.*[vV]alidation", text, re.M):
        return _expectation(
            "readme",
            title,
            FAIL,
            f"{name} has no '# Validation' heading",
            "add a '# Validation' section saying how the model was checked on unseen data "
            "(fijiport's card has one; pass --qc qc.json to fill it with figures)",
        )
    return _expectation("readme", title, PASS, f"{name} has a Validation section")


def _qc(descr) -> Optional[Check]:
    """The QC figures export recorded: a model that makes images worse (or finds nothing) must not be shared."""
    block = fijiport_block(config_dict(descr))
    if block is None or not block.qc:
        return None
    qc, title = block.qc, "QC figures show the model helps"
    where = f"on {qc.get('n_images', '?')} {'training' if qc.get('split') == 'train' else 'held-out'} image(s)"
    fix = "train longer or check the training pairs (`fijiport qc` shows per-image figures), then export again"
    if qc.get("task") == "restoration" and "psnr" in qc and "input" not in qc["psnr"]:  # GT's channels are not the input's
        figures = f"PSNR {qc['psnr']['prediction']:.2f} dB {where}, no input baseline (the GT's channels are not the input's)"
    elif qc.get("task") == "restoration" and "psnr" in qc:
        before, after = qc["psnr"]["input"], qc["psnr"]["prediction"]
        figures = f"PSNR {before:.2f} → {after:.2f} dB {where}"
        if after < before:
            return _expectation("qc", title, FAIL, f"the model makes images worse: {figures}", fix)
    elif qc.get("task") == "denoising" and "residual" in qc:
        r, limits = qc["residual"], qc.get("thresholds", {})
        lag1, corr = float(r["autocorrelation"][0]), float(r["correlation_with_prediction"])
        figures = f"residual autocorrelation {lag1:.3f} at lag 1, correlation with the prediction {corr:.3f} {where}"
        if "psnr" in qc:
            before, after = qc["psnr"]["input"], qc["psnr"]["prediction"]
            figures += f"; PSNR {before:.2f} → {after:.2f} dB against clean images"
            if after < before:
                return _expectation("qc", title, FAIL, f"the model makes images worse: {figures}", fix)
        if lag1 > limits.get("autocorrelation_lag1", 0.3) or corr > limits.get("correlation_with_prediction", 0.3):
            return _expectation("qc", title, WARN, f"the residual holds structure (the network removes more than noise): {figures}",
                                "check the QC panels (`fijiport qc`); train longer or on images like the ones it is used on")  # fmt: skip
    elif qc.get("task") == "segmentation" and "at_iou_0.5" in qc:
        f1 = float(qc["at_iou_0.5"].get("f1", 0.0))
        figures = f"F1 {f1:.3f} at IoU 0.5 {where}"
        if f1 <= 0:
            return _expectation("qc", title, FAIL, f"the model finds no object correctly: {figures}", fix)
    else:
        return None
    if qc.get("from_other_model"):
        return _expectation("qc", title, WARN, f"{figures}, but measured on another model", "export with the qc.json of these weights")
    if qc.get("split") == "train":
        return _expectation("qc", title, WARN, f"{figures}: training images flatter the model", "run `fijiport qc` on DATA/test")
    if "no input baseline" in figures:
        return _expectation(
            "qc", title, WARN, f"{figures}: nothing shows that it helps", "judge the prediction's scores and the QC panels (`fijiport qc`)"
        )
    return _expectation("qc", title, PASS, figures)


def _covers(descr, files: PackageFiles) -> Check:
    title = "cover images (png/jpg, <= 500 KB, 2:1 or 1:1)"
    covers = list(descr.covers or [])
    fix = "export with fijiport (it draws a 2:1 PNG cover), or add a png/jpg under `covers`"
    if not covers:
        return _expectation("covers", title, FAIL, "no cover image", fix)
    problems, warnings = [], []
    for c in covers:
        name = _file_name(c) or "cover"
        if not name.lower().endswith((".png", ".jpg", ".jpeg")):
            problems.append(f"{name} is not png/jpg")
            continue
        data = files.read(name)
        if data is None:
            problems.append(f"{name} is missing from the package")
            continue
        if len(data) > COVER_MAX_BYTES:
            warnings.append(f"{name} is {len(data) / 1024:.0f} KB (> 500 KB)")
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        except Exception as e:
            problems.append(f"{name} cannot be read as an image ({type(e).__name__})")
            continue
        ratio = w / h if h else 0
        if not any(abs(ratio - r) <= 0.02 * r for r in COVER_RATIOS):
            warnings.append(f"{name} is {w}x{h} (aspect {ratio:.2f}, wanted 2:1 or 1:1)")
    if problems:
        return _expectation("covers", title, FAIL, "; ".join(problems + warnings), fix)
    if warnings:
        return _expectation("covers", title, WARN, "; ".join(warnings), "crop or scale the cover to 2:1 or 1:1 and save it under 500 KB")
    return _expectation("covers", title, PASS, f"{len(covers)} cover(s)")


def _maintainers(descr) -> Check:
    title = "a maintainer (or author) with a GitHub user"
    people = [*(descr.maintainers or []), *(descr.authors or [])]
    users = [p.github_user for p in people if getattr(p, "github_user", None)]
    if users:
        return _expectation("maintainers", title, PASS, ", ".join(dict.fromkeys(users)))
    return _expectation(
        "maintainers",
        title,
        FAIL,
        "nobody has a github_user",
        "export with --maintainer GITHUB_USER (or maintainers: [{name, github_user}] in --meta)",
    )


def _license(descr) -> Check:
    title = "SPDX license"
    lic = str(descr.license or "")
    if not lic:
        return _expectation("license", title, FAIL, "no license", "export with --license CC-BY-4.0 (or another SPDX id)")
    known = _spdx()
    if lic not in known:
        return _expectation("license", title, FAIL, f"{lic!r} is not an SPDX license id", "use an SPDX id, e.g. --license CC-BY-4.0")
    if known[lic]:
        return _expectation("license", title, WARN, f"{lic} is a deprecated SPDX id", "use its current SPDX id")
    return _expectation("license", title, PASS, lic)


def _spdx() -> dict[str, bool]:
    """SPDX license ids known to bioimageio.spec -> deprecated?"""
    from importlib import resources

    data = json.loads(resources.files("bioimageio.spec").joinpath("static/spdx_licenses.json").read_text())
    return {d["licenseId"]: bool(d.get("isDeprecatedLicenseId")) for d in data["licenses"]}


def _citations(descr) -> Check:
    title = "citations with a DOI"
    cites = list(descr.cite or [])
    if not cites:
        return _expectation("cite", title, FAIL, "no citation", "export with --cite 'TEXT|DOI' (fijiport adds the CARE/StarDist papers)")
    without = [c.text for c in cites if not getattr(c, "doi", None)]
    if without:
        return _expectation(
            "cite",
            title,
            WARN,
            f"{len(without)} of {len(cites)} without a DOI: {'; '.join(t[:60] for t in without)}",
            "give each citation a DOI (--cite 'TEXT|10.xxxx/...')",
        )
    return _expectation("cite", title, PASS, f"{len(cites)} citation(s), all with a DOI")


def _tags(descr) -> Check:
    from importlib import resources

    title = "tags from the Zoo's categories"
    categories = json.loads(resources.files("bioimageio.spec").joinpath("static/tag_categories.json").read_text())["model"]
    tags = {str(t).lower() for t in (descr.tags or [])}
    covered = {cat for cat, values in categories.items() if tags & set(values)}
    wanted = ("modality", "dims", "content", "task")
    missing = [c for c in wanted if c not in covered]
    fix = "add --tag for " + ", ".join(f"{c} (e.g. {', '.join(categories[c][:3])})" for c in missing)
    if not covered:
        return _expectation("tags", title, FAIL, "no tag from the Zoo's categories", fix)
    if missing:
        return _expectation("tags", title, WARN, f"no {', '.join(missing)} tag", fix)
    return _expectation("tags", title, PASS, ", ".join(sorted(t for t in tags if any(t in v for v in categories.values()))))


def _tensors(descr) -> Check:
    title = "test and sample tensors"
    no_test = [str(t.id) for t in [*descr.inputs, *descr.outputs] if getattr(t, "test_tensor", None) is None]
    no_sample = [str(t.id) for t in [*descr.inputs, *descr.outputs] if getattr(t, "sample_tensor", None) is None]
    if no_test:
        return _expectation("tensors", title, FAIL, f"no test tensor for {', '.join(no_test)}", "re-export with fijiport (it writes both)")
    if no_sample:
        return _expectation(
            "tensors",
            title,
            WARN,
            f"no sample tensor for {', '.join(no_sample)}",
            "add sample_tensor images (fijiport export writes them as TIFF)",
        )
    return _expectation("tensors", title, PASS, "every input and output has both")


def _training_data(descr, files: PackageFiles) -> Check:
    title = "training data described or linked"
    if getattr(descr, "training_data", None) is not None:
        return _expectation("training_data", title, PASS, "training_data is set in the rdf")
    name = _file_name(descr.documentation)
    text = (files.read(name) or b"").decode("utf-8", errors="replace") if name else ""
    m = re.search(r"^#+\s*Training data\s*$(.*?)(?=^#|\Z)", text, re.M | re.S | re.I)
    body = m.group(1).strip() if m else ""
    if body and "not described" not in body.lower():
        return _expectation("training_data", title, PASS, f"README: {body.splitlines()[0][:80]}")
    return _expectation(
        "training_data",
        title,
        WARN,
        "neither training_data in the rdf nor a described Training data section",
        "export with --training-data 'what the model was trained on, or a link'",
    )


def _version(descr) -> Check:
    if getattr(descr, "version", None) is not None:
        return _expectation("version", "a version", PASS, str(descr.version))
    return _expectation("version", "a version", WARN, "no version", "export with --version 1.0.0")


def _new_upload(descr) -> Check:
    title = "no Zoo id (a new upload)"
    if getattr(descr, "id", None):
        return _expectation(
            "id",
            title,
            WARN,
            f"the package has the Zoo id {descr.id}: new uploads must not have one",
            "publish a new version of a Zoo model from its page on https://bioimage.io",
        )
    return _expectation("id", title, PASS, "the Zoo assigns an id on upload")


@dataclass
class UploadPlan:
    endpoint: str
    files: list[tuple[str, int, str]]  # name, bytes, sha256
    manifest: dict


def plan_upload(package: Path) -> UploadPlan:
    """What bioimageio.spec's upload would send: the endpoint, the package files and the rdf manifest."""
    import hashlib

    from bioimageio.spec._internal._settings import settings
    from bioimageio.spec._internal.io import get_reader
    from bioimageio.spec._package import get_package_content

    descr = read_model_package(package, purpose="upload")
    content = get_package_content(descr)
    listed = []
    manifest: dict = {}
    for name, source in content.items():
        if isinstance(source, dict):
            manifest = source
            data = json.dumps(source, sort_keys=True, default=str).encode()
        else:
            data = get_reader(source).read()
        listed.append((name, len(data), hashlib.sha256(data).hexdigest()))
    return UploadPlan(str(settings.hypha_upload), listed, manifest)


def upload_package(
    package: Path, *, dry_run: bool = False, progress: Optional[Callable[[str], None]] = None
) -> tuple[Report, UploadPlan, Optional[str]]:
    """``zoo-check --strict``, then (unless ``dry_run``) the upload; returns the check, the plan and the URL."""
    quick = check_zoo(package, run_test=False, progress=progress)  # metadata first: refuse fast, before the slow test
    if any(c.key != "test" for c in quick.failures(strict=True)):
        report = quick
    else:
        report = check_zoo(package, progress=progress)
    if not report.ok(strict=True):
        names = ", ".join(c.key for c in report.failures(strict=True) if not (report is quick and c.key == "test"))
        raise FijiportError(f"{package} is not ready for the Zoo ({names}); `fijiport zoo-check {package}` lists the fixes")
    plan = plan_upload(package)
    if dry_run:
        return report, plan, None
    if not os.environ.get(TOKEN_ENV):
        raise FijiportError(f"no upload token: {TOKEN_ENV} is not set; nothing was sent. To upload, {UPLOAD_HELP}")
    import httpx
    from bioimageio.spec import upload

    descr = read_model_package(package, purpose="upload")
    try:
        with offline_tolerant_github_check():
            url = upload(descr)
    except httpx.TransportError as e:
        raise FijiportError(
            f"cannot reach the Zoo's upload server {plan.endpoint} ({type(e).__name__}: {e}); "
            "check the network, or use the web uploader at https://bioimage.io/#/upload"
        ) from None
    return report, plan, str(url)
