"""File helpers every step shares: hashing, TIFF reading, and outputs that appear whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from .errors import DataError, OutputExistsError

log = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def list_tiffs(folder: Path, *, what: str = "folder", recursive: bool = False) -> list[Path]:
    """The TIFF files inside ``folder`` (directly, or at any depth with ``recursive``), hidden ones skipped (see
    :func:`list_files`)."""
    return list_files(folder, TIFF_SUFFIXES, what=what, recursive=recursive)


def list_files(folder: Path, suffixes: tuple[str, ...], *, what: str = "folder", recursive: bool = False) -> list[Path]:
    """The files inside ``folder`` whose names end in one of ``suffixes`` (any case), sorted by path.

    ``recursive`` lists the sub-folders too, at any depth (symbolic links to folders are not followed, so a link
    back up the tree cannot loop). Hidden files and folders (names starting with ``.``) are skipped with one warning
    saying how many: macOS writes a ``._name.tif`` of resource-fork data next to every file it copies to a non-Mac
    disk, and they are not images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what} {folder} does not exist or is not a folder")
    if recursive:
        found = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [Path(root) / f for f in files if Path(f).suffix.lower() in suffixes]
        found.sort(key=lambda p: p.relative_to(folder).parts)
    else:
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    hidden = [p for p in found if p.name.startswith(".")]
    if hidden:
        log.warning(
            "%s: skipped %d hidden file(s) whose names start with '.' (e.g. %s; macOS leaves ._NAME files of "
            "resource-fork data next to copied files): they are not images",
            folder,
            len(hidden),
            hidden[0].name,
        )
    return [p for p in found if not p.name.startswith(".")]


Placement = Literal["copy", "hardlink"]


class Placer:
    """Puts files into a data folder as copies, or as hard links (``link="hardlink"``) where the file system allows.

    A hard link cannot cross file systems (nor reach some network and FAT disks): the file is copied instead and
    :meth:`warn` says once how many were, and why. :meth:`place` returns how each file was placed, for the manifest.
    """

    def __init__(self, link: Placement):
        self.link = link
        self.placed = 0
        self.fallbacks: list[tuple[Path, OSError]] = []

    def place(self, src: Path, dest: Path) -> Placement:
        self.placed += 1
        if self.link == "hardlink":
            try:
                os.link(src, dest)
                return "hardlink"
            except OSError as e:
                self.fallbacks.append((Path(src), e))
        shutil.copyfile(src, dest)
        return "copy"

    def warn(self) -> None:
        """One warning if hard links fell back to copies: how many, and why."""
        if not self.fallbacks:
            return
        import errno

        src, e = self.fallbacks[0]
        if e.errno == errno.EXDEV:
            why = "the data folder is on another file system than the originals, and hard links cannot cross file systems"
        else:
            why = f"the file system refused ({e.strerror or e})"
        log.warning(
            "--link hardlink: %d of %d file(s) were copied, not linked (e.g. %s): %s; they take space of their own "
            "(the manifest records each file's placement); write the data folder on the originals' disk to link them",
            len(self.fallbacks),
            self.placed,
            src.name,
            why,
        )


def _unreadable(path: Path, e: Exception) -> str:
    if isinstance(e, PermissionError):
        return f"cannot read {path}: permission denied; get read access to it or copy it somewhere you can read"
    if isinstance(e, FileNotFoundError):
        return f"{path} does not exist (moved or deleted while fijiport ran?)"
    return (
        f"cannot read {path} as a TIFF image: it is damaged, cut short, or another kind of file named .tif "
        f"({str(e)[:80]}); open it in Fiji and use File > Save As > Tiff..., or take it out of the folder"
    )


def check_hdf5(path: Path) -> None:
    """Refuse a weights file that is not readable HDF5 (damaged, cut short), before TensorFlow is even loaded."""
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except Exception as e:
        raise DataError(
            f"{path} is damaged: not a readable HDF5 weights file ({str(e).splitlines()[0][:80] if str(e) else type(e).__name__}); "
            "copy the model folder again, whole, from where it was trained"
        ) from None


def read_tiff(path: Path) -> np.ndarray:
    """Read a TIFF into a numpy array, turning every reader failure into a :class:`DataError`."""
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as e:  # tifffile raises many types for broken files
        raise DataError(_unreadable(path, e)) from None


def tiff_shape(path: Path) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of the first series of a TIFF, without reading its pixels."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(int(s) for s in series.shape), str(series.dtype)
    except Exception as e:
        raise DataError(_unreadable(path, e)) from None


