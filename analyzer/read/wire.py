"""The protobuf wire format, read with `os.pread` through a small read-ahead window, and the
few pieces of it the skeleton writer emits (varints, length-delimited fields patched in place).
"""

from __future__ import annotations

import os

CHUNK = 64 * 1024
"""Bytes read ahead at a time; small, so skipping a payload wastes at most this much I/O."""
PLACEHOLDER = b"\x80\x80\x80\x80\x00"
"""A 5-byte (padded) varint length, patched once the submessage's new length is known."""
SIZE_VARINT_BYTES = 5


class WireFormatError(ValueError):
    """The file is not a well-formed protobuf message: truncated, bad varint, bad length.

    `kind` is "truncated" when a field runs past the end of the file, "depth" when messages
    nest deeper than protobuf parses, "corrupt" otherwise: enough to pick the loader's error.
    """

    def __init__(self, offset: int, reason: str, kind: str = "corrupt") -> None:
        self.offset = offset
        self.reason = reason
        self.kind = kind
        super().__init__(f"{kind} protobuf at byte {offset:,}: {reason}")


class Source:
    """A read-ahead window over a file descriptor; bytes outside the walked fields stay unread."""

    __slots__ = ("buf", "end", "fd", "forged", "size", "start")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.buf = b""
        self.start = 0
        self.end = 0
        self.forged: str | None = None
        """Name of a tensor whose input already carries the loader's marker (read_model
        refuses those: the marker is reserved)."""

    def error(self, pos: int, limit: int, reason: str) -> WireFormatError:
        """A WireFormatError, "truncated" when the field was cut by the end of the file."""
        return WireFormatError(pos, reason, "truncated" if limit >= self.size else "corrupt")

    def _pread(self, pos: int, count: int) -> bytes:
        parts: list[bytes] = []
        while count > 0:
            part = os.pread(self.fd, min(count, 1 << 30), pos)
            if not part:
                raise WireFormatError(pos, "file shrank while being read")
            parts.append(part)
            pos += len(part)
            count -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _fill(self, pos: int) -> None:
        self.buf = self._pread(pos, min(CHUNK, self.size - pos))
        self.start = pos
        self.end = pos + len(self.buf)

    def read(self, pos: int, count: int) -> bytes:
        """Bytes [pos, pos+count); callers have checked the range lies inside the file."""
        if self.start <= pos and pos + count <= self.end:
            return self.buf[pos - self.start : pos - self.start + count]
        if count >= CHUNK:
            return self._pread(pos, count)
        self._fill(pos)
        return self.buf[:count]

    def varint(self, pos: int, limit: int) -> tuple[int, int]:
        """Decode the varint at pos, which must end before limit; returns (value, next pos)."""
        if pos >= limit:
            raise self.error(pos, limit, "varint runs past the end of its message")
        if pos < self.start or min(pos + 10, limit) > self.end:
            self._fill(pos)
        buf = self.buf
        i = pos - self.start
        byte = buf[i]
        if byte < 0x80:
            return byte, pos + 1
        value = byte & 0x7F
        for k in range(1, 10):
            if pos + k >= limit:
                raise self.error(pos, limit, "varint runs past the end of its message")
            byte = buf[i + k]
            value |= (byte & 0x7F) << (7 * k)
            if byte < 0x80:
                return value & 0xFFFF_FFFF_FFFF_FFFF, pos + k + 1
        raise WireFormatError(pos, "varint longer than 10 bytes")

    def tag(self, pos: int, limit: int) -> tuple[int, int, int]:
        """Decode a field tag as protobuf does; returns (field number, wire type, next pos)."""
        tag, nxt = self.varint(pos, limit)
        if nxt - pos > SIZE_VARINT_BYTES or tag > 0xFFFF_FFFF or tag >> 3 == 0:
            raise WireFormatError(pos, f"invalid field tag {tag}")
        return tag >> 3, tag & 7, nxt

    def length(self, pos: int, limit: int) -> tuple[int, int]:
        """Decode a length prefix and check the body fits before limit: (body end, body start)."""
        size, nxt = self.varint(pos, limit)
        if nxt - pos > SIZE_VARINT_BYTES and size < 1 << 35:
            raise WireFormatError(pos, "over-long length varint")
        if size > limit - nxt:
            raise self.error(pos, limit, f"length {size:,} runs past the end of its message")
        return nxt + size, nxt


def skip(src: Source, pos: int, limit: int, field: int, wire: int) -> int:
    """Position after the body of a field whose tag ended at pos (groups are skipped whole)."""
    if wire == 0:
        return src.varint(pos, limit)[1]
    if wire == 2:
        return src.length(pos, limit)[0]
    if wire in (1, 5):
        end = pos + (8 if wire == 1 else 4)
        if end > limit:
            raise src.error(pos, limit, "fixed-width field runs past the end of its message")
        return end
    if wire == 3:
        open_groups = [field]
        while open_groups:
            if pos >= limit:
                raise src.error(pos, limit, "unterminated group")
            at = pos
            inner, inner_wire, pos = src.tag(pos, limit)
            if inner_wire == 4:
                if inner != open_groups.pop():
                    raise WireFormatError(at, "mismatched end-group tag")
            elif inner_wire == 3:
                open_groups.append(inner)
            else:
                pos = skip(src, pos, limit, inner, inner_wire)
        return pos
    raise WireFormatError(pos, f"invalid wire type {wire} for field {field}")


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def header(field: int) -> bytes:
    return encode_varint((field << 3) | 2)


def open_field(out: bytearray, field: int) -> tuple[int, int]:
    """Start a length-delimited submessage in out; returns (placeholder pos, body start)."""
    out += header(field)
    at = len(out)
    out += PLACEHOLDER
    return at, len(out)


def close_field(out: bytearray, at: int, body: int) -> None:
    """Patch the placeholder with the body's final length (padded varints parse fine)."""
    size = len(out) - body
    if size >= 1 << 35:
        raise WireFormatError(0, "skeleton submessage too large")
    out[at : at + 5] = bytes(
        (
            (size & 0x7F) | 0x80,
            ((size >> 7) & 0x7F) | 0x80,
            ((size >> 14) & 0x7F) | 0x80,
            ((size >> 21) & 0x7F) | 0x80,
            size >> 28,
        )
    )


def copy_range(src: Source, out: bytearray, start: int, end: int) -> None:
    if end > start:
        out += src.read(start, end - start)


def int32(value: int) -> int:
    """protobuf reads an enum varint as int32 (the low 32 bits)."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
