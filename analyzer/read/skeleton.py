"""Build the payload-free skeleton straight from the protobuf wire format.

`read_model` + `strip_payloads` parse the whole file, so a model costs its full size in time and
memory, and protobuf refuses single files over 2 GiB. `read_skeleton` walks the wire format with
`os.pread` instead: every field that is not a large tensor payload is copied verbatim into a small
buffer, large payloads are skipped by offset and replaced by the loader's `@embedded` markers,
and the buffer is parsed once. The result equals `strip_payloads(read_model(path))` field for
field, while the payload bytes of large tensors are never read.

Which tensors are visited mirrors `protowalk.iter_tensors` exactly (attribute tensors and
subgraphs only when the attribute's `type` says so, functions' default attributes included),
so both paths strip the same tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path

from google.protobuf.message import DecodeError, Message

from analyzer.core.errors import NotFoundError
from analyzer.core.onnxproto import ModelProto
from analyzer.core.protowalk import iter_tensors
from analyzer.read.plain import check_is_model, forged_error, open_model
from analyzer.read.strip import SPARSE_SINGULAR, emit_sparse, emit_tensor, scan
from analyzer.read.tensors import MARK_KEY, strip_payloads
from analyzer.read.wire import (
    Source,
    WireFormatError,
    close_field,
    copy_range,
    encode_varint,
    header,
    open_field,
    skip,
)

INLINE_BYTES = 16 * 1024
"""Fields up to this size are read whole and stripped by the plain path (protobuf speed for
graphs of many small nodes); larger ones are walked so their payloads are never read."""
RUN_BYTES = 4 * 1024 * 1024
"""Largest run of small fields parsed at once, bounding the transient protobuf objects."""
MAX_NESTING = 200
"""Graph/node/attribute frames deeper than this cannot parse anyway (protobuf stops at 100)."""

# Message kinds the walker tracks. Tensors and sparse tensors are leaves handled in one call.
_MODEL, _GRAPH, _NODE, _ATTR, _FUNCTION, _TRAINING, _TENSOR, _SPARSE = range(8)

_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _FUNCTION: {7: _NODE, 11: _ATTR},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
}
"""Field number -> kind of the length-delimited submessages that can hold tensors."""

_ATTR_CHILDREN: dict[int, dict[int, int]] = {
    4: {5: _TENSOR},  # TENSOR: t
    9: {10: _TENSOR},  # TENSORS: tensors
    11: {22: _SPARSE},  # SPARSE_TENSOR: sparse_tensor
    12: {23: _SPARSE},  # SPARSE_TENSORS: sparse_tensors
    5: {6: _GRAPH},  # GRAPH: g
    10: {11: _GRAPH},  # GRAPHS: graphs
}
"""AttributeProto.type -> the fields protowalk descends into for that type."""

_SINGULAR = {_ATTR: (5, 22), _SPARSE: SPARSE_SINGULAR}
"""Singular message fields: repeated occurrences merge, so they are processed as one message."""


def _rejected(exc: Exception) -> WireFormatError:
    kind = "depth" if "MaxDepth" in str(exc) else "corrupt"
    return WireFormatError(0, f"protobuf rejected the model: {exc}", kind)


def _plain(src: Source, kind: int, data: bytes) -> bytes:
    """Strip a small run of fields with the plain path itself: parse, strip_payloads, serialize.

    The run holds whole fields of one message of the given kind. Wrapping it at the same place
    in a ModelProto makes protowalk visit exactly the tensors the full parse would, and
    reparsing the serialized result later merges it with the message's other fields.
    """
    model = ModelProto()
    target: Message
    if kind == _MODEL:
        target = model
    elif kind == _GRAPH:
        target = model.graph
    elif kind == _NODE:
        target = model.graph.node.add()
    elif kind == _FUNCTION:
        target = model.functions.add()
    else:
        target = model.training_info.add()
    try:
        target.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _rejected(exc) from None
    if src.forged is None:
        for tensor in iter_tensors(model):
            if any(entry.key == MARK_KEY for entry in tensor.external_data):
                name: str | bytes = tensor.name  # bytes when not UTF-8
                src.forged = (
                    name if isinstance(name, str) else name.decode(errors="backslashreplace")
                )
                break
    strip_payloads(model)
    result: bytes = target.SerializeToString()
    return result


@dataclass(slots=True)
class _Frame:
    """A model, graph, node, attribute, function or training-info message being copied.

    [pending, pos) is the run of fields read but not yet emitted; `dirty` says the run holds a
    small child that may hold tensors, so it goes through _plain instead of a verbatim copy.
    `merged` maps singular fields (attribute t, sparse_tensor) to all their occurrences.
    """

    kind: int
    children: dict[int, int]
    segments: list[tuple[int, int]]
    at: int
    body: int
    merged: dict[int, list[tuple[int, int]]] | None = None
    done: set[int] = _field(default_factory=set)
    dirty: bool = False
    pos: int = 0
    end: int = 0
    pending: int = 0

    def __post_init__(self) -> None:
        self.pos, self.end = self.segments[0]
        self.pending = self.pos


def _flush(src: Source, out: bytearray, frame: _Frame, upto: int) -> None:
    """Emit the pending run of fields up to upto."""
    if frame.dirty:
        out += _plain(src, frame.kind, src.read(frame.pending, upto - frame.pending))
        frame.dirty = False
    else:
        copy_range(src, out, frame.pending, upto)
    frame.pending = upto


def _fast_run(src: Source, frame: _Frame) -> None:
    """Extend the frame's pending run over small fields whose headers sit in the read window.

    The same decisions as _advance's slow path, with varints decoded inline: graphs of
    100,000 small nodes spend their time here. Anything unusual stops the loop and is left to
    the slow path, which also raises the errors.
    """
    buf, base = src.buf, src.start
    pos, limit = frame.pos, frame.end
    stop = min(limit, src.end) - 12  # a 2-byte tag plus a 10-byte varint stay inside both
    children = frame.children
    dirty = frame.dirty
    run_end = frame.pending + RUN_BYTES
    while base <= pos < stop and pos < run_end:
        i = pos - base
        tag = buf[i]
        i += 1
        if tag >= 0x80:
            high = buf[i]
            if high >= 0x80:
                break
            tag = (tag & 0x7F) | (high << 7)
            i += 1
        wire = tag & 7
        if tag < 8:
            break
        if wire == 2:
            size = buf[i]
            i += 1
            if size >= 0x80:
                size &= 0x7F
                shift = 7
                while shift < 35:
                    byte = buf[i]
                    i += 1
                    size |= (byte & 0x7F) << shift
                    if byte < 0x80:
                        break
                    shift += 7
                else:
                    break
            nxt = base + i + size
            if nxt > limit or nxt - pos > INLINE_BYTES:
                break
            if tag >> 3 in children:
                dirty = True
        elif wire == 0:
            count = 0
            while buf[i] >= 0x80 and count < 9:
                i += 1
                count += 1
            if count == 9:
                break
            nxt = base + i + 1
        elif wire in (1, 5):
            nxt = base + i + (8 if wire == 1 else 4)
            if nxt > limit:
                break
        else:
            break
        pos = nxt
    frame.pos = pos
    frame.dirty = dirty


def _advance(src: Source, out: bytearray, frame: _Frame) -> _Frame | None:
    """Copy fields of frame until a child frame must be entered (returned) or the frame ends."""
    children = frame.children
    batch = frame.kind != _ATTR and INLINE_BYTES > 0
    while True:
        if batch:
            _fast_run(src, frame)
            if frame.pos - frame.pending >= RUN_BYTES:
                _flush(src, out, frame, frame.pos)
        start, limit = frame.pos, frame.end
        if start >= limit:
            _flush(src, out, frame, limit)
            frame.segments.pop(0)
            if not frame.segments:
                return None
            frame.pos, frame.end = frame.segments[0]
            frame.pending = frame.pos
            continue
        num, wire, pos = src.tag(start, limit)
        kind = children.get(num) if wire == 2 else None
        if kind is None:
            frame.pos = skip(src, pos, limit, num, wire)
            continue
        end, body = src.length(pos, limit)
        if batch and end - start <= INLINE_BYTES:
            frame.pos = end
            frame.dirty = True
            if end - frame.pending >= RUN_BYTES:
                _flush(src, out, frame, end)
            continue
        _flush(src, out, frame, start)
        frame.pos = frame.pending = end
        child = _enter(src, out, frame, (num, kind), (start, body, end))
        if child is not None:
            return child


def _enter(
    src: Source, out: bytearray, frame: _Frame, field: tuple[int, int], span: tuple[int, int, int]
) -> _Frame | None:
    """A child message too large to copy inline: emitted here (tensors, small graphs) or
    returned as the frame to walk next. Merged occurrences of a singular field go once."""
    num, kind = field
    start, body, end = span
    segments = [(body, end)]
    if frame.merged is not None and num in frame.merged:
        if num in frame.done:
            return None
        frame.done.add(num)
        segments = list(frame.merged[num])
    if kind == _TENSOR:
        emit_tensor(src, out, num, segments)
    elif kind == _SPARSE:
        emit_sparse(src, out, num, segments)
    elif kind == _GRAPH and end - start <= INLINE_BYTES:
        data = _plain(src, _GRAPH, src.read(body, end - body))
        out += header(num) + encode_varint(len(data)) + data
    elif kind == _ATTR:
        found, attr_type = scan(src, segments, _SINGULAR[_ATTR])
        attr_children = _ATTR_CHILDREN.get(attr_type, {})
        singular = {n: found[n] for n in attr_children if n in _SINGULAR[_ATTR] and n in found}
        at, first = open_field(out, num)
        return _Frame(_ATTR, attr_children, segments, at, first, merged=singular)
    else:
        at, first = open_field(out, num)
        return _Frame(kind, _CHILDREN[kind], segments, at, first)
    return None


def skeleton_bytes(fd: int, size: int) -> tuple[bytearray, str | None]:
    """The serialized skeleton of the ModelProto in the first size bytes of fd, and the name of
    a tensor that already carried the loader's marker, if any.

    An explicit stack of frames, so hostile nesting costs memory, not Python recursion.
    """
    src = Source(fd, size)
    out = bytearray()
    stack = [_Frame(_MODEL, _CHILDREN[_MODEL], [(0, size)], -1, 0)]
    while stack:
        child = _advance(src, out, stack[-1])
        if child is not None:
            if len(stack) >= MAX_NESTING:
                raise WireFormatError(
                    child.pos, "messages nest deeper than protobuf allows", "depth"
                )
            stack.append(child)
            continue
        done = stack.pop()
        if done.at >= 0:
            close_field(out, done.at, done.body)
    return out, src.forged


def read_skeleton(path: Path) -> ModelProto:
    """`strip_payloads(read_model(path))` without reading large payloads; works over 2 GiB.

    Raises what read_model raises for missing, empty, graph-less files and forged markers, and
    WireFormatError (a ValueError) where read_model's protobuf parse would fail.
    """
    name = str(path)
    fd, info = open_model(path)
    try:
        data, forged = skeleton_bytes(fd, info.st_size)
    except OSError as exc:
        raise NotFoundError(name, f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _rejected(exc) from None
    check_is_model(model, name, data)
    del data
    if forged is not None:
        raise forged_error(name, forged)
    return model


__all__ = ["WireFormatError", "encode_varint", "read_skeleton", "skeleton_bytes"]