class TiffFrames:
    """The frames of a TIFF along axis ``axis`` (a time-lapse's T), read one at a time so memory follows a frame, not
    the file: memory-mapped where the TIFF is stored uncompressed and contiguous, else page by page where the frames
    are runs of pages (ImageJ hyperstacks and OME-TIFFs with T first, compressed or not), else (rare layouts) read
    whole once, with a note in the log.

    ``len(frames)`` is the number of frames, ``frames[t]`` frame ``t`` (a new array), ``frames.shape`` a frame's shape.
    """

    def __init__(self, path: Path, axis: int):
        self.path, self.axis = Path(path), axis
        shape, self.dtype = tiff_shape(path)
        self.file_shape = shape
        self.shape = shape[:axis] + shape[axis + 1 :]
        self._whole: Optional[np.ndarray] = None
        self._mapped: Optional[np.ndarray] = None
        self._pages: Optional[int] = None
        import tifffile

        try:
            self._mapped = np.asarray(tifffile.memmap(self.path, mode="r"))
            return
        except Exception:  # compressed, tiled, or not contiguous
            pass
        try:
            with tifffile.TiffFile(self.path) as tif:
                series = tif.series[0]
                n_planes = int(np.prod(shape[:-2]))
                if axis == 0 and len(series.pages) == n_planes and series.axes[-2:] == "YX":
                    self._pages = n_planes // shape[0]
        except Exception as e:
            raise DataError(_unreadable(self.path, e)) from None
        if self._pages is None:
            log.info("%s cannot be read frame by frame (its pages are not runs of frames); reading it whole", self.path.name)

    def __len__(self) -> int:
        return self.file_shape[self.axis]

    def __getitem__(self, t: int) -> np.ndarray:
        if not 0 <= t < len(self):
            raise IndexError(t)
        if self._mapped is not None:
            return np.array(np.take(self._mapped, t, axis=self.axis))
        if self._pages is not None:
            import tifffile

            try:
                with tifffile.TiffFile(self.path) as tif:
                    frame = tif.asarray(key=range(t * self._pages, (t + 1) * self._pages), series=0)
            except Exception as e:
                raise DataError(_unreadable(self.path, e)) from None
            return np.asarray(frame).reshape(self.shape)
        if self._whole is None:
            self._whole = read_tiff(self.path)
        return np.array(np.take(self._whole, t, axis=self.axis))

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[t] for t in range(len(self)))


def tiff_declared_axes(path: Path) -> Optional[tuple[str, str]]:
    """The axes a TIFF's own metadata declares for its first series, in tifffile's letters, and which metadata
    declares them (``"ImageJ"``, ``"OME"`` or ``"tifffile"``); None when the file declares none (tifffile then
    names the dimensions ``Q``/``I`` or guesses, as for a shaped file written without axes)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if series.kind == "ome":
                return series.axes, "OME"
            if series.kind == "imagej":
                return series.axes, "ImageJ"
            if series.kind == "shaped" and any("axes" in m for m in (tif.shaped_metadata or ())):
                return series.axes, "tifffile"
            return None
    except Exception as e:
        raise DataError(_unreadable(path, e)) from None


def declared_axes(path: Path) -> Optional[str]:
    """The axes (tifffile's letters) a TIFF's metadata declares, or None."""
    declared = tiff_declared_axes(path)
    return None if declared is None else declared[0]


def is_rgb_tiff(path: Path) -> bool:
    """Whether a TIFF stores RGB(A) colour pixels (photometric RGB), as Fiji saves colour images."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if not isinstance(page, tifffile.TiffPage):
                return False
            # 8 bits per sample, as Fiji and cameras store colour; tifffile may tag a 3-4 plane float stack RGB too
            return page.photometric == tifffile.PHOTOMETRIC.RGB and page.samplesperpixel in (3, 4) and page.bitspersample == 8
    except Exception:
        return False


def check_pixels(path: Path, img: np.ndarray) -> Optional[str]:
    """Refuse NaN/inf pixels (they poison normalisation); return a note for a constant image."""
    if img.dtype.kind == "f":
        bad = int(img.size - np.count_nonzero(np.isfinite(img)))
        if bad:
            raise DataError(
                f"{path} has {bad} NaN or infinite pixel(s); training and normalisation need finite values: "
                "replace them in Fiji (Process > Math > Remove NaNs..., or Process > Math > Set for inf) and save again"
            )
    if img.size and img.min() == img.max():
        return f"{path} is constant (every pixel {img.flat[0]}); it carries no signal and normalises to zeros"
    return None


def check_output(path: Path, overwrite: bool, *, option: str = "--overwrite") -> None:
    """Refuse to replace an existing output unless asked to."""
    if Path(path).exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; choose another output or pass {option} to replace it")


@contextlib.contextmanager
def atomic_file(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` only if the block succeeds."""
    target = Path(target)
    check_output(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    _usual_permissions(tmp, 0o666)  # mkstemp makes 0600; outputs get the user's usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as e:
        if e.filename not in (None, tmp, str(target)):
            raise  # about another file (an input, say): keep its name
        raise _named_os_error(e, target) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _usual_permissions(path, mode: int) -> None:
    """``mode`` less the umask, where the file system allows it (vfat/exFAT refuse chmod: keep what they give)."""
    with contextlib.suppress(OSError):
        os.chmod(path, mode & ~_umask())


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (os.umask would, briefly)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _named_os_error(e: OSError, target: Path) -> OSError:
    """The error naming the output it was writing; a writer's bare short-write error on a full disk becomes ENOSPC."""
    import errno

    code = e.errno
    if code is None:
        try:
            code = errno.ENOSPC if shutil.disk_usage(target.parent).free < 2**20 else errno.EIO
        except OSError:
            code = errno.EIO
    return OSError(code, e.strerror or os.strerror(code), str(target))


@contextlib.contextmanager
def all_or_nothing(*targets: Optional[Path]) -> Iterator[None]:
    """Outputs written together: if the block fails or is interrupted, the ones it created are removed again."""
    paths = [Path(t) for t in targets if t is not None]
    existed = {p for p in paths if p.exists()}
    try:
        yield
    except BaseException:
        for p in paths:
            if p not in existed and p.exists():
                p.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    if target.is_file():
        raise OutputExistsError(f"{target} is a file; the output is a folder: choose a new folder name with -o")
    check_output(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    _usual_permissions(tmp, 0o777)  # mkdtemp makes 0700; a shared lab folder needs the usual permissions
    try:
        yield tmp
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            target.rename(backup)
            tmp.rename(target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations (Linux's MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def write_json(path: Path, data: object) -> None:
    """Write JSON atomically (temp file + rename), pretty-printed."""
    import json

    with atomic_file(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
