"""The ROI set fijiport writes for a segmented time-lapse, opened in real ImageJ (Debian's ``imagej`` under Xvfb) with
the label stack as a Fiji user opens them: the stack is a hyperstack of frames, and selecting each ROI in the ROI
Manager shows it on its own frame, over its own object (StarDist's polygons and outlines traced from labels alike)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from fijiport.predict.outputs import LabelFrame, write_label_frames
from helpers import run_imagej_macro

MACRO = Path(__file__).parents[1] / "data" / "imagej" / "rois_on_frames.ijm"
SHAPE, RAYS, RADIUS = (96, 128), 32, 7.0


def disks(t: int) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """Frame ``t``: ``t + 2`` disks (labels 1..n, placed differently in each frame, so an ROI on the wrong frame sits on
    background or on another label), their star-convex polygons as stardist gives them ((n, 2, rays): y then x)."""
    labels = np.zeros(SHAPE, np.uint16)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    centres = [(20.0 + 25 * (i % 3) + 3 * t, 18.0 + 22 * i + 5 * t) for i in range(t + 2)]
    phi = np.linspace(0, 2 * np.pi, RAYS, endpoint=False)
    polygons = []
    for i, (cy, cx) in enumerate(centres, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= RADIUS**2] = i
        polygons.append([cy + (RADIUS + 0.5) * np.sin(phi), cx + (RADIUS + 0.5) * np.cos(phi)])
    return labels, np.asarray(polygons), centres


@pytest.mark.parametrize("with_polygons", [True, False], ids=["stardist polygons", "traced outlines"])
def test_each_roi_shows_on_its_frame_over_its_object_in_imagej(tmp_path, with_polygons):
    n_frames = 4
    frames = []
    for t in range(n_frames):
        labels, polygons, _ = disks(t)
        frames.append(LabelFrame(labels, polygons if with_polygons else None, labels.astype(np.float32), "YX"))
    source = tmp_path / "movie_input.tif"  # the time-lapse segmented: its calibration goes to the label stack
    tifffile.imwrite(source, np.stack([f.image for f in frames]).astype(np.uint16), imagej=True, metadata={"axes": "TYX"})
    targets = (tmp_path / "out" / "movie.tif", tmp_path / "out" / "movie.zip", tmp_path / "out" / "movie.csv")
    targets[0].parent.mkdir()
    written, n_objects, _ = write_label_frames(iter(frames), n_frames, targets, False, source)
    assert n_objects == sum(t + 2 for t in range(n_frames)) and targets[1] in written

    proc = run_imagej_macro(MACRO, f"labels=[{targets[0]}] rois=[{targets[1]}]")
    printed = proc.stdout + proc.stderr
    assert f"dimensions={SHAPE[1]}x{SHAPE[0]} channels=1 slices=1 frames={n_frames}" in printed, printed[-2000:]
    rows = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in printed.splitlines() if line.startswith("roi=")]
    assert len(rows) == n_objects, printed[-2000:]
    seen: dict[int, set[int]] = {}
    for row in rows:
        frame, mode, top = int(row["frame"]), float(row["mode"]), float(row["max"])
        assert 1 <= frame <= n_frames
        assert mode >= 1 and top == mode, f"ROI {row['name']} is on frame {frame} over label {mode} alone"
        assert row["name"].startswith(f"{frame:03d}_"), f"ROI {row['name']} shown on frame {frame}"
        seen.setdefault(frame, set()).add(int(mode))
        area = float(row["n"])
        assert 0.8 * np.pi * RADIUS**2 <= area <= 1.4 * np.pi * RADIUS**2, f"ROI {row['name']} outlines one disk ({area} px)"
    assert seen == {t + 1: set(range(1, t + 3)) for t in range(n_frames)}, "every object of every frame, on its frame"
