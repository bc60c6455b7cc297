"""``fijiport demo``: the whole pipeline, CARE then StarDist then Noise2Void, on data that ships inside
installed packages.

stardist's bundled nuclei image stands in for the high-SNR ground truth; simulated low-light
acquisitions of it (Poisson noise at ~15 photons plus read noise) are CARE's input, its label mask
StarDist's ground truth, and noisier copies (30 photons) what N2V trains on without the clean image,
which only its QC sees. Nothing is downloaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .config.care import CareTrainConfig
from .config.data import PrepareCareConfig, PrepareStardistConfig
from .config.export import CiteEntry, ExportMeta, Person
from .config.n2v import N2vTrainConfig, PrepareN2vConfig
from .config.stardist import StardistTrainConfig
from .data.care import prepare_care
from .data.n2v import prepare_n2v
from .data.stardist import prepare_stardist
from .data.synthetic import write_care_pairs, write_noisy_images
from .errors import OutputExistsError
from .export import ExportOptions, export_care, export_model, export_stardist
from .package.report import Report
from .qc import qc_care, qc_model, qc_stardist
from .runtimes import runtime_status
from .training import train_care, train_n2v, train_stardist
from .verify.validate import validate_package

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    epochs: int = 10
    steps_per_epoch: int = 25
    patch_size: tuple[int, int] = (64, 64)
    patches_per_image: int = 48
    batch_size: int = 16
    seed: int = 0
    stardist: bool = True
    stardist_epochs: int = 15
    stardist_steps_per_epoch: int = 20
    n2v: bool = True
    n2v_epochs: int = 6
    n2v_steps_per_epoch: int = 20


@dataclass
class DemoResult:
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)
    qc_summary: dict = field(default_factory=dict)
    validation_status: str = ""
    max_diffs: dict[str, float] = field(default_factory=dict)
    runtime_rows: list[dict] = field(default_factory=list)
    runtimes_note: str = ""
    stardist_f1: Optional[float] = None
    stardist_validation: str = ""
    stardist_runtime_rows: list[dict] = field(default_factory=list)
    n2v_qc: dict = field(default_factory=dict)
    """The N2V part's QC: ``residual`` (without ground truth) and ``summary`` (against the clean scenes)."""
    n2v_validation: str = ""
    n2v_runtime_rows: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    out_dir: Path,
    settings: Optional[DemoSettings] = None,
    *,
    overwrite: bool = False,
    step: Optional[Callable[[str], None]] = None,
    train_progress=None,
) -> DemoResult:
    """prepare → train (short) → qc → export → validate, all under ``out_dir``."""

    settings = settings or DemoSettings()
    notify = step or (lambda _m: None)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out_dir} exists and is not empty; choose another -o or pass --overwrite")
        import shutil

        for name in (
            "raw",
            "data",
            "models",
            "qc",
            "care_nuclei_2d.zip",
            "care_nuclei_2d_fiji.zip",
            "care_nuclei_2d_fiji.ijm",
            "validation.json",
            "validation.md",
            "stardist",
            "n2v",
        ):
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir)
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        result.seconds[name] = round(now - clock, 1)
        clock = now

    notify("simulating low-light acquisitions of stardist's nuclei image")
    low_dir, gt_dir = write_care_pairs(out_dir / "raw", dims=2, seed=settings.seed)
    result.paths["raw low / GT"] = out_dir / "raw"
    notify("prepare: pairing and splitting")
    prepare_care(low_dir, gt_dir, out_dir / "data", PrepareCareConfig(axes="YX", test_fraction=0.3, seed=settings.seed))
    result.paths["data"] = out_dir / "data"
    lap("prepare")

    notify("train: CARE 2D")
    model_dir = out_dir / "models" / "care_nuclei_2d"
    train_care(
        out_dir / "data",
        model_dir,
        CareTrainConfig(
            epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch,
            patch_size=list(settings.patch_size),
            patches_per_image=settings.patches_per_image,
            batch_size=settings.batch_size,
            seed=settings.seed,
            tensorboard=False,
        ),
        progress=train_progress,
    )
    result.paths["model folder"] = model_dir
    lap("train")

    notify("qc: predicting held-out images")
    qc = qc_care(model_dir, out_dir / "data" / "test", out_dir / "qc")
    result.qc_summary = qc.summary()
    result.paths["QC report"] = out_dir / "qc" / "qc.md"
    lap("qc")

    notify("export: bioimage.io package")
    meta = ExportMeta(
        name="CARE nuclei denoising demo",
        description="Demo CARE network that denoises simulated low-light acquisitions of fluorescent nuclei "
        "(stardist's bundled test image); trained for a minute on a CPU: for trying the pipeline, not for analysis.",
        authors=[Person(name="fijiport demo")],
        tags=["fluorescence-light-microscopy", "nuclei", "2d", "demo"],
        version="0.1.0",
        training_data="Nine 160×160 crops of stardist's test_image_nuclei_2d as ground truth, with simulated "
        "low-light acquisitions (Poisson noise at 15 photons for the brightest pixel, offset 100, read noise 3).",
        cite=[
            CiteEntry(
                text="Schmidt et al., Cell Detection with Star-convex Polygons, MICCAI 2018 (source of the demo image)",
                doi="10.1007/978-3-030-00934-2_30",
            )
        ],
    )
    zip_path = out_dir / "care_nuclei_2d.zip"
    export = export_care(
        model_dir,
        zip_path,
        meta,
        ExportOptions(qc_json=out_dir / "qc" / "qc.json", fiji_zip=out_dir / "care_nuclei_2d_fiji.zip"),
        progress=notify,
    )
    result.max_diffs = export.max_diffs
    result.paths["bioimage.io package"] = zip_path
    assert export.fiji_zip is not None and export.fiji_macro is not None  # asked for with fiji_zip
    result.paths["CSBDeep-Fiji / KNIME zip"] = export.fiji_zip
    result.paths["Fiji macro"] = export.fiji_macro
    lap("export")

    with_runtimes = all(s.installed for s in runtime_status())
    if not with_runtimes:
        result.runtimes_note = "runtimes not installed: `fijiport runtimes install` (or `make demo`) adds the Fiji/KNIME check"
    notify("validate: bioimageio.core tests of every weight format" + (" and the Fiji/KNIME runtimes" if with_runtimes else ""))
    report = validate_package(zip_path, progress=notify, runtimes=with_runtimes)
    result.runtime_rows = _runtime_rows(report)
    report.save_json(out_dir / "validation.json")
    report.save_markdown(out_dir / "validation.md")
    result.validation_status = report.status.value
    result.paths["validation report"] = out_dir / "validation.md"
    lap("validate")
    if settings.stardist:
        _stardist_part(out_dir / "stardist", settings, result, notify, train_progress, with_runtimes)
        lap("stardist")
    if settings.n2v:
        _n2v_part(out_dir / "n2v", settings, result, notify, train_progress, with_runtimes)
        lap("n2v")
    return result


