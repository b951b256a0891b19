"""Copy one TensorProto (or SparseTensorProto) off the wire without its large payload.

The skeleton walker hands each tensor here: small tensors are copied as they are, large ones
lose their payload fields and gain the loader's `@embedded` external-data markers. `scan`
finds the singular fields of a message written in several pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from analyzer.read.tensors import EMBEDDED, KEEP_ELEMENTS, MARK_KEY
from analyzer.read.wire import (
    Source,
    WireFormatError,
    close_field,
    copy_range,
    encode_varint,
    header,
    int32,
    int64,
    open_field,
    skip,
)

_ATTR_TYPE_FIELD = 20
_ATTR_TYPES = range(15)
"""Values of the closed AttributeType enum; protobuf keeps other values as unknown fields."""
SPARSE_SINGULAR = (1, 2)
"""SparseTensorProto's singular message fields (values, indices): repeated occurrences merge."""

_PAYLOAD: dict[int, tuple[tuple[int, ...], int]] = {
    4: ((5, 2), 4),  # float_data, fixed32 or packed
    5: ((0, 2), 0),  # int32_data
    6: ((2,), 0),  # string_data
    7: ((0, 2), 0),  # int64_data
    9: ((2,), 0),  # raw_data
    10: ((1, 2), 8),  # double_data, fixed64 or packed
    11: ((0, 2), 0),  # uint64_data
}
"""TensorProto payload field -> (wire types protobuf accepts for it, packed element width)."""
_RAW_DATA = 9
_DIMS = 1
_NAME = 8
_EXTERNAL_DATA = 13
_DATA_LOCATION = 14
_EXTERNAL = 1


def _is_large(dims: list[int]) -> bool:
    """`element_count(dims) > KEEP_ELEMENTS` without multiplying out hostile dims."""
    if 0 in dims or sum(1 for d in dims if d < 0) % 2:
        return False
    count = 1
    for dim in dims:
        count *= abs(dim)
        if count > KEEP_ELEMENTS:
            return True
    return False


def _markers(raw_len: int | None) -> bytes:
    """The fields `strip_tensor` adds: data_location=EXTERNAL and its external_data entries."""
    entries = [("location", EMBEDDED), (MARK_KEY, "stripped")]
    if raw_len is not None:
        entries.append(("length", str(raw_len)))
    out = bytearray(b"\x70\x01")  # field 14, varint 1
    for key, value in entries:
        entry = bytearray()
        for field, text in ((1, key), (2, value)):
            data = text.encode()
            entry += header(field) + encode_varint(len(data)) + data
        out += header(13) + encode_varint(len(entry)) + entry
    return bytes(out)


def _is_marker_entry(src: Source, start: int, end: int) -> bool:
    """Whether the StringStringEntryProto in [start, end) has the loader's marker as its key."""
    marker = MARK_KEY.encode()
    found = False
    pos = start
    while pos < end:
        num, wire, pos = src.tag(pos, end)
        if num == 1 and wire == 2:  # key; the last one wins
            stop, body = src.length(pos, end)
            found = stop - body == len(marker) and src.read(body, len(marker)) == marker
            pos = stop
        else:
            pos = skip(src, pos, end, num, wire)
    return found


@dataclass(slots=True)
class _TensorScan:
    """What one TensorProto's fields said so far, and the payload ranges to copy or drop."""

    dims: list[int] = dataclass_field(default_factory=list)
    name: tuple[int, int] = (0, 0)
    forged: bool = False
    location: int = 0
    raw_len: int | None = None
    payload: list[list[int]] = dataclass_field(default_factory=list)
    pending: int = 0
    """Start of the non-payload bytes not yet copied out."""

    def field(self, src: Source, out: bytearray, start: int, seg_end: int) -> int:
        """Read the field starting at `start`; copy what precedes a payload; its end."""
        num, wire, pos = src.tag(start, seg_end)
        if num == _DIMS and wire in (0, 2):
            return _read_dims(src, pos, seg_end, wire, self.dims)
        if num in (_NAME, _EXTERNAL_DATA) and wire == 2:
            pos, body_start = src.length(pos, seg_end)
            if num == _NAME:
                self.name = (body_start, pos)
            else:
                self.forged = self.forged or _is_marker_entry(src, body_start, pos)
            return pos
        if num == _DATA_LOCATION and wire == 0:
            value, pos = src.varint(pos, seg_end)
            if int32(value) in (0, _EXTERNAL):
                self.location = int32(value)
            return pos
        if num in _PAYLOAD and wire in _PAYLOAD[num][0]:
            return self.payload_field(src, out, start, pos, seg_end, num, wire)
        return skip(src, pos, seg_end, num, wire)

    def payload_field(  # noqa: PLR0917  (the field's coordinates, as the caller has them)
        self, src: Source, out: bytearray, start: int, pos: int, seg_end: int, num: int, wire: int
    ) -> int:
        pos, length = _payload_end(src, start, pos, seg_end, num=num, wire=wire)
        if num == _RAW_DATA:
            self.raw_len = length
        copy_range(src, out, self.pending, start)
        self.pending = pos
        if self.payload and self.payload[-1][1] == start:  # adjacent payload fields: one range
            self.payload[-1][1] = pos
        else:
            self.payload.append([start, pos])
        return pos


