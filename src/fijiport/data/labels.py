"""Label images for StarDist: what counts as one, relabelling, and a per-file report.

A label image holds one integer value per object (background 0). Float images, negative values,
and binary masks whose foreground holds touching objects are refused with the fix; a binary mask of
separate objects is labelled by connected components. An 8-bit label image of more than 255 objects
wraps its ids (256 becomes background, 257 takes id 1): one that uses all 255 values, or whose labels
are often made of separate parts, is refused. Labels made of disconnected parts, objects that
star-convex polygons describe poorly (what StarDist predicts) and tiny objects are reported, not changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, cast

import numpy as np

from ..errors import DataError

log = logging.getLogger(__name__)

STAR_CONVEX_IOU = 0.7
"""Objects whose best star-convex polygon (32 rays) overlaps them by less than this are reported."""
WRAPPED_PARTS = (5, 0.1)
"""An 8-bit mask with at least this many labels (and this fraction of them) made of separate parts is refused as
wrapped: ids past 255 reused, each covering two objects."""
FIJI_16BIT_FIX = "in Fiji use Image > Type > 16-bit on the label image before saving, or save ROI sets and use --rois"


@dataclass
class LabelReport:
    name: str
    n_objects: int
    tiny: list[int] = field(default_factory=list)
    not_star_convex: list[int] = field(default_factory=list)
    disconnected: list[int] = field(default_factory=list)
    """Labels (the mask's own values) whose pixels form more than one connected region."""
    relabelled: bool = False
    from_binary: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n_objects": self.n_objects,
            "tiny_objects": len(self.tiny),
            "not_star_convex": len(self.not_star_convex),
            "disconnected_labels": len(self.disconnected),
            "relabelled": self.relabelled,
            "from_binary_mask": self.from_binary,
            "notes": self.notes,
        }


def check_label_image(
    mask: np.ndarray, image_shape: tuple[int, ...], path: Path, *, min_area: int = 10, n_rays: int = 32
) -> tuple[np.ndarray, LabelReport]:
    """Validate ``mask`` against its image and return it relabelled 1..N with a report."""
    from scipy import ndimage
    from skimage.segmentation import relabel_sequential

    name = Path(path).name
    mask = np.asarray(mask)
    if mask.shape != tuple(image_shape):
        raise DataError(
            f"mask {path} has shape {mask.shape} but its image has {tuple(image_shape)}; "
            "masks must have exactly the image's size (no channels, same crop)"
        )
    if mask.dtype.kind == "f":
        raise DataError(
            f"mask {path} is a floating-point image ({mask.dtype}); a label image holds one integer per "
            "object: in Fiji use Image > Type > 16-bit on the label image, or save ROIs and use --rois"
        )
    if mask.dtype.kind == "b":
        mask = mask.astype(np.uint8)
    if mask.dtype.kind not in "ui":
        raise DataError(f"mask {path} has dtype {mask.dtype}; expected an integer label image")
    if mask.min() < 0:
        raise DataError(
            f"mask {path} has negative values (min {mask.min()}); labels must be 0 (background) or positive: "
            "redo the labels (in Fiji: Image > Type > 16-bit on a label image, or save ROIs and use --rois)"
        )
    report = LabelReport(name, 0)
    values = np.unique(mask)
    fg = values[values > 0]
    if len(fg) == 0:
        report.notes.append("empty mask: no objects (the image still teaches the network what background looks like)")
        return mask.astype(np.uint16), report
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    if len(fg) == 1:
        # binary (0/1 or 0/255): separate objects are fine, touching objects cannot be separated
        components, n = cast(tuple[np.ndarray, int], ndimage.label(mask > 0, structure=structure))
        report.from_binary = True
        mask = components
        report.notes.append(f"binary mask: {n} connected component(s) labelled as objects")
        bad = _not_star_convex(mask, n_rays)
        if n == 1 and not bad:
            report.notes.append("a single object: check that this is a label image and not a foreground mask")
        if bad:
            raise DataError(
                f"mask {path} is binary (one value, {int(fg[0])}) and {len(bad)} of its {n} connected regions are far from "
                "star-convex, which is what touching objects look like; save a label image with one value per object "
                "(in Fiji: save the ROI Manager's ROIs as <image name>.zip and pass their folder with --rois)"
            )
    out, _, _ = relabel_sequential(mask.astype(np.int64))
    report.relabelled = not np.array_equal(np.unique(out)[1:], np.unique(mask)[np.unique(mask) > 0]) or report.from_binary
    report.n_objects = int(out.max())
    _refuse_intensity_image(out, path)
    if not report.from_binary:
        parts = _disconnected_labels(mask)
        report.disconnected = sorted(parts)
        _refuse_wrapped_8bit(mask, fg, report.disconnected, path)
        if report.disconnected:
            n_parts = sum(parts.values())
            shown = ", ".join(map(str, report.disconnected[:5])) + (", ..." if len(report.disconnected) > 5 else "")
            report.notes.append(f"{len(report.disconnected)} label(s) made of disconnected parts ({n_parts} parts; ids {shown})")
            log.warning(
                "mask %s: %d label(s) are made of disconnected parts (%d parts in all; e.g. id %d); StarDist takes each label "
                "for one object: give each object its own id, or join the parts if they are one object",
                path,
                len(report.disconnected),
                n_parts,
                report.disconnected[0],
            )
    areas = np.bincount(out.ravel())[1:]
    report.tiny = [int(i + 1) for i in np.flatnonzero(areas < min_area)]
    report.not_star_convex = _not_star_convex(out, n_rays)
    dtype = np.uint16 if report.n_objects < 2**16 else np.uint32
    return out.astype(dtype), report