def _stardist_part(root: Path, settings: DemoSettings, result: DemoResult, notify, train_progress, with_runtimes: bool) -> None:
    """StarDist 2D on stardist's bundled nuclei image and its label mask (four 256×256 crops)."""
    import numpy as np
    import tifffile
    from stardist.data import test_image_nuclei_2d

    notify("StarDist: crops of the bundled nuclei image and its labels")
    img, lbl = test_image_nuclei_2d(return_mask=True)
    for sub in ("images", "masks"):
        (root / "raw" / sub).mkdir(parents=True, exist_ok=True)
    for i, (y, x) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
        tifffile.imwrite(root / "raw" / "images" / f"nuclei_{i}.tif", np.asarray(img)[y : y + 256, x : x + 256])
        tifffile.imwrite(root / "raw" / "masks" / f"nuclei_{i}.tif", np.asarray(lbl)[y : y + 256, x : x + 256])
    prepare_stardist(
        root / "raw" / "images",
        root / "data",
        masks_dir=root / "raw" / "masks",
        config=PrepareStardistConfig(test_fraction=0.25, seed=settings.seed),
    )
    notify("StarDist: training (short) and threshold optimisation")
    model_dir = root / "models" / "stardist_nuclei_2d"
    train_stardist(
        root / "data",
        model_dir,
        StardistTrainConfig(
            epochs=settings.stardist_epochs,
            steps_per_epoch=settings.stardist_steps_per_epoch,
            patch_size=[96, 96],
            unet_first_filters=16,
            learning_rate=1e-3,
            validation_fraction=0.34,
            seed=settings.seed,
            tensorboard=False,
        ),
        progress=train_progress,
    )
    notify("StarDist: QC on the held-out crop")
    qc = qc_stardist(model_dir, root / "data" / "test", root / "qc")
    result.stardist_f1 = qc.at_iou_05["f1"]
    result.paths["StarDist QC report"] = root / "qc" / "qc.md"
    notify("StarDist: export")
    meta = ExportMeta(
        name="StarDist nuclei demo",
        authors=[Person(name="fijiport demo")],
        version="0.1.0",
        description="Demo StarDist 2D model trained for a minute on three crops of stardist's bundled nuclei image: "
        "for trying the pipeline, not for analysis.",
        tags=["fluorescence-light-microscopy", "nuclei", "2d", "demo"],
    )
    export = export_stardist(
        model_dir,
        root / "stardist_nuclei_2d.zip",
        meta,
        ExportOptions(qc_json=root / "qc" / "qc.json", fiji_zip=root / "stardist_nuclei_2d_fiji.zip"),
        progress=notify,
    )
    result.paths["StarDist package"] = export.path
    assert export.fiji_zip is not None
    result.paths["StarDist-Fiji zip + macro"] = export.fiji_zip
    notify("StarDist: validation")
    report = validate_package(export.path, progress=notify, runtimes=with_runtimes)
    report.save_markdown(root / "validation.md")
    report.save_json(root / "validation.json")
    result.stardist_validation = report.status.value
    result.stardist_runtime_rows = _runtime_rows(report)


