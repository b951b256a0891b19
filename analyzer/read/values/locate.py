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


def _signed(value: int) -> int:
    """A dim as protobuf reads an int64 varint."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_dims(src: Source, pos: int, end: int, dims: list[int]) -> int:
    stop, body = src.length(pos, end)
    while body < stop:
        value, body = src.varint(body, stop)
        dims.append(_signed(value))
    return stop


def _external_entry(src: Source, pos: int, end: int, external: dict[str, str]) -> int:
    """One StringStringEntryProto (key 1, value 2); the last of a key wins."""
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
    return stop


@dataclass(slots=True)
class _Fields:
    """What one TensorProto's fields said so far."""

    name: str = ""
    data_type: int = 0
    dims: list[int] = field(default_factory=list)
    raw: tuple[int, int] | None = None
    typed: bool = False
    external_location: bool = False
    external: dict[str, str] = field(default_factory=dict)


def _varint_field(src: Source, num: int, pos: int, end: int, out: _Fields) -> int:
    value, pos = src.varint(pos, end)
    if num == 1:
        out.dims.append(_signed(value))
    elif num == 2:
        out.data_type = value
    elif num == 14:
        out.external_location = value == 1
    else:
        out.typed = out.typed or num in _TYPED
    return pos


def _delimited_field(src: Source, num: int, pos: int, end: int, out: _Fields) -> int:
    if num == 1:
        return _packed_dims(src, pos, end, out.dims)
    if num == 8:
        out.name, pos = _text(src, pos, end)
        return pos
    if num == 13:
        return _external_entry(src, pos, end, out.external)
    stop, body = src.length(pos, end)
    if num == 9:
        out.raw = (body, stop - body)
    out.typed = out.typed or num in _TYPED
    return stop


def _tensor(src: Source, start: int, end: int, fallback: str) -> Located:
    """Fields of one TensorProto in [start, end); the last raw_data and external entries win."""
    out = _Fields()
    pos = start
    while pos < end:
        num, wire, pos = src.tag(pos, end)
        if wire == 0:
            pos = _varint_field(src, num, pos, end, out)
        elif wire == 2:
            pos = _delimited_field(src, num, pos, end, out)
        else:
            out.typed = out.typed or num in _TYPED
            pos = skip(src, pos, end, num, wire)
    external = out.external_location
    return Located(
        name=out.name or fallback,
        data_type=out.data_type & 0xFFFF_FFFF,
        dims=tuple(out.dims),
        raw=None if external else out.raw,
        message=(start, end - start),
        typed=out.typed and not external,
        external=out.external if external else {},
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
