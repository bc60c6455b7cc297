"""Checks on model packages downloaded from anywhere, before any library opens them.

:func:`inspect_package` refuses, with a :class:`~fijiport.errors.DataError` naming the file and the
entry: zip entries that would land outside their folder (``..``, absolute paths, drive letters),
symbolic links, zip bombs (too much unpacked data, or a suspicious compression ratio), an rdf that
is not plain YAML (tags such as ``!!python/object`` that construct objects), ``.npy`` files holding
pickled Python objects, declared tensor sizes no machine can hold, files whose sha256 differs from
the one the rdf declares, rdfs that ask to run their own Python code (PyTorch architectures
from a source file) unless ``trust_code``, and TensorFlow or ONNX graphs that could touch files or run code
(:mod:`fijiport.package.graphs`: ops outside an allow-list of inference ops, custom ONNX domains, external
data outside the package). Nothing is extracted and nothing is executed here.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from ..errors import DataError
from .graphs import check_onnx, check_saved_model

MAX_UNPACKED_BYTES = int(os.environ.get("FIJIPORT_MAX_PACKAGE_BYTES", 8 * 1024**3))
"""Largest total unpacked size of a package (8 GiB; set FIJIPORT_MAX_PACKAGE_BYTES to change)."""
MAX_RATIO = 200
"""Largest compression ratio of a large entry; real weights and images compress far less."""
RATIO_MIN_BYTES = 10 * 1024**2
MAX_ENTRIES = 10_000
MAX_RDF_BYTES = 16 * 1024**2
MAX_TENSOR_ELEMENTS = 2**36
RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")


class PackageFiles:
    """Read access to a package's files by package-relative name: a zip's members, or the files of a
    package folder / next to an rdf.yaml (never outside it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.zip: Optional[zipfile.ZipFile] = None
        self.root: Path = self.path if self.path.is_dir() else self.path.parent
        """The package folder (a folder, or the folder of an rdf.yaml); unused for a zip."""
        if not self.path.is_dir() and self.path.suffix.lower() not in (".yaml", ".yml"):
            try:
                self.zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(f"{self.path} is not a readable zip file ({e}); download it again") from None

    def names(self) -> list[str]:
        if self.zip is not None:
            return [i.filename for i in self.zip.infolist() if not i.is_dir()]
        return [str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()]

    def open(self, name: str):
        if self.zip is not None:
            return self.zip.open(name)
        target = (self.root / name).resolve()
        if self.root.resolve() not in target.parents:
            raise DataError(f"{self.path}: the rdf refers to {name!r}, outside the package folder; refusing it")
        return open(target, "rb")

    def has(self, name: str) -> bool:
        if self.zip is not None:
            try:
                self.zip.getinfo(name)
                return True
            except KeyError:
                return False
        target = (self.root / name).resolve()
        return self.root.resolve() in target.parents and target.is_file()

    def read(self, name: str) -> Optional[bytes]:
        """The file's bytes, or None when the package has no such file (``./`` prefixes allowed)."""
        name = name[2:] if name.startswith("./") else name
        if not self.has(name):
            return None
        with self.open(name) as fh:
            return fh.read()


def safe_extract(zip_path: Path, dest: Path, member: Optional[str] = None) -> None:
    """Unpack ``zip_path`` (or only ``member``) into ``dest``, refusing entries that would land outside it."""
    dest = Path(dest).resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if member is not None and info.filename != member:
                continue
            target = (dest / info.filename).resolve()
            if dest not in target.parents and target != dest:
                raise DataError(f"{zip_path}: entry {info.filename!r} points outside the archive; refusing to unpack it")
            zf.extract(info, dest)


def inspect_package(path: Path, *, trust_code: bool = False, require_rdf: bool = True, trust_graphs: Optional[bool] = None) -> dict:
    """Check an untrusted package (zip, folder or rdf.yaml); return its rdf as plain data.

    With ``require_rdf=False`` a zip without an rdf (a CSBDeep/StarDist SavedModel zip) gets the
    zip-entry checks and the graph check of its ``saved_model.pb``, and ``{}`` is returned.
    ``trust_graphs`` (default: ``trust_code``) skips the graph checks.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    trust_graphs = trust_code if trust_graphs is None else trust_graphs
    pkg = PackageFiles(path)
    if pkg.zip is not None:
        _check_zip_entries(path, pkg.zip)
    if not require_rdf and (path.is_dir() or pkg.zip is not None) and not any(PurePosixPath(n).name in RDF_NAMES for n in pkg.names()):
        if not trust_graphs:
            for name in pkg.names():
                if PurePosixPath(name).name == "saved_model.pb":
                    check_saved_model(_read_capped(path, pkg, name), f"{path} ({name})")
        return {}
    rdf_name = _rdf_name(path, pkg)
    rdf = _safe_yaml(path, rdf_name, pkg)
    _check_shapes(path, rdf)
    _check_npy_files(path, pkg)
    _check_sha256(path, rdf, pkg)
    if not trust_code:
        _refuse_code(path, rdf, pkg)
    if not trust_graphs:
        _check_graphs(path, rdf, pkg)
    return rdf


MAX_GRAPH_BYTES = 2**31
"""Protocol buffers cannot be larger; a saved_model.pb or .onnx that claims more is refused unread."""


def _read_capped(path: Path, pkg: PackageFiles, name: str) -> bytes:
    if pkg.zip is not None and pkg.zip.getinfo(name).file_size > MAX_GRAPH_BYTES:
        raise DataError(f"{path}: {name} is larger than any protocol buffer can be; refusing it")
    with pkg.open(name) as fh:
        data = fh.read(MAX_GRAPH_BYTES + 1)
    if len(data) > MAX_GRAPH_BYTES:
        raise DataError(f"{path}: {name} is larger than any protocol buffer can be; refusing it")
    return data


def _check_graphs(path: Path, rdf: dict, pkg: PackageFiles) -> None:
    """The graph checks of :mod:`fijiport.package.graphs` on the package's TensorFlow and ONNX weights."""
    weights = rdf.get("weights") if isinstance(rdf.get("weights"), dict) else {}
    assert isinstance(weights, dict)
    for fmt, entry in weights.items():
        source = entry.get("source") if isinstance(entry, dict) else None
        if not isinstance(source, str) or "://" in source:
            continue
        name = source[2:] if source.startswith("./") else source
        if fmt == "onnx" and pkg.has(name):
            check_onnx(_read_capped(path, pkg, name), f"{path} ({name})", pkg.names(), name)
        elif fmt == "tensorflow_saved_model_bundle":
            if pkg.has(name):
                data = _read_capped(path, pkg, name)
                try:
                    bundle = zipfile.ZipFile(io.BytesIO(data))
                except zipfile.BadZipFile:
                    raise DataError(f"{path}: its tensorflow_saved_model_bundle {name} is not a zip file") from None
                _check_zip_entries(Path(f"{path} ({name})"), bundle)
                for info in bundle.infolist():
                    if PurePosixPath(info.filename).name == "saved_model.pb":
                        if info.file_size > MAX_GRAPH_BYTES:
                            raise DataError(f"{path}: {name}/{info.filename} is larger than any protocol buffer can be; refusing it")
                        check_saved_model(bundle.read(info), f"{path} ({name}: {info.filename})")
            elif pkg.zip is None and (pkg.root / name).is_dir():  # a package folder may hold the bundle unpacked
                for pb in (pkg.root / name).rglob("saved_model.pb"):
                    rel = str(pb.relative_to(pkg.root))
                    check_saved_model(_read_capped(path, pkg, rel), f"{path} ({rel})")


def _check_zip_entries(path: Path, zf: zipfile.ZipFile) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise DataError(f"{path} holds {len(infos)} entries (limit {MAX_ENTRIES}); not a model package")
    total = 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise DataError(f"{path}: entry {name!r} points outside the package; refusing the zip (crafted or broken)")
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise DataError(f"{path}: entry {name!r} is a symbolic link; refusing the zip (packages hold plain files)")
        total += info.file_size
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DataError(
                f"{path}: entry {name!r} unpacks {info.compress_size} bytes to {info.file_size} "
                f"(ratio > {MAX_RATIO}); refusing a likely zip bomb"
            )
    if total > MAX_UNPACKED_BYTES:
        raise DataError(
            f"{path} would unpack to {_size(total)} (limit {_size(MAX_UNPACKED_BYTES)}, "
            "FIJIPORT_MAX_PACKAGE_BYTES); refusing a likely zip bomb"
        )


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def _rdf_name(path: Path, pkg: PackageFiles) -> str:
    if pkg.zip is None and path.is_file():
        return path.name
    for name in RDF_NAMES:
        if pkg.has(name):
            return name
    nested = [n for n in pkg.names() if PurePosixPath(n).name in RDF_NAMES]
    if len(nested) == 1:
        return nested[0]
    raise DataError(f"{path} has no rdf.yaml at its top level; is it a bioimage.io model package?")


def _safe_yaml(path: Path, rdf_name: str, pkg: PackageFiles) -> dict:
    import yaml

    with pkg.open(rdf_name) as fh:
        data = fh.read(MAX_RDF_BYTES + 1)
    if len(data) > MAX_RDF_BYTES:
        raise DataError(f"{path}: {rdf_name} is larger than {MAX_RDF_BYTES // 1024**2} MB; not a model description")
    try:
        rdf = yaml.safe_load(data)  # plain YAML only: tags that construct Python objects are errors here
    except yaml.constructor.ConstructorError as e:
        tag = (str(e.problem).split("tag ", 1)[-1].strip("'") if e.problem else "")[:60]
        raise DataError(
            f"{path}: {rdf_name} holds a YAML tag that would build Python objects{f' ({tag})' if tag else ''}; "
            "a model description is plain data, so this package was refused unopened: do not use it, "
            "get the model from the Model Zoo or its authors"
        ) from None
    except yaml.YAMLError as e:
        raise DataError(f"{path}: {rdf_name} is not valid YAML ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(rdf, dict):
        raise DataError(f"{path}: {rdf_name} is not a YAML mapping of rdf keys")
    return rdf


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _check_shapes(path: Path, rdf: dict) -> None:
    for group in ("inputs", "outputs"):
        tensors = rdf.get(group)
        if not isinstance(tensors, list):
            continue
        for t in tensors:
            if not isinstance(t, dict):
                continue
            sizes = []
            for a in t.get("axes") or []:
                size = a.get("size") if isinstance(a, dict) else None
                if isinstance(size, dict):
                    size = size.get("min")
                if isinstance(size, bool) or not isinstance(size, (int, float)):
                    continue
                sizes.append(size)
            n = 1
            for s in sizes:
                n *= max(int(s), 1) if s < 2**62 else 2**62
            if any(s > 2**31 for s in sizes) or n > MAX_TENSOR_ELEMENTS:
                raise DataError(
                    f"{path}: {group[:-1]} {t.get('id', t.get('name', '?'))!r} declares a size of {n:.3g} "
                    "elements; refusing a description no machine can run"
                )


def _check_npy_files(path: Path, pkg: PackageFiles) -> None:
    import numpy as np

    for name in pkg.names():
        if not name.lower().endswith(".npy"):
            continue
        with pkg.open(name) as fh:
            head = io.BytesIO(fh.read(1 << 16))
        try:
            version = np.lib.format.read_magic(head)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(head)  # the header only, never the data
        except Exception as e:
            raise DataError(f"{path}: {name} is not a valid .npy file ({e})") from None
        if dtype.hasobject:
            raise DataError(f"{path}: {name} holds pickled Python objects; refusing it (tensors are plain numbers)")
        n = 1
        for s in shape:
            n *= int(s)
        if n > MAX_TENSOR_ELEMENTS:
            raise DataError(f"{path}: {name} declares {n:.3g} elements; refusing it")


def _check_sha256(path: Path, rdf: dict, pkg: PackageFiles) -> None:
    for node in _walk(rdf):
        if not (isinstance(node, dict) and isinstance(node.get("sha256"), str) and isinstance(node.get("source"), str)):
            continue
        source = node["source"]
        if "://" in source:
            continue  # remote files are checked by whoever downloads them
        name = source.lstrip("./")
        if not pkg.has(name):
            raise DataError(f"{path}: the rdf names {source!r}, which the package does not contain")
        digest = hashlib.sha256()
        with pkg.open(name) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != node["sha256"].lower():
            raise DataError(
                f"{path}: {name} does not match the sha256 the rdf declares (corrupt or altered download); "
                "download the package again from its source"
            )


def _refuse_code(path: Path, rdf: dict, pkg: PackageFiles) -> None:
    weights = rdf.get("weights")
    if not isinstance(weights, dict):
        weights = {}
    reasons = []
    for fmt, entry in weights.items():
        if not isinstance(entry, dict):
            continue
        arch = entry.get("architecture")
        if isinstance(arch, dict) and (arch.get("source") or arch.get("callable")):
            where = arch.get("source") or arch.get("import_from") or "an import"
            reasons.append(f"{fmt} builds its network with {arch.get('callable', '?')} from {where}")
        elif isinstance(arch, str):
            reasons.append(f"{fmt} builds its network with {arch}")
    py_files = [n for n in pkg.names() if n.lower().endswith(".py")]
    if py_files:
        reasons.append(f"it contains Python files ({', '.join(py_files[:3])})")
    if reasons:
        raise DataError(
            f"{path} asks to run its own Python code ({'; '.join(reasons)}); fijiport runs no code from "
            "packages unless you pass --trust-code (only for packages from people you trust)"
        )
