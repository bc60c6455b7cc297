"""Prediction with a bioimage.io model package (zip or rdf.yaml), the way the Model Zoo runs it.

bioimageio.core applies the package's own preprocessing to the whole image, runs the network on its
ONNX weights (onnxruntime) and applies the package's postprocessing (e.g. StarDist's non-maximum
suppression) to the whole output. An image predicted in one piece is mirrored at its end up to a
size the network accepts (after normalisation, so the padding does not change the intensity
statistics), as csbdeep and stardist do; a tiled image is predicted in blocks with the package's
halo, bioimageio.core mirroring it at the image borders.

``--weights keras`` instead unpacks the csbdeep/stardist model folder a package carries (fijiport's
packages and deepImageJ-style StarDist packages do) and predicts with it as with a model folder.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Optional, cast

import numpy as np

from ..artifacts.packaged_model import input_percentiles, packaged_model_files
from ..errors import DataError
from ..files import check_output, read_tiff
from ..kinds.stardist import border, labels_from_prob_dist
from ..package.config_blocks import fijiport_block, stardist_block
from ..package.read import config_dict, read_model_package, weight_formats
from ..tiling import check_tile_sizes, choose_tiles, tile_regions, valid_size
from .folder import folder_runner
from .outputs import LabelFrame, Prediction, label_targets, plausibility, write_image, write_labels, wrong_dimensions

log = logging.getLogger(__name__)

RUNNABLE_FORMATS = ("onnx",)
"""Weight formats this process runs from a package (TensorFlow bundles need Keras 3, see `_tf.py`)."""


def package_runner(source: Path, weights: str, intensity: str = "auto"):
    descr = read_model_package(source, purpose="prediction")
    if weights == "keras":
        return _keras_runner(source, descr, "input" if intensity == "auto" else intensity)
    available = weight_formats(descr)
    if weights == "openvino":
        return _BioimageioRunner(source, descr, "onnx", intensity, engine="openvino")
    fmt = weights if weights != "auto" else next((f for f in RUNNABLE_FORMATS if f in available), None)
    if fmt not in RUNNABLE_FORMATS or fmt not in available:
        raise DataError(
            f"{source} has weights {', '.join(available)}; fijiport predicts packages with ONNX weights. "
            f"Add them with `fijiport convert {source} -o with_onnx.zip` (TensorFlow/Keras packages), "
            f"or use `bioimageio predict` for PyTorch weights"
        )
    return _BioimageioRunner(source, descr, fmt, intensity)


class _BioimageioRunner:
    def __init__(self, source: Path, descr, weight_format: str, intensity: str = "auto", engine: str = "onnxruntime"):
        from bioimageio.core import create_prediction_pipeline
        from bioimageio.core.digest_spec import get_input_halo
        from bioimageio.spec.model import v0_5

        if len(descr.inputs) != 1:
            raise DataError(f"{source} has {len(descr.inputs)} inputs; fijiport predict handles models with one input image")
        self.source, self.descr = source, descr
        self.input = descr.inputs[0]
        self.space = [a for a in self.input.axes if a.type == "space"]
        others = [a for a in self.input.axes if a.type not in ("space", "batch", "channel")]
        if others:
            raise DataError(
                f"{source}: its input has {others[0].type} axis {others[0].id!r}; fijiport predict handles "
                "inputs with batch, channel and space axes"
            )
        channel = next((a for a in self.input.axes if a.type == "channel"), None)
        self.n_channel = len(channel.channel_names) if channel is not None else 1
        for out in descr.outputs:
            for a in out.axes:
                if a.type == "space" and not isinstance(a.size, v0_5.SizeReference):
                    raise DataError(
                        f"{source}: output {out.id!r} axis {a.id!r} has a size not tied to the input's; "
                        "fijiport predict handles outputs the size of their input"
                    )
        self.same_size = all(
            getattr(a, "scale", 1) == 1 and not getattr(a.size, "offset", 0) for out in descr.outputs for a in out.axes if a.type == "space"
        )
        self.halo = {a: h.left for a, h in get_input_halo(descr).get(self.input.id, {}).items()}
        adapter = None
        if engine == "openvino":
            from .openvino import openvino_adapter

            adapter = openvino_adapter(descr, source)
        self.engine = engine
        self.pp = create_prediction_pipeline(descr, weight_format=cast(Any, weight_format), model_adapter=adapter)
        self.axes = "".join(str(a.id).upper() for a in self.space) + ("C" if self.n_channel > 1 else "")
        self.stardist = _stardist_postprocessing(descr)
        self.labels = {out.id for out in descr.outputs if _is_labels(out, descr) or self._is_prob_dist(out)}
        self.undo = _output_denormalisation(descr)
        """(gain, offset) of a postprocessing that maps the output back to the input's scale (N2V), else None."""
        if intensity == "auto":
            intensity = "input" if self.undo is not None else "normalised"
        self.intensity = intensity
        self.percentiles = input_percentiles(descr)
        block = fijiport_block(config_dict(descr))
        self.training_pixel_size = block.training_pixel_size_um if block else None
        """The training images' pixel size (``config.fijiport``), for ``predict``'s warning."""
        if intensity == "input" and self.undo is None and any(out.id not in self.labels for out in descr.outputs):
            wrong = [out.id for out in descr.outputs if out.id not in self.labels and self._n_channels(out) != self.n_channel]
            if self.percentiles is None or wrong:
                raise DataError(
                    f"{source}: --intensity input maps an output back with the input's normalisation percentiles, which "
                    + (
                        "this package's input does not declare (no scale_range)"
                        if self.percentiles is None
                        else f"needs as many output channels as input channels (outputs {', '.join(map(str, wrong))} differ)"
                    )
                    + "; use --intensity normalised"
                )

    @staticmethod
    def _n_channels(out) -> int:
        channel = next((a for a in out.axes if a.type == "channel"), None)
        return len(channel.channel_names) if channel is not None else 1

    def targets(self, path: Path, out_dir: Path) -> list[Path]:
        return [t for group in self._targets(path, out_dir).values() for t in group]

    def _is_prob_dist(self, out) -> bool:
        """A StarDist prob/dist output whose labels fijiport makes (3D packages, see kinds.stardist)."""
        channel = next((a for a in out.axes if a.type == "channel"), None)
        return self.stardist is not None and channel is not None and len(channel.channel_names) == 1 + int(self.stardist[0]["n_rays"])

    @property
    def image_axes(self) -> str:
        return self.axes

    @property
    def n_channel_in(self) -> int:
        return self.n_channel

    @property
    def output(self) -> str:
        """``labels`` when an output is a label image (StarDist), else ``image``."""
        return "labels" if self.labels else "image"

    def predict_frame(self, img: np.ndarray, declared: Optional[str], n_tiles) -> tuple[np.ndarray, tuple[int, ...]]:
        """One image (a frame of a time-lapse) restored by a package with one image output, in the image's own layout
        (channels where it has them), on the scale ``intensity`` says; and the tiles per spatial axis."""
        if len(self.descr.outputs) != 1 or self.labels:
            raise DataError(
                f"{self.source} has {len(self.descr.outputs)} outputs; time-lapses are predicted frame by frame with one image output"
            )
        data, channel = self._layout_and_channel(img, self.source)
        data = data.astype(np.float32, copy=False)
        tiles = self._tiles(data, channel, n_tiles)
        arr = self._predict(data, tiles)[self.descr.outputs[0].id]
        if self.intensity == "input" and self.undo is None:
            arr = self._to_input_scale(arr, data)
        elif self.intensity == "normalised" and self.undo is not None:
            gain, offset = self.undo
            arr = ((arr - (offset if arr.ndim == data.ndim else offset[0])) / (gain if arr.ndim == data.ndim else gain[0])).astype(
                np.float32
            )
        if channel == 0 and arr.ndim == data.ndim:
            arr = np.moveaxis(arr, -1, 0)
        return arr, tiles

    def predict_labels_frame(self, img: np.ndarray, declared: Optional[str], n_tiles) -> tuple[LabelFrame, tuple[int, ...]]:
        """One image (a frame of a time-lapse) segmented by a package with one label output (outlines traced from
        the labels), and the tiles per spatial axis."""
        if len(self.descr.outputs) != 1 or not self.labels:
            raise DataError(
                f"{self.source} has {len(self.descr.outputs)} outputs; time-lapses are segmented frame by frame with one label output"
            )
        data, tiles = self._to_model(img, self.source, n_tiles)
        labels = self._predict(data, tiles)[self.descr.outputs[0].id]
        return LabelFrame(labels, None, data, self.axes.replace("C", "") + "C"), tiles

    @property
    def object_stats(self) -> Optional[dict]:
        """The training labels' object statistics (``config.fijiport``), for the plausibility warning."""
        block = fijiport_block(config_dict(self.descr))
        return block.object_stats if block else None

    def check(self, path: Path, img: np.ndarray, out_dir: Path, overwrite: bool, n_tiles=None, declared: Optional[str] = None) -> None:
        for p in (t for group in self._targets(path, out_dir).values() for t in group):
            check_output(p, overwrite)
        data, channel = self._layout_and_channel(img, path)
        tiles = self._tiles(data, channel, n_tiles)
        if any(t > 1 for t in tiles) and not self.same_size:
            raise DataError(
                f"{self.source} has outputs at another scale or offset than its input; fijiport predicts it "
                "untiled only: pass --tiles " + ",".join("1" for _ in tiles) + " (or use `bioimageio predict`)"
            )
        for a, n, size in zip(self.space, tiles, data.shape[:-1]):  # fixed input sizes: refused here, not mid-run
            tile_regions(size, n, self.halo.get(a.id, 0) if n > 1 else 0, a.size)
        context = {str(a.id).upper(): self.halo.get(a.id, 0) for a in self.space}
        check_tile_sizes(data.shape[:-1], "".join(context), tiles, context)

    def __call__(self, path: Path, out_dir: Path, n_tiles, overwrite: bool):
        targets = self._targets(path, out_dir)
        img = read_tiff(path)  # checked by predict_images' pre-flight with ``check``
        data, tiles = self._to_model(img, path, n_tiles)
        outputs = self._predict(data, tiles)
        written: list[Path] = []
        n_objects = None
        warnings: list[str] = []
        for out in self.descr.outputs:
            arr = outputs[out.id]
            if out.id in self.labels:
                written += write_labels(arr, img, self.axes, targets[out.id], overwrite, source=path)
                n_objects = int(len(np.unique(arr)) - 1)
                block = fijiport_block(config_dict(self.descr))
                warnings += plausibility(path, arr, block.object_stats if block else None)
            else:
                if self.intensity == "input" and self.undo is None:
                    arr = self._to_input_scale(arr, data)
                elif self.intensity == "normalised" and self.undo is not None:
                    gain, offset = self.undo
                    arr = ((arr - (offset if arr.ndim == data.ndim else offset[0])) / (gain if arr.ndim == data.ndim else gain[0])).astype(
                        np.float32
                    )
                n_space = len(self.space)
                out_axes = self.axes.replace("C", "") + ("C" if arr.ndim == n_space + 1 else "")
                write_image(targets[out.id][0], arr, overwrite, axes=out_axes, source=path)
                written.append(targets[out.id][0])
        images = any(out.id not in self.labels for out in self.descr.outputs)
        return Prediction(path, written, n_objects, tiles, warnings, intensity=self.intensity if images else None)

    def _to_input_scale(self, y: np.ndarray, data: np.ndarray) -> np.ndarray:
        """A normalised output mapped back to the input's intensities as csbdeep does (``y·(hi − lo) + lo`` with the
        input's own ``scale_range`` percentiles, per channel): comparable with a model folder's output."""
        assert self.percentiles is not None
        spatial = tuple(range(data.ndim - 1))
        lo = np.percentile(data, self.percentiles[0], axis=spatial)
        hi = np.percentile(data, self.percentiles[1], axis=spatial)
        if y.ndim == data.ndim - 1:  # one channel, squeezed
            return (y * (hi[0] - lo[0]) + lo[0]).astype(np.float32)
        return (y * (hi - lo) + lo).astype(np.float32)

    def _targets(self, path: Path, out_dir: Path) -> dict:
        single = len(self.descr.outputs) == 1
        targets = {}
        for out in self.descr.outputs:
            name = path.name if single else f"{path.stem}_{out.id}{path.suffix or '.tif'}"
            targets[out.id] = label_targets(out_dir, name) if out.id in self.labels else (out_dir / name,)
        return targets

    def _layout_and_channel(self, img: np.ndarray, path: Path) -> tuple[np.ndarray, Optional[int]]:
        """The image as (spatial..., channel) and where the image had its channel axis (None, 0 or -1)."""
        n_space = len(self.space)
        expect = f"{''.join(str(a.id).upper() for a in self.space)}" + (f" plus {self.n_channel} channels" if self.n_channel > 1 else "")
        if img.ndim == n_space and self.n_channel == 1:
            return img[..., None], None
        if img.ndim == n_space + 1 and img.shape[-1] == self.n_channel:
            return img, -1
        if img.ndim == n_space + 1 and img.shape[0] == self.n_channel:
            return np.moveaxis(img, 0, -1), 0
        raise wrong_dimensions(path, img.shape, expect)

    def _to_model(self, img: np.ndarray, path: Path, n_tiles) -> tuple[np.ndarray, tuple[int, ...]]:
        """The image as (spatial..., channel) float32, and the tiles per image axis."""
        data, channel = self._layout_and_channel(img, path)
        return data.astype(np.float32, copy=False), self._tiles(data, channel, n_tiles)

    def _tiles(self, data: np.ndarray, channel: Optional[int], n_tiles) -> tuple[int, ...]:
        """Tiles per spatial axis: ``--tiles`` as given (a value for the image's channel axis dropped), or by
        default :func:`~fijiport.tiling.auto_tiles` (one tile for packages whose outputs are not the input's size)."""
        n_space = len(self.space)
        space_axes = "".join(str(a.id).upper() for a in self.space)
        if n_tiles is None and not self.same_size:
            return (1,) * n_space
        if n_tiles is not None and channel is not None and len(n_tiles) == n_space + 1:
            n_tiles = tuple(n_tiles[1:] if channel == 0 else n_tiles[:-1])
        return choose_tiles(data.shape[:-1], space_axes, n_tiles)

    def _predict_tiled(self, sample, shape: dict, tiles: tuple[int, ...], halo: dict, extent: dict):
        """The network on one tile at a time (csbdeep's scheme, :func:`tile_regions`): memory follows the tile,
        and an untiled axis carries no halo. Pre- and postprocessing stay on the whole image. The output reaches
        ``extent`` (≥ the image) per axis, the last tile's mirrored end supplying what lies past the image."""
        import itertools

        from bioimageio.core import Sample, Tensor

        axes = [a.id for a in self.space]
        per_axis = [tile_regions(shape[a.id], n, halo[a.id] if n > 1 else 0, a.size) for a, n in zip(self.space, tiles)]
        per_axis = [
            [(*r[:4], min(extent[a.id], r[1] + r[2])) if r[4] == shape[a.id] else r for r in regions]
            for a, regions in zip(self.space, per_axis)
        ]
        sizes = {str(a): max(r[4] for r in regions) for a, regions in zip(axes, per_axis)}
        tensor = sample.members[self.input.id]
        full: dict = {}
        for combo in itertools.product(*per_axis):
            block = Sample(members={self.input.id: tensor[{a: slice(r[0], r[1]) for a, r in zip(axes, combo)}]}, stat=sample.stat, id=None)
            pad = {a: (0, r[2]) for a, r in zip(axes, combo) if r[2]}
            if pad:
                block = block.pad(pad_width={self.input.id: pad}, mode="reflect")
            predicted = self.pp.predict_sample_without_blocking(
                block, skip_preprocessing=True, skip_postprocessing=True, skip_input_padding=True, skip_output_cropping=True
            )
            region = {str(a): r for a, r in zip(axes, combo)}
            for member, t in predicted.members.items():
                dims = [str(d) for d in t.dims]
                data = t.data.to_numpy()
                if member not in full:
                    size = [sizes[d] if d in region else n for d, n in zip(dims, data.shape)]
                    full[member] = (np.empty(size, dtype=data.dtype), t.dims)
                src = tuple(slice(region[d][3] - region[d][0], region[d][4] - region[d][0]) if d in region else slice(None) for d in dims)
                dst = tuple(slice(region[d][3], region[d][4]) if d in region else slice(None) for d in dims)
                full[member][0][dst] = data[src]
        return Sample(members={m: Tensor(arr, dims=dims) for m, (arr, dims) in full.items()}, stat=sample.stat, id=None)

    def _predict(self, data: np.ndarray, tiles: tuple[int, ...]) -> dict:
        from bioimageio.core import Sample, Tensor

        dims = ["batch", *[str(a.id) for a in self.space], "channel"]
        order = [str(a.id) for a in self.input.axes]
        arr = np.transpose(data[None], [dims.index(d) for d in order if d in dims])
        if "channel" not in order:
            arr = arr[..., 0] if dims[-1] == "channel" else arr
        sample = Sample(members={self.input.id: Tensor(arr, dims=tuple(d for d in order))}, stat={}, id=None)
        self.pp.apply_preprocessing(sample)

        shape = {a.id: n for a, n in zip(self.space, data.shape[:-1])}
        halo = {a.id: self.halo.get(a.id, 0) for a in self.space}
        # stardist drops candidates in its border b at the end of the *padded* image, then those past the image
        # (StarDistPadAndCropResizer.filter_points): the postprocessing sees the output up to b pixels past the
        # image end (as far as the padding reaches), so its border b falls where stardist's does; cropped after
        border = self._end_border()
        extent = {a.id: min(valid_size(a.size, shape[a.id]), shape[a.id] + border.get(str(a.id), 0)) for a in self.space}
        if all(t == 1 for t in tiles):
            # one block: the whole image, mirrored at its end up to a size the network accepts, as
            # csbdeep/stardist predict an untiled image (so labels equal the model folder's)
            pad = {a.id: (0, valid_size(a.size, shape[a.id]) - shape[a.id]) for a in self.space}
            sample = sample.pad(pad_width={self.input.id: pad}, mode="reflect")
            result = self.pp.predict_sample_without_blocking(
                sample, skip_preprocessing=True, skip_postprocessing=True, skip_input_padding=True, skip_output_cropping=True
            )
            crop = {a: slice(0, extent[a]) for a in shape}
        else:
            result = self._predict_tiled(sample, shape, tiles, halo, extent)
            crop = {}
        result.members = {k: (t[crop] if crop else t) for k, t in result.members.items()}
        self.pp.apply_postprocessing(result)
        outputs = {}
        for out in self.descr.outputs:
            t = result.members[out.id]
            dims_out = [str(d) for d in t.dims]
            x: np.ndarray = np.asarray(t.data.to_numpy())
            keep = [str(a.id) for a in out.axes if a.type == "space"]
            chan = [d for d in dims_out if d == "channel"]
            x = np.transpose(x, [dims_out.index(d) for d in [*[d for d in dims_out if d not in keep + chan], *keep, *chan]])
            x = x.reshape(x.shape[-(len(keep) + len(chan)) :])  # drop batch
            if chan and x.shape[-1] == 1:
                x = x[..., 0]
            if self._is_prob_dist(out):
                assert self.stardist is not None  # _is_prob_dist needs config.stardist
                x = labels_from_prob_dist(x[np.newaxis], *self.stardist)[0, ..., 0]
            if border:
                x = x[tuple(slice(0, {str(k): n for k, n in shape.items()}[a]) for a in keep)]
                if self._is_prob_dist(out):  # ids 1..n within the image, as stardist relabels its own
                    from stardist.matching import relabel_sequential

                    x = relabel_sequential(x)[0]
            outputs[out.id] = x
        return outputs

    def _end_border(self) -> dict:
        """Per space axis (name), the border in output pixels at the image end in which the package's StarDist
        postprocessing (or fijiport's, for prob/dist outputs) drops candidates; empty for other packages."""
        if not self.same_size:
            return {}
        n_dim = len(self.space)
        names = ("y", "x") if n_dim == 2 else ("z", "y", "x")
        for out in self.descr.outputs:
            kwargs = _stardist_kwargs(out)
            if kwargs is not None and all(int(g) == 1 for g in kwargs.grid):
                b = kwargs.b
            elif self._is_prob_dist(out):
                assert self.stardist is not None
                b = border(self.stardist[0].get("grid") or (1,) * n_dim)
            else:
                continue
            b = ((b, b),) * n_dim if isinstance(b, int) else b
            return {a: int(e) for a, (_, e) in zip(names, b)}
        return {}