def emit_tensor(src: Source, out: bytearray, field: int, segments: list[tuple[int, int]]) -> None:
    """Copy one TensorProto (possibly split over merged occurrences), stripping it if large.

    Non-payload fields go out as they come; payload ranges are remembered and copied or replaced
    by markers once the whole message (dims and data_location may come last) has been seen.
    """
    at, body = open_field(out, field)
    scan = _TensorScan()
    for seg_start, seg_end in segments:
        pos = scan.pending = seg_start
        while pos < seg_end:
            pos = scan.field(src, out, pos, seg_end)
        copy_range(src, out, scan.pending, seg_end)
    if scan.forged and src.forged is None:
        first, last = scan.name
        src.forged = src.read(first, min(last - first, 4096)).decode("utf-8", "backslashreplace")
    if scan.location == _EXTERNAL or not _is_large(scan.dims):
        for start, end in scan.payload:
            copy_range(src, out, start, end)
    else:
        out += _markers(scan.raw_len)
    close_field(out, at, body)


def _read_dims(src: Source, pos: int, seg_end: int, wire: int, dims: list[int]) -> int:
    """Append a dims field's values (one varint, or packed); the position after it."""
    if wire == 0:
        value, pos = src.varint(pos, seg_end)
        dims.append(int64(value))
        return pos
    end, pos = src.length(pos, seg_end)
    while pos < end:
        value, pos = src.varint(pos, end)
        dims.append(int64(value))
    return pos


def _payload_end(
    src: Source, start: int, pos: int, seg_end: int, *, num: int, wire: int
) -> tuple[int, int | None]:
    """The end of a payload field starting at `start`, and its body length when packed."""
    if wire != 2:
        return skip(src, pos, seg_end, num, wire), None
    end, body_start = src.length(pos, seg_end)
    width = _PAYLOAD[num][1]
    if width and (end - body_start) % width:
        raise WireFormatError(start, "packed field length not a multiple of 4/8")
    return end, end - body_start


def scan(
    src: Source, segments: list[tuple[int, int]], wanted: tuple[int, ...]
) -> tuple[dict[int, list[tuple[int, int]]], int]:
    """Headers-only pass: body ranges of the wanted message fields, and the AttributeType."""
    found: dict[int, list[tuple[int, int]]] = {}
    attr_type = 0
    for seg_start, seg_end in segments:
        pos = seg_start
        while pos < seg_end:
            num, wire, pos = src.tag(pos, seg_end)
            if wire == 2 and num in wanted:
                end, body = src.length(pos, seg_end)
                found.setdefault(num, []).append((body, end))
                pos = end
            elif num == _ATTR_TYPE_FIELD and wire == 0:
                value, pos = src.varint(pos, seg_end)
                if int32(value) in _ATTR_TYPES:
                    attr_type = int32(value)
            else:
                pos = skip(src, pos, seg_end, num, wire)
    return found, attr_type


def emit_sparse(src: Source, out: bytearray, field: int, segments: list[tuple[int, int]]) -> None:
    """Copy one SparseTensorProto, handing its values and indices tensors to _emit_tensor."""
    at, body = open_field(out, field)
    merged, _ = scan(src, segments, SPARSE_SINGULAR)
    done: set[int] = set()
    for seg_start, seg_end in segments:
        pos = pending = seg_start
        while pos < seg_end:
            start = pos
            num, wire, pos = src.tag(pos, seg_end)
            pos = skip(src, pos, seg_end, num, wire)
            if wire == 2 and num in merged:
                copy_range(src, out, pending, start)
                pending = pos
                if num not in done:
                    done.add(num)
                    emit_tensor(src, out, num, merged[num])
        copy_range(src, out, pending, seg_end)
    close_field(out, at, body)
