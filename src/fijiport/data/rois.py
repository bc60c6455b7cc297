"""ImageJ ROI sets (``<image name>.zip`` from the ROI Manager) rendered into label images.

ImageJ fills a ROI by pixel centres: pixel ``(x, y)`` belongs to it when the point
``(x + 0.5, y + 0.5)`` lies inside the outline (even-odd rule, so composite ROIs keep their
holes), a centre exactly on an outline counts as inside on the right side of a span and outside
on its left. Rectangles cover ``[left, right) × [top, bottom)``; ovals the pixels whose centres lie
inside the ellipse inscribed in their integer bounds. ROI ``i`` (in ROI-Manager order) gets label ``i + 1``;
where ROIs overlap the later one wins, as when ImageJ paints them in order. Tests compare these
masks with masks painted by ImageJ itself from the same zips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError


def read_rois(path: Path) -> list:
    """All ROIs of an ImageJ ``.roi`` file or ROI-set ``.zip``, in ROI-Manager order."""
    import roifile

    try:
        rois = roifile.roiread(str(path))
    except Exception as e:
        raise DataError(
            f"cannot read {path} as an ImageJ ROI set ({type(e).__name__}: {e}); save it from Fiji's ROI Manager with More > Save..."
        ) from None
    return rois if isinstance(rois, list) else [rois]


def _fill_paths(shape: tuple[int, int], paths: list[np.ndarray]) -> np.ndarray:
    """Pixels whose centres lie inside ``paths`` (even-odd over all sub-paths), ImageJ's rule."""
    h, w = shape
    inside = np.zeros(shape, dtype=bool)
    edges = []
    for p in paths:
        p = np.asarray(p, dtype=np.float64)
        if len(p) < 3:
            continue
        q = np.roll(p, -1, axis=0)
        edges.append(np.concatenate([p, q], axis=1))  # x0, y0, x1, y1
    if not edges:
        return inside
    e = np.concatenate(edges)
    ymin = max(0, int(np.floor(min(e[:, 1].min(), e[:, 3].min()))))
    ymax = min(h - 1, int(np.ceil(max(e[:, 1].max(), e[:, 3].max()))))
    xs = np.arange(w) + 0.5
    for y in range(ymin, ymax + 1):
        yc = y + 0.5
        y0, y1 = e[:, 1], e[:, 3]
        crosses = ((y0 <= yc) & (y1 > yc)) | ((y1 <= yc) & (y0 > yc))
        if not crosses.any():
            continue
        ec = e[crosses]
        t = (yc - ec[:, 1]) / (ec[:, 3] - ec[:, 1])
        xc = np.sort(ec[:, 0] + t * (ec[:, 2] - ec[:, 0]))
        # ImageJ fills from floor(c1 + 0.5) to floor(c2 + 0.5) exclusive: c1 < centre <= c2
        count = np.searchsorted(xc, xs, side="left")  # crossings strictly left of each pixel centre
        inside[y] = (count % 2) == 1
    return inside