def _is_labels(out, descr) -> bool:
    """An output is a label image when it is integer typed or made by StarDist's postprocessing."""
    if str(getattr(out.data, "type", "float32")).startswith(("int", "uint")):
        return True
    return any(getattr(p, "id", "") == "stardist_postprocessing" for p in (out.postprocessing or []))


def _stardist_kwargs(out):
    """The kwargs of an output's ``stardist_postprocessing``, or None."""
    return next((p.kwargs for p in (out.postprocessing or []) if getattr(p, "id", "") == "stardist_postprocessing"), None)


def _stardist_postprocessing(descr) -> Optional[tuple[dict, dict]]:
    """(stardist config, thresholds) from the package's ``config.stardist``, when it has both."""
    block = stardist_block(config_dict(descr))
    return None if block is None else (block.config, block.thresholds)


def _keras_runner(source: Path, descr, intensity: str = "normalised"):
    """Predict with the model folder the package carries (fijiport's packages and deepImageJ-style StarDist
    packages carry one), unpacked to a temporary folder, with the package's own normalisation percentiles."""
    folder, _ = packaged_model_files(source, descr, hint="use --weights onnx (or the model folder it was exported from)")
    pct = input_percentiles(descr)
    with tempfile.TemporaryDirectory(prefix="fijiport_pkg_") as tmp:  # the runner loads the model right away
        for name, data in folder.items():
            (Path(tmp) / name).write_bytes(data)
        run = folder_runner(Path(tmp), percentiles=pct, percentiles_source="package", intensity=intensity)
    block = fijiport_block(config_dict(descr))
    if block is not None and block.training_pixel_size_um:
        run.training_pixel_size = block.training_pixel_size_um  # type: ignore[attr-defined]
    return run


def _output_denormalisation(descr) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(gain, offset) per channel when the first output's last postprocessing is a ``scale_linear`` that undoes the
    input's ``fixed_zero_mean_unit_variance`` (gain = std, offset = mean, as n2v's packages declare): the package then
    gives images on the input's intensity scale. None otherwise."""

    def values(kwargs, *names):
        return [np.atleast_1d(np.asarray(getattr(kwargs, n), dtype=np.float64)) for n in names]

    pre = [p for p in descr.inputs[0].preprocessing or [] if getattr(p, "id", "") == "fixed_zero_mean_unit_variance"]
    post = [p for p in descr.outputs[0].postprocessing or [] if getattr(p, "id", "") != "ensure_dtype"]
    if len(pre) != 1 or not post or getattr(post[-1], "id", "") != "scale_linear":
        return None
    mean, std = values(pre[0].kwargs, "mean", "std")
    gain, offset = values(post[-1].kwargs, "gain", "offset")
    if gain.shape != std.shape or not (np.allclose(gain, std, rtol=1e-5) and np.allclose(offset, mean, rtol=1e-5, atol=1e-6)):
        return None
    return gain.astype(np.float32), offset.astype(np.float32)
