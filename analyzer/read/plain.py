"""Read a whole model file with protobuf, and tell a broken file's problem precisely.

Both readers (this one and the skeleton reader) open the file and check the parsed model here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from google.protobuf.message import DecodeError

from analyzer.core.errors import (
    AuditError,
    CorruptError,
    LimitExceededError,
    MalformedGraphError,
    NotFoundError,
    NotOnnxError,
    TruncatedError,
    UnsupportedError,
    quote,
)
from analyzer.core.onnxproto import ModelProto
from analyzer.core.protowalk import repair_strings, strings_are_text
from analyzer.read.tensors import (
    MARK_KEY,
    PROTOBUF_LIMIT,
    _forged_marker,
)


def sniff(head: bytes) -> str:
    """A hint about what a file that failed to parse really is."""
    if head.startswith(b"PK\x03\x04"):
        return "looks like a zip archive (a PyTorch checkpoint or a zipped model?)"
    if head.startswith(b"\x1f\x8b"):
        return "looks like gzip data; decompress it first"
    if head.startswith(b"\x89HDF"):
        return "looks like an HDF5 (Keras .h5) file; export it to ONNX first"
    if head[:1] == b"\x80":
        return "looks like a Python pickle; export it to ONNX first"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return "looks like a text file"
    return "is this an ONNX ModelProto file?"


_FIELD_NAMES = {f.number: f.name for f in ModelProto.DESCRIPTOR.fields}
_MAX_VARINT = 10
_MAX_TOP_FIELDS = 100_000
"""A real ModelProto has a dozen top-level fields; the diagnosis stops walking after this many."""


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None when the data ends inside the varint."""
    value = shift = 0
    for offset in range(_MAX_VARINT):
        if pos + offset >= len(data):
            return None
        byte = data[pos + offset]
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos + offset + 1
    return value, pos + _MAX_VARINT


def _wire_problem(data: bytes) -> tuple[str, str] | None:
    """Walk the top-level fields of a ModelProto: ("truncated"|"garbage", what) or None.

    Only the outer framing is walked (a handful of fields), so this is cheap; it tells a file cut
    short from one that never was protobuf, which protobuf's one DecodeError message cannot.
    """
    pos, size = 0, len(data)
    for _ in range(_MAX_TOP_FIELDS):
        if pos >= size:
            break
        tag = _varint(data, pos)
        if tag is None:
            return "truncated", "the file ends inside a field header"
        number, wire = tag[0] >> 3, tag[0] & 7
        if number == 0 or wire not in (0, 1, 2, 5):
            return "garbage", f"invalid protobuf field header at byte {pos:,}"
        name = _FIELD_NAMES.get(number, f"#{number}")
        pos = tag[1]
        if wire == 0:
            value = _varint(data, pos)
            if value is None:
                return "truncated", f"the file ends inside field {name}"
            pos = value[1]
            continue
        if wire == 2:
            length = _varint(data, pos)
            if length is None:
                return "truncated", f"the file ends inside the length of field {name}"
            pos = length[1]
            need = length[0]
        else:
            need = 8 if wire == 1 else 4
        if pos + need > size:
            missing = pos + need - size
            return "truncated", f"field {name} runs {missing:,} bytes past the end of the file"
        pos += need
    return None


def _parse_error(path: str, data: bytes, exc: Exception) -> AuditError:
    """The most specific error for bytes protobuf refused to parse as a ModelProto."""
    if "MaxDepth" in str(exc):
        return LimitExceededError(
            path,
            "messages nest deeper than protobuf's limit of 100 (about 30 levels of If/Loop)",
            "flatten the nested control flow; protobuf itself cannot read this file",
        )
    problem = _wire_problem(data)
    sniffed = sniff(data[:64])
    looks_onnx = data[:1] == b"\x08" and sniffed == "is this an ONNX ModelProto file?"
    if problem is not None and problem[0] == "truncated" and looks_onnx:
        return TruncatedError(path, f"truncated ONNX file: {problem[1]}")
    if problem is not None or not looks_onnx:
        return NotOnnxError(path, "not an ONNX model", sniffed)
    return CorruptError(path, "corrupt ONNX file: a message inside it does not decode")


def open_model(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor on a regular, non-empty file (both readers start here), or a clear error."""
    name = str(path)
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block
    except FileNotFoundError:
        raise NotFoundError(name, "no such file") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise NotFoundError(name, f"cannot open file: {reason}") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            if stat.S_ISDIR(info.st_mode):
                raise NotOnnxError(name, "a folder without .onnx files", "pass a .onnx file")
            raise NotOnnxError(name, "not a regular file", "pass a .onnx file")
        if info.st_size == 0:
            raise NotOnnxError(name, "empty file", "the export probably failed")
    except BaseException:
        os.close(handle)
        raise
    return handle, info


def forged_error(name: str, tensor: str) -> MalformedGraphError:
    """A file must not carry the marker the loader puts on tensors whose payload it dropped."""
    return MalformedGraphError(
        name,
        f"tensor {quote(tensor)} carries onnx-audit's internal {MARK_KEY!r} marker",
        "external_data keys of this name are reserved; remove it",
    )


def read_model(path: Path) -> ModelProto:
    """Parse the file with protobuf (no external data) and check it is a real model."""
    name = str(path)
    handle, info = open_model(path)
    try:
        if info.st_size > PROTOBUF_LIMIT:
            raise UnsupportedError(
                name,
                f"file is {info.st_size:,} bytes, over protobuf's 2 GiB limit",
                "save the weights as external data",
            )
        with os.fdopen(handle, "rb", closefd=False) as stream:
            data = stream.read(info.st_size + 1)
    except OSError as exc:
        raise NotFoundError(name, f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(handle)
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _parse_error(name, data, exc) from None
    check_is_model(model, name, data)
    marked = MARK_KEY.encode() in data  # a string field holds its bytes as they are
    del data
    forged = _forged_marker(model) if marked else None
    if forged is not None:
        raise forged_error(name, forged)
    return model


def check_is_model(model: ModelProto, path: str, data: bytes | bytearray) -> None:
    """protobuf accepts many non-models silently: insist on a graph and an IR version.

    Also repairs string fields that are not UTF-8 (see `repair_strings`), so every reader of
    the model (this loader, the skeleton reader) hands on text, never bytes. `data` is what
    `model` was parsed from: when it verifies as text, there is nothing to repair.
    """
    if not model.HasField("graph"):
        hint = "the file parsed but holds no graph"
        raise NotOnnxError(path, "not an ONNX model: no graph", hint)
    if model.ir_version <= 0:
        raise NotOnnxError(path, "not an ONNX model: no ir_version", "re-export the model")
    if not strings_are_text(data):
        repair_strings(model)