def roi_mask(roi, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of one ROI in an image of ``shape`` (2D)."""
    from roifile import ROI_TYPE

    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    if roi.roitype == ROI_TYPE.RECT and not getattr(roi, "subpixelrect", False) and not roi.composite:
        if getattr(roi, "arc_size", 0):
            raise DataError("rounded rectangles are not supported; convert them to polygons in Fiji (Edit > Selection > Interpolate)")
        mask[max(roi.top, 0) : min(roi.bottom, h), max(roi.left, 0) : min(roi.right, w)] = True
        return mask
    if roi.roitype == ROI_TYPE.OVAL and not roi.composite:
        # ImageJ paints ovals from their integer bounds, also when sub-pixel bounds are stored (measured)
        left, top, width, height = roi.left, roi.top, roi.right - roi.left, roi.bottom - roi.top
        cx, cy, rx, ry = left + width / 2, top + height / 2, width / 2, height / 2
        yy, xx = np.mgrid[0:h, 0:w]
        return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 < 1.0
    if roi.roitype in (ROI_TYPE.LINE, ROI_TYPE.POLYLINE, ROI_TYPE.FREELINE, ROI_TYPE.ANGLE, ROI_TYPE.POINT, ROI_TYPE.NOROI):
        raise DataError(
            f"ROI {roi.name!r} is a {roi.roitype.name.lower()} ROI, not an area; keep only area ROIs (polygon, freehand, traced, rectangle, oval)"
        )
    paths = roi.coordinates(multi=True) if roi.composite else [roi.coordinates()]
    return _fill_paths(shape, [np.asarray(p) for p in paths if p is not None])


def rois_to_labels(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A uint16 label image from an ROI set; ROI i (ROI-Manager order) becomes label i + 1."""
    if len(shape) != 2:
        raise DataError(f"ROI sets describe 2D images; {path} belongs to an image of shape {tuple(shape)}")
    rois = read_rois(path)
    if len(rois) >= 2**16:
        raise DataError(f"{path} holds {len(rois)} ROIs; at most 65535 fit a 16-bit label image")
    labels = np.zeros(shape, dtype=np.uint16)
    for i, roi in enumerate(rois):
        labels[roi_mask(roi, shape)] = i + 1
    return labels


def rois_to_label_frames(path: Path, n_frames: int, shape: tuple[int, ...]) -> np.ndarray:
    """A uint16 label stack (T first) from the ROI set of a time-lapse: each ROI on the frame it was drawn on (its
    hyperstack T position, else its stack position), labels 1..n per frame in ROI-Manager order."""
    if len(shape) != 2:
        raise DataError(f"ROI sets describe 2D images; {path} belongs to a time-lapse of frames {tuple(shape)}")
    labels = np.zeros((n_frames, *shape), dtype=np.uint16)
    counts = [0] * n_frames
    for i, roi in enumerate(read_rois(path)):
        frame = int(roi.t_position or roi.position)
        name = roi.name or f"#{i + 1}"
        if frame < 1:
            raise DataError(
                f"ROI {name} in {path} has no frame, and its image is a time-lapse of {n_frames} frames; add each ROI to the "
                "ROI Manager on the frame it outlines (Add [t] keeps the frame), or give label stacks with --masks"
            )
        if frame > n_frames:
            raise DataError(f"ROI {name} in {path} is on frame {frame}, but its image has {n_frames} frames; is it the right ROI set?")
        counts[frame - 1] += 1
        if counts[frame - 1] >= 2**16:
            raise DataError(f"{path} holds more than 65535 ROIs on frame {frame}; at most 65535 fit a 16-bit label image")
        labels[frame - 1][roi_mask(roi, shape)] = counts[frame - 1]
    return labels


def labels_to_rois(labels: np.ndarray) -> list:
    """One ImageJ polygon ROI per object of a 2D label image, named by its label, in label order.

    The outline runs through the midpoints between each object's boundary pixels and their
    neighbours (marching squares at level 0.5), shifted by half a pixel into ImageJ's coordinates,
    so ImageJ's pixel-centre filling of the ROI gives back the object's pixels. An object made of
    several pieces is outlined by its largest piece; holes are not cut out.
    """
    import roifile
    from skimage.measure import find_contours, regionprops

    if labels.ndim != 2:
        raise DataError(f"ROI sets are 2D; the label image has shape {labels.shape}")
    rois = []
    for region in regionprops(labels.astype(np.int64, copy=False)):
        r0, c0, _r1, _c1 = region.bbox
        mask = np.pad(region.image, 1).astype(np.float32)
        contours = find_contours(mask, 0.5, fully_connected="high")
        if not contours:
            continue
        contour = max(contours, key=lambda c: abs(_polygon_area(c)))
        # contour is (row, col) in the padded crop; ImageJ's x/y of a pixel centre is col/row + 0.5
        xy = np.stack([contour[:-1, 1] + c0 - 1 + 0.5, contour[:-1, 0] + r0 - 1 + 0.5], axis=1)
        roi = roifile.ImagejRoi.frompoints(xy.astype(np.float32), name=f"{region.label:05d}")
        roi.roitype = roifile.ROI_TYPE.POLYGON
        rois.append(roi)
    return rois


def _polygon_area(p: np.ndarray) -> float:
    return 0.5 * float(np.dot(p[:-1, 0], p[1:, 1]) - np.dot(p[1:, 0], p[:-1, 1]))


def write_rois(rois: list, path: Path) -> None:
    """Write an ImageJ ROI set zip (``path`` must not exist; callers write to a temporary name)."""
    import roifile

    if not rois:
        import zipfile

        zipfile.ZipFile(path, "w").close()  # an empty ROI set: ImageJ opens it with no ROI
        return
    roifile.roiwrite(str(path), rois)
