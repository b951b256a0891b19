"""Where each stored tensor's bytes are: one walk of the file's wire format, no payload read.

The static analysis drops payloads without recording where they sit; the weight audit needs
their file offsets so it can stream them in chunks. This walk visits the same places
`protowalk.iter_tensors` does (initializers, sparse initializers, Constant and other tensor
attributes, subgraphs, functions, training graphs) with an explicit stack, so hostile nesting
costs memory, not recursion.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.read.wire import Source, WireFormatError, skip

_MODEL, _GRAPH, _NODE, _ATTR, _FUNCTION, _TRAINING, _SPARSE = range(7)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION, 20: _TRAINING},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _GRAPH: {1: _NODE, 15: _SPARSE},
    _FUNCTION: {7: _NODE, 11: _ATTR},
    _ATTR: {6: _GRAPH, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
}
_TENSOR_FIELDS: dict[int, tuple[int, ...]] = {_GRAPH: (5,), _ATTR: (5, 10), _SPARSE: (1, 2)}
"""Fields holding a TensorProto directly, per parent message."""
_TYPED = frozenset((4, 5, 7, 10, 11))
"""TensorProto's typed payload fields: float, int32, int64, double, uint64 data."""
MAX_NESTING = 10_000


@dataclass(frozen=True, slots=True)
class Located:
    """One stored tensor and where its values are, without the values."""

    name: str
    data_type: int
    dims: tuple[int, ...]
    raw: tuple[int, int] | None
    """(offset, length) of raw_data in the model file."""
    message: tuple[int, int]
    """(offset, length) of the whole TensorProto (typed fields are decoded from it)."""
    typed: bool
    external: dict[str, str] = field(default_factory=dict)
    """external_data entries (location, offset, length) when data_location is EXTERNAL."""


def _text(src: Source, pos: int, limit: int) -> tuple[str, int]:
    end, body = src.length(pos, limit)
    return src.read(body, end - body).decode("utf-8", "replace"), end


def _tensor(src: Source, start: int, end: int, fallback: str) -> Located:
    """Fields of one TensorProto in [start, end); the last raw_data and external entries win."""
    name, data_type, dims = "", 0, []
    raw: tuple[int, int] | None = None
    typed, external_location = False, False
    external: dict[str, str] = {}
    pos = start
    while pos < end:
        num, wire, pos = src.tag(pos, end)
        if num == 1 and wire == 0:
            value, pos = src.varint(pos, end)
            dims.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif num == 1 and wire == 2:
            stop, body = src.length(pos, end)
            while body < stop:
                value, body = src.varint(body, stop)
                dims.append(value - (1 << 64) if value >= 1 << 63 else value)
            pos = stop
        elif num == 2 and wire == 0:
            data_type, pos = src.varint(pos, end)
        elif num == 8 and wire == 2:
            name, pos = _text(src, pos, end)
        elif num == 9 and wire == 2:
            stop, body = src.length(pos, end)
            raw, pos = (body, stop - body), stop
        elif num == 13 and wire == 2:
            stop, body = src.length(pos, end)
            key = value_text = ""
            while body < stop:
                inner, inner_wire, body = src.tag(body, stop)
                if inner in (1, 2) and inner_wire == 2:
                    text, body = _text(src, body, stop)
                    key, value_text = (text, value_text) if inner == 1 else (key, text)
                else:
                    body = skip(src, body, stop, inner, inner_wire)
            external[key] = value_text
            pos = stop
        elif num == 14 and wire == 0:
            location, pos = src.varint(pos, end)
            external_location = location == 1
        else:
            typed = typed or num in _TYPED
            pos = skip(src, pos, end, num, wire)
    return Located(
        name=name or fallback,
        data_type=data_type & 0xFFFF_FFFF,
        dims=tuple(dims),
        raw=None if external_location else raw,
        message=(start, end - start),
        typed=typed and not external_location,
        external=external if external_location else {},
    )


def _node(src: Source, start: int, end: int) -> tuple[str, list[tuple[int, int]]]:
    """A node's first output (names a Constant's tensor) and its attributes' ranges."""
    outputs: list[str] = []
    attributes: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        num, wire, pos = src.tag(pos, end)
        if num == 2 and wire == 2:
            text, pos = _text(src, pos, end)
            outputs.append(text)
        elif num == 5 and wire == 2:
            stop, body = src.length(pos, end)
            attributes.append((body, stop))
            pos = stop
        else:
            pos = skip(src, pos, end, num, wire)
    return (outputs[0] if outputs else ""), attributes


def locate(path: Path) -> list[Located]:
    """Every stored tensor of the model file at `path`, in file order of discovery."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        src = Source(fd, os.fstat(fd).st_size)
        return _walk(src)
    finally:
        os.close(fd)


def _walk(src: Source) -> list[Located]:
    found: list[Located] = []
    stack: list[tuple[int, int, int, str, int]] = [(_MODEL, 0, src.size, "", 0)]
    while stack:
        kind, start, end, label, depth = stack.pop()
        if depth > MAX_NESTING:
            raise WireFormatError(start, "messages nest deeper than protobuf allows", "depth")
        if kind == _NODE:
            output, attributes = _node(src, start, end)
            stack.extend((_ATTR, a, b, output, depth + 1) for a, b in reversed(attributes))
            continue
        children = _CHILDREN.get(kind, {})
        tensors = _TENSOR_FIELDS.get(kind, ())
        pending: list[tuple[int, int, int, str, int]] = []
        pos = start
        while pos < end:
            num, wire, pos = src.tag(pos, end)
            if wire == 2 and (num in children or num in tensors):
                stop, body = src.length(pos, end)
                if num in tensors:
                    found.append(_tensor(src, body, stop, label))
                else:
                    pending.append((children[num], body, stop, label, depth + 1))
                pos = stop
            else:
                pos = skip(src, pos, end, num, wire)
        stack.extend(reversed(pending))
    return found


__all__ = ["Located", "locate"]