def _disconnected_labels(mask: np.ndarray) -> dict[int, int]:
    """The label values whose pixels form more than one connected region (touching along faces, edges or
    corners), with their number of regions."""
    from skimage.measure import label

    regions = cast(np.ndarray, label(mask, background=0, connectivity=mask.ndim))  # an array unless return_num
    value_of = np.zeros(int(regions.max()) + 1, dtype=np.int64)
    value_of[regions.ravel()] = mask.ravel()  # every pixel of a region holds the same value
    values, parts = np.unique(value_of[1:], return_counts=True)
    return {int(v): int(n) for v, n in zip(values, parts) if n > 1}


def _refuse_wrapped_8bit(mask: np.ndarray, fg: np.ndarray, disconnected: list[int], path: Path) -> None:
    """Refuse an 8-bit mask whose ids wrapped past 255: all 255 values in use, or many labels in separate parts."""
    if mask.dtype.itemsize != 1:
        return
    if len(fg) >= 255:
        raise DataError(
            f"mask {path} is 8-bit and uses all 255 label values, so it cannot tell more objects apart: ids past 255 "
            f"wrapped around or were clipped ({len(disconnected)} values now cover separate parts): {FIJI_16BIT_FIX}"
        )
    n_min, fraction = WRAPPED_PARTS
    if len(disconnected) >= max(n_min, fraction * len(fg)):
        raise DataError(
            f"mask {path} is 8-bit and {len(disconnected)} of its {len(fg)} label values cover separate parts, as when ids "
            f"past 255 wrap around or are scaled down and one value labels several objects: {FIJI_16BIT_FIX}"
        )


def _refuse_intensity_image(lbl: np.ndarray, path: Path, min_labels: int = 20) -> None:
    """An intensity image given as a mask: each grey value's pixels are scattered over the whole image, where a
    label's pixels form one object. Refused when most of at least ``min_labels`` values span over a quarter of it."""
    from scipy import ndimage

    if lbl.max() < min_labels:
        return
    spans = np.array([np.prod([s.stop - s.start for s in box]) for box in ndimage.find_objects(lbl) if box is not None])
    if np.mean(spans > 0.25 * lbl.size) > 0.5:
        raise DataError(
            f"mask {path} looks like an intensity image, not a label image: most of its {int(lbl.max())} values "
            "are scattered over the whole image instead of forming one object each; pass the label images "
            "(one integer per object, background 0) with --masks, or ImageJ ROI sets with --rois"
        )


def _not_star_convex(lbl: np.ndarray, n_rays: int) -> list[int]:
    """Labels whose star-convex reconstruction (stardist's own) has IoU < :data:`STAR_CONVEX_IOU`."""
    if lbl.ndim != 2 or lbl.max() == 0:
        return []  # 3D reconstruction needs a ray set per anisotropy; reported in 2D only
    from stardist import relabel_image_stardist

    lbl = lbl.astype(np.int32)
    recon = relabel_image_stardist(lbl, n_rays=n_rays)
    bad = []
    for lab in range(1, int(lbl.max()) + 1):
        obj = lbl == lab
        if not obj.any():
            continue
        rec = recon == lab
        union = np.logical_or(obj, rec).sum()
        if union and np.logical_and(obj, rec).sum() / union < STAR_CONVEX_IOU:
            bad.append(lab)
    return bad