def _n2v_part(root: Path, settings: DemoSettings, result: DemoResult, notify, train_progress, with_runtimes: bool) -> None:
    """Noise2Void on noisy copies of nine crops of the bundled nuclei image, trained without the clean crops; QC
    against them (and from the residual alone, which is what a lab without ground truth gets)."""
    notify("N2V: simulating noisy acquisitions (the clean crops are kept for QC only)")
    noisy, clean = write_noisy_images(root / "raw", dims=2, seed=settings.seed, n=9)
    prepare_n2v(
        [noisy], root / "data", gt_dir=clean, config=PrepareN2vConfig(validation_fraction=0.12, test_fraction=0.25, seed=settings.seed)
    )
    notify("N2V: training (short) on the noisy images alone")
    model_dir = root / "models" / "n2v_nuclei_2d"
    train_n2v(
        root / "data",
        model_dir,
        N2vTrainConfig(epochs=settings.n2v_epochs, steps_per_epoch=settings.n2v_steps_per_epoch, batch_size=16, patch_size=[64, 64],
                       unet_first_filters=16, learning_rate=1e-3, seed=settings.seed, tensorboard=False),
        progress=train_progress,
    )  # fmt: skip
    notify("N2V: QC on the held-out images")
    qc = qc_model(model_dir, root / "data" / "test", root / "qc")
    result.n2v_qc = {"residual": dict(getattr(qc, "residual", {})), "summary": getattr(qc, "summary", None)}
    result.paths["N2V QC report"] = root / "qc" / "qc.md"
    notify("N2V: export")
    meta = ExportMeta(
        name="Noise2Void nuclei demo",
        authors=[Person(name="fijiport demo")],
        version="0.1.0",
        description="Demo Noise2Void 2D model trained for a minute on simulated noisy acquisitions of stardist's bundled "
        "nuclei image, without their clean versions: for trying the pipeline, not for analysis.",
        tags=["fluorescence-light-microscopy", "nuclei", "2d", "denoising", "demo"],
    )
    export = export_model(model_dir, root / "n2v_nuclei_2d.zip", meta,
                          ExportOptions(qc_json=root / "qc" / "qc.json", fiji_zip=root / "n2v_nuclei_2d_fiji.zip"), progress=notify)  # fmt: skip
    result.paths["N2V package"] = export.path
    assert export.fiji_zip is not None
    result.paths["N2V CSBDeep-Fiji zip + macro"] = export.fiji_zip
    if export.fiji_extras:
        result.paths["N2V plugin zip"] = export.fiji_extras[0]
    notify("N2V: validation")
    report = validate_package(export.path, progress=notify, runtimes=with_runtimes)
    report.save_markdown(root / "validation.md")
    report.save_json(root / "validation.json")
    result.n2v_validation = report.status.value
    result.n2v_runtime_rows = _runtime_rows(report)
    if with_runtimes and export.fiji_extras:
        from .runtimes.matrix import check_runtimes

        plugin = check_runtimes(export.fiji_extras[0], progress=notify)
        result.n2v_runtime_rows += [dict(c.to_dict(), name="N2V-Fiji (plugin zip)") for c in plugin.checks if c.name == "N2V-Fiji"]
        if not plugin.passed:
            result.n2v_validation = "failed"


def _runtime_rows(report: Report) -> list[dict]:
    """The consumer rows of a validation's runtime matrix (empty without ``--runtimes``), as plain data."""
    matrix = report.parts.get("runtime_matrix")
    return [] if matrix is None else [c.to_dict() for c in matrix.checks]
