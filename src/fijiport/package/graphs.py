"""Checks on the TensorFlow and ONNX graphs of a package from outside, before any runtime loads them.

A TensorFlow graph can read and write files, end the process or run Python (``ReadFile``, ``WriteFile``,
``MatchingFiles``, ``Save``/``Restore*``, ``PrintV2`` to a file, ``PyFunc``, ...), and a SavedModel's loader runs
part of it (the restore op, the init op) before anything is predicted. :func:`check_saved_model` therefore
refuses, naming the op and the node, every graph that uses an op outside :func:`tf_inference_ops` (the allow-list
in ``tf_inference_ops.txt``), in its main graph and in every function of its library. The only exception is the
saver, which a SavedModel with variables needs: its restore subgraph may use the checkpoint readers
(``RestoreV2``, ...) and its save subgraph, which no loader runs, the writers (``SaveV2``, ...), as long as no
signature and no init op reaches them.

The SavedModel is read here without TensorFlow (its Python protobuf classes import all of TensorFlow): a small
reader of the protobuf wire format takes only the fields named below and skips the rest, weights included.

ONNX: :func:`check_onnx` refuses operator domains other than the standard ones and onnxruntime's own, and
initializers whose data lives in external files outside the package.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Optional

from ..errors import DataError

log = logging.getLogger(__name__)

SAVER_READ_OPS = frozenset(
    {"RestoreV2", "Restore", "RestoreSlice", "StringJoin", "ShardedFilename", "ShardedFilespec", "StaticRegexFullMatch"}
)
"""Ops a SavedModel's restore subgraph may use besides the allow-list: they read the package's own variables."""
SAVER_WRITE_OPS = frozenset({"SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints"})
"""Ops only the save subgraph may use (no loader runs it)."""
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
"""Operator domains onnxruntime implements itself; any other needs a custom-op library (code from outside)."""
MAX_DEPTH = 64


@cache
def tf_inference_ops() -> frozenset[str]:
    """The allow-list: ``tf_inference_ops.txt`` next to this module (its header says how it was made)."""
    text = resources.files("fijiport.package").joinpath("tf_inference_ops.txt").read_text()
    return frozenset(line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip())


# --- the protobuf wire format, as much of it as a SavedModel's op names need ---------------------------------


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of one message: an int for varints, the bytes' view for length-delimited."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated field")
        yield number, wire, value


def _messages(buf: memoryview, number: int) -> Iterator[memoryview]:
    for n, wire, value in _fields(buf):
        if n == number and wire == 2:
            assert isinstance(value, memoryview)
            yield value


def _strings(buf: memoryview, number: int) -> list[str]:
    return [bytes(v).decode("utf-8", "replace") for v in _messages(buf, number)]


def _string(buf: memoryview, number: int) -> str:
    values = _strings(buf, number)
    return values[-1] if values else ""


def _map(buf: memoryview, number: int) -> Iterator[tuple[str, memoryview]]:
    """A protobuf map<string, message> field: (key, value message)."""
    for entry in _messages(buf, number):
        key, value = "", memoryview(b"")
        for n, wire, v in _fields(entry):
            if n == 1 and wire == 2:
                assert isinstance(v, memoryview)
                key = bytes(v).decode("utf-8", "replace")
            elif n == 2 and wire == 2:
                assert isinstance(v, memoryview)
                value = v
        yield key, value


def _attr_functions(attr_value: memoryview, depth: int = 0) -> Iterator[str]:
    """Function names an AttrValue refers to (``func``, ``list.func``, nested in their own attrs)."""
    if depth > MAX_DEPTH:
        raise ValueError("attributes nested too deep")
    for name_attr_list in [*_messages(attr_value, 10), *(f for lst in _messages(attr_value, 1) for f in _messages(lst, 9))]:
        yield _string(name_attr_list, 1)
        for _, nested in _map(name_attr_list, 2):
            yield from _attr_functions(nested, depth + 1)


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    """Functions named in its attributes (the ``f`` of a PartitionedCall, the branches of an If, ...)."""

    @classmethod
    def parse(cls, buf: memoryview) -> Node:
        functions = [f for _, attr in _map(buf, 5) for f in _attr_functions(attr)]
        return cls(_string(buf, 1), _string(buf, 2), [i.lstrip("^").split(":")[0] for i in _strings(buf, 3)], functions)


@dataclass
class MetaGraph:
    tags: list[str]
    nodes: list[Node]
    functions: dict[str, list[Node]]
    signatures: dict[str, tuple[dict[str, str], dict[str, str]]]
    """Signature key → (input key → tensor name, output key → tensor name)."""
    collections: dict[str, list[str]]
    """Collections that list nodes (``saved_model_main_op``, ``legacy_init_op``, ...)."""
    saver: dict[str, str]
    """``filename_tensor_name``, ``save_tensor_name``, ``restore_op_name`` (empty without a saver)."""


def parse_saved_model(data: bytes) -> list[MetaGraph]:
    """The meta graphs of a ``saved_model.pb``, as far as the checks need them. Raises ValueError when it is not one."""
    out = []
    for meta in _messages(memoryview(data), 2):
        info = next(_messages(meta, 1), memoryview(b""))
        graph = next(_messages(meta, 2), memoryview(b""))
        nodes = [Node.parse(n) for n in _messages(graph, 1)]
        functions = {}
        for library in _messages(graph, 2):
            for fn in _messages(library, 1):
                signature = next(_messages(fn, 1), memoryview(b""))
                functions[_string(signature, 1)] = [Node.parse(n) for n in _messages(fn, 3)]
        signatures = {}
        for key, sig in _map(meta, 5):
            ins = {k: _string(t, 1) for k, t in _map(sig, 1)}
            outs = {k: _string(t, 1) for k, t in _map(sig, 2)}
            signatures[key] = (ins, outs)
        collections = {}
        for key, coll in _map(meta, 4):
            node_list = next(_messages(coll, 1), None)
            if node_list is not None:
                collections[key] = _strings(node_list, 1)
        saver_buf = next(_messages(meta, 3), memoryview(b""))
        saver = {
            "filename_tensor_name": _string(saver_buf, 1),
            "save_tensor_name": _string(saver_buf, 2),
            "restore_op_name": _string(saver_buf, 3),
        }
        out.append(MetaGraph(_strings(info, 4), nodes, functions, signatures, collections, saver))
    if not out:
        raise ValueError("no meta graph")
    return out


def read_saved_model(data: bytes, where: str) -> list[MetaGraph]:
    try:
        return parse_saved_model(data)
    except (ValueError, IndexError) as e:
        raise DataError(f"{where}: saved_model.pb is not a readable SavedModel ({e}); refusing it") from None


@dataclass(frozen=True)
class SignatureIO:
    """The serving signature's input and output: operation names, output indices, the input's declared shape."""

    input_op: str
    input_index: int
    output_op: str
    output_index: int
    input_shape: Optional[tuple[Optional[int], ...]] = None
    """None when the signature does not declare it; free sizes are None."""


def _shape(tensor_info: memoryview) -> Optional[tuple[Optional[int], ...]]:
    shape = next(_messages(tensor_info, 3), None)
    if shape is None or any(n == 3 and v for n, _, v in _fields(shape)):
        return None
    dims = []
    for dim in _messages(shape, 2):
        size = next((v for n, w, v in _fields(dim) if n == 1 and w == 0), 0)
        assert isinstance(size, int)
        size = size - 2**64 if size >= 2**63 else size
        dims.append(None if size < 0 else size)
    return tuple(dims)


def serving_signature(data: bytes, where: str, input_key: Optional[str] = None, output_key: Optional[str] = None) -> SignatureIO:
    """The input and output of the ``serve`` meta graph's ``serving_default`` signature (else its first), with
    ``input_key``/``output_key`` chosen when the signature has them, as the Fiji plugins and KNIME take them."""
    metas = read_saved_model(data, where)
    buf = memoryview(data)
    index = next((i for i, m in enumerate(metas) if "serve" in m.tags), 0)
    meta_buf = list(_messages(buf, 2))[index]
    sigs = dict(_map(meta_buf, 5))
    if not sigs:
        raise DataError(f"{where}: the SavedModel has no signature; cannot tell its input and output")
    sig = sigs.get("serving_default") or next(iter(sigs.values()))
    ins, outs = dict(_map(sig, 1)), dict(_map(sig, 2))
    if not ins or not outs:
        raise DataError(f"{where}: the SavedModel's signature has no input or no output")
    t_in = ins[input_key] if input_key in ins else next(iter(ins.values()))
    t_out = outs[output_key] if output_key in outs else next(iter(outs.values()))

    def split(info: memoryview) -> tuple[str, int]:
        op, _, idx = _string(info, 1).partition(":")
        return op, int(idx or 0)

    return SignatureIO(*split(t_in), *split(t_out), _shape(t_in))


# --- the checks ------------------------------------------------------------------------------------------------


def _closure(nodes: dict[str, Node], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    stack = [r.lstrip("^").split(":")[0] for r in roots if r]
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack.extend(nodes[name].inputs)
    return seen


def _called(node: Node, functions: dict[str, list[Node]]) -> list[str]:
    return [f for f in [node.op, *node.functions] if f in functions]


def _reach(start: Iterable[str], functions: dict[str, list[Node]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(f for n in functions.get(name, []) for f in _called(n, functions))
    return seen


def graph_problems(meta: MetaGraph) -> list[tuple[str, str, str]]:
    """(op, node, where) of every node a check refuses, in graph order."""
    allowed = tf_inference_ops()
    nodes = {n.name: n for n in meta.nodes}
    roots = [t for ins, outs in meta.signatures.values() for t in [*ins.values(), *outs.values()]]
    roots += [n for names in meta.collections.values() for n in names]
    running = _closure(nodes, roots)
    restore = _closure(nodes, [meta.saver["restore_op_name"], meta.saver["filename_tensor_name"]]) - running
    save = _closure(nodes, [meta.saver["save_tensor_name"]]) - running - restore
    extra = {name: SAVER_READ_OPS for name in restore} | {name: SAVER_READ_OPS | SAVER_WRITE_OPS for name in save}

    fn_extra: dict[str, frozenset[str]] = {}
    strict_fns = _reach((f for n in meta.nodes if n.name not in extra for f in _called(n, meta.functions)), meta.functions)
    for ops, names in ((SAVER_READ_OPS, restore), (SAVER_READ_OPS | SAVER_WRITE_OPS, save)):
        for fn in _reach((f for name in names for f in _called(nodes[name], meta.functions)), meta.functions):
            if fn not in strict_fns:
                fn_extra[fn] = fn_extra.get(fn, ops) & ops
    problems = []
    for n in meta.nodes:
        if n.op not in allowed and n.op not in meta.functions and n.op not in extra.get(n.name, ()):
            problems.append((n.op, n.name, "the graph"))
    for fn, body in meta.functions.items():
        for n in body:
            if n.op not in allowed and n.op not in meta.functions and n.op not in fn_extra.get(fn, ()):
                problems.append((n.op, n.name, f"function {fn}"))
    return problems


def check_saved_model(data: bytes, where: str) -> None:
    """Refuse a ``saved_model.pb`` (its bytes) that uses an op outside the allow-list, naming the op and the node."""
    for meta in read_saved_model(data, where):
        problems = graph_problems(meta)
        if problems:
            op, node, place = problems[0]
            others = sorted({p[0] for p in problems} - {op})
            more = (
                f" It holds {len(problems) - 1} more such node(s){' (' + ', '.join(others[:5]) + ')' if others else ''}."
                if len(problems) > 1
                else ""
            )
            raise DataError(
                f"{where}: the TensorFlow graph uses the op {op} (node {node!r} in {place}), which is not an inference op: "
                f"it could read or write files, or run code, when the model is loaded or run.{more} fijiport loads only "
                "graphs made of inference ops; do not use this model, or ask its authors for one exported without it"
            )


def check_onnx(data: bytes, where: str, package_names: Iterable[str] = (), model_name: str = "") -> None:
    """Refuse an ONNX model (its bytes) with operators of a custom domain, or initializers whose external data lies
    outside the package (``package_names`` are its files; ``model_name`` the ONNX file's own name in it)."""
    import onnx

    try:
        model = onnx.load_model_from_string(data)  # never reads external data itself
    except Exception:  # a protobuf DecodeError: onnxruntime's parser (the same protobuf) cannot load it either
        log.debug("%s: not a readable ONNX model; no runtime can load it, nothing to check", where)
        return
    graphs, nodes, tensors = [model.graph], [n for f in model.functions for n in f.node], []
    while graphs:
        graph = graphs.pop()
        if len(nodes) + len(tensors) > 10_000_000:
            raise DataError(f"{where}: the ONNX model is larger than any image model; refusing it")
        tensors += [*graph.initializer, *(s.values for s in graph.sparse_initializer)]
        for node in graph.node:
            nodes.append(node)
            for a in node.attribute:
                tensors += [a.t] if a.HasField("t") else []
                tensors += list(a.tensors)
                graphs += ([a.g] if a.HasField("g") else []) + list(a.graphs)
    local_functions = {(f.domain, f.name) for f in model.functions}
    for node in nodes:
        if node.domain not in ONNX_DOMAINS and (node.domain, node.op_type) not in local_functions:
            raise DataError(
                f"{where}: the ONNX model uses the operator {node.op_type} of the custom domain {node.domain!r} "
                f"(node {node.name!r}); custom operators need code from outside the package, which fijiport does not run"
            )
    names, base = set(package_names), posixpath.dirname(model_name)
    for t in tensors:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in t.external_data if e.key == "location"), "").replace("\\", "/")
        target = posixpath.normpath(posixpath.join(base, location))
        outside = not location or location.startswith("/") or (len(location) > 1 and location[1] == ":") or target.startswith("..")
        if outside or target not in names:
            raise DataError(
                f"{where}: the ONNX initializer {t.name!r} keeps its data in {location!r}, "
                + ("outside the package" if outside else "which the package does not hold")
                + "; refusing it (an ONNX model may only read files of its own package)"
            )