def masks_summary(reports: list[LabelReport]) -> dict[str, int]:
    return {
        "images": len(reports),
        "objects": sum(r.n_objects for r in reports),
        "tiny": sum(len(r.tiny) for r in reports),
        "not_star_convex": sum(len(r.not_star_convex) for r in reports),
        "disconnected_labels": sum(len(r.disconnected) for r in reports),
    }


def first_problem(reports: list[LabelReport]) -> Optional[str]:
    for r in reports:
        if r.not_star_convex:
            return f"{r.name}: {len(r.not_star_convex)} object(s) far from star-convex"
    return None


def object_stats(label_images: list[np.ndarray]) -> dict[str, float]:
    """Objects per label image set: how many, their median area (pixels/voxels) and how many per million pixels.
    Recorded for the training masks so that predictions far from them can be flagged."""
    areas: list[np.ndarray] = []
    pixels = 0
    for lbl in label_images:
        lbl = np.asarray(lbl)
        pixels += lbl.size
        counts = np.bincount(lbl.ravel().astype(np.int64))[1:] if lbl.size else np.zeros(0, np.int64)
        areas.append(counts[counts > 0])
    all_areas = np.concatenate(areas) if areas else np.zeros(0)
    n = int(all_areas.size)
    return {
        "objects": n,
        "median_area": float(np.median(all_areas)) if n else 0.0,
        "objects_per_megapixel": round(n / max(pixels, 1) * 1e6, 3),
    }


def implausible_objects(found: dict[str, float], reference: dict[str, float], what: str = "the training masks") -> Optional[str]:
    """Why the objects ``found`` in an image are implausible against ``reference`` (both from :func:`object_stats`),
    or None: a median object area below a fifth or above five times the reference's, or ten times as many objects
    per pixel. A barely trained StarDist model, say, finds tens of thousands of one-pixel objects."""
    if not found.get("objects") or not reference.get("objects") or not reference.get("median_area"):
        return None
    ratio = found["median_area"] / reference["median_area"]
    density = found["objects_per_megapixel"] / max(reference["objects_per_megapixel"], 1e-9)
    if ratio < 0.2 or ratio > 5 or density > 10:
        return (
            f"{int(found['objects'])} objects of median area {found['median_area']:g} px, where {what} have a median area of "
            f"{reference['median_area']:g} px and {reference['objects_per_megapixel']:g} objects per megapixel "
            f"(here {found['objects_per_megapixel']:g}): the model looks barely trained, or these images are not like its "
            "training data"
        )
    return None


def check_label_frames(
    mask: np.ndarray, n_frames: int, frame_shape: tuple[int, ...], path: Path, *, min_area: int = 10
) -> tuple[np.ndarray, LabelReport]:
    """Validate the label stack of a time-lapse (one label image per frame, T first) frame by frame, as
    :func:`check_label_image` checks an image's; each frame relabelled 1..N (StarDist learns frames as images), one
    report over all frames (its notes say the frame)."""
    mask = np.asarray(mask)
    expected = (n_frames, *frame_shape)
    if mask.shape != expected:
        single = mask.shape == tuple(frame_shape)
        raise DataError(
            f"mask {path} has shape {mask.shape} but its image is a time-lapse of {n_frames} frames of {tuple(frame_shape)}; "
            + (
                "a time-lapse needs one label image per frame: save the labels as a stack with T first (Fiji: "
                "Image > Stacks > Images to Stack, then Image > Properties... frames), or pass ROI sets drawn on each frame"
                if single
                else f"save its labels as a stack of shape {expected} (T first), or pass ROI sets drawn on each frame"
            )
        )
    report = LabelReport(Path(path).name, 0)
    frames = []
    for k in range(n_frames):
        frame, r = check_label_image(mask[k], tuple(frame_shape), Path(f"{path} (frame {k + 1})"), min_area=min_area)
        frames.append(frame)
        report.n_objects += r.n_objects
        report.tiny += r.tiny
        report.not_star_convex += r.not_star_convex
        report.disconnected += r.disconnected
        report.relabelled |= r.relabelled
        report.from_binary |= r.from_binary
        report.notes += [f"frame {k + 1}: {note}" for note in r.notes]
    dtype = np.uint32 if any(f.dtype == np.uint32 for f in frames) else np.uint16
    return np.stack(frames).astype(dtype), report
