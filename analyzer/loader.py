"""Read a model file into a payload-free ModelProto (the "skeleton").

Counting needs each tensor's name, dims and type, never its bytes. Large tensor payloads are
dropped and the tensor is marked as external data at the pseudo-location `@embedded`, so shape
inference sees a typed value and the rest of the pipeline treats embedded and external weights
alike. Small tensors (shapes, axes) keep their values because shape inference reads them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto

from analyzer import dtypes
from analyzer.errors import (
    AuditError,
    CorruptError,
    LimitExceededError,
    MalformedGraphError,
    MissingExternalDataError,
    NotFoundError,
    NotOnnxError,
    TruncatedError,
    UnsafeExternalDataError,
    UnsupportedError,
    quote,
)
from analyzer.protowalk import iter_tensors, repair_strings

EMBEDDED = "@embedded"
"""Location marker of an embedded tensor whose payload the loader dropped."""
MARK_KEY = "onnx-audit"
KEEP_ELEMENTS = 1024
"""Tensors with at most this many elements keep their values."""
PROTOBUF_LIMIT = 2**31 - 1
_PAYLOAD_FIELDS = (
    "raw_data",
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
)


COUNT_CAP = 2**128
"""element_count saturates here: no file holds so many elements (the checks reject them), and
multiplying out a hostile rank-100,000 tensor of huge dims would take quadratic time."""
MAX_DIGITS = 40
"""Longest offset/length string parsed; Python refuses to parse over 4,300 digits anyway."""
MAX_ELEMENTS_PER_BYTE = 4
"""Densest typed payload: four 2-bit values packed in one int32_data varint of one byte."""


def element_count(dims: Iterable[int]) -> int:
    """Product of dims in Python ints (numpy int64 products wrap), saturating at COUNT_CAP."""
    values = [int(dim) for dim in dims]
    if 0 in values:
        return 0
    count = 1
    for value in values:
        count = max(-COUNT_CAP, min(COUNT_CAP, count * value))
    return count


def is_stripped(tensor: TensorProto) -> bool:
    """A tensor whose payload the loader (or skeleton reader) dropped.

    Needs both the marker and the `@embedded` location: a hostile file that forges the marker
    on a real external location is still validated (and read_model rejects forged markers).
    """
    if tensor.data_location != TensorProto.EXTERNAL:
        return False
    info = {entry.key: entry.value for entry in tensor.external_data}
    return MARK_KEY in info and info.get("location") == EMBEDDED


def strip_tensor(tensor: TensorProto) -> None:
    """Drop a large embedded payload in place, leaving a typed, external-marked tensor."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return
    if element_count(tensor.dims) <= KEEP_ELEMENTS:
        return
    raw_len = len(tensor.raw_data) if tensor.HasField("raw_data") else None
    for field in _PAYLOAD_FIELDS:
        tensor.ClearField(field)
    tensor.data_location = TensorProto.EXTERNAL
    entries = [("location", EMBEDDED), (MARK_KEY, "stripped")]
    if raw_len is not None:
        entries.append(("length", str(raw_len)))
    for key, value in entries:
        entry = tensor.external_data.add()
        entry.key = key
        entry.value = value


def strip_payloads(model: ModelProto) -> ModelProto:
    """The plain path: strip every large payload of an already parsed model, in place."""
    for tensor in iter_tensors(model):
        strip_tensor(tensor)
    return model


def _sniff(head: bytes) -> str:
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
    sniffed = _sniff(data[:64])
    looks_onnx = data[:1] == b"\x08" and sniffed == "is this an ONNX ModelProto file?"
    if problem is not None and problem[0] == "truncated" and looks_onnx:
        return TruncatedError(path, f"truncated ONNX file: {problem[1]}")
    if problem is not None or not looks_onnx:
        return NotOnnxError(path, "not an ONNX model", sniffed)
    return CorruptError(path, "corrupt ONNX file: a message inside it does not decode")


def read_model(path: Path) -> ModelProto:
    """Parse the file with protobuf (no external data) and check it is a real model."""
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
            kind = "is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise NotOnnxError(name, kind, "pass a .onnx file")
        if info.st_size == 0:
            raise NotOnnxError(name, "empty file", "the export probably failed")
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
    del data
    check_is_model(model, name)
    forged = _forged_marker(model)
    if forged is not None:
        raise MalformedGraphError(
            name,
            f"tensor {quote(forged)} carries onnx-audit's internal {MARK_KEY!r} marker",
            "external_data keys of this name are reserved; remove it",
        )
    return model


def check_is_model(model: ModelProto, path: str) -> None:
    """protobuf accepts many non-models silently: insist on a graph and an IR version.

    Also repairs string fields that are not UTF-8 (see `repair_strings`), so every reader of
    the model (this loader, the skeleton reader) hands on text, never bytes.
    """
    if not model.HasField("graph"):
        hint = "the file parsed but holds no graph"
        raise NotOnnxError(path, "not an ONNX model: no graph", hint)
    if model.ir_version <= 0:
        raise NotOnnxError(path, "not an ONNX model: no ir_version", "re-export the model")
    repair_strings(model)


_TYPED_FIELDS = _PAYLOAD_FIELDS[1:]
_PAIRS = frozenset({TensorProto.COMPLEX64, TensorProto.COMPLEX128})


def dims_text(dims: Iterable[int], limit: int = 8) -> str:
    """`[2, 3]`, or the first `limit` dims and a count for hostile ranks."""
    values = list(dims)
    if len(values) <= limit:
        return str(values)
    return f"[{', '.join(map(str, values[:limit]))}, ... ({len(values):,} dims)]"


def _bad_data(name: str, what: str) -> MalformedGraphError:
    return MalformedGraphError(
        "", f"tensor {quote(name)} {what}", "its data is missing or cut short; re-export the model"
    )


def _too_many(name: str, elements: int, dims: list[int], size: int | None) -> AuditError:
    return _bad_data(
        name,
        f"declares {elements:,} elements {dims_text(dims)}, more than the {size:,}-byte "
        "file can hold",
    )


def _number(text: str | None) -> int | None:
    """A non-negative decimal from an external_data value, or None (the range check reports
    values that are not numbers)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > MAX_DIGITS:
        return None
    return int(text)


def _typed_values(dtype: int, elements: int) -> int:
    """How many entries of the typed *_data field hold `elements` elements."""
    if dtype in _PAIRS:
        return 2 * elements
    bits = dtypes.bits(dtype)
    if dtype != TensorProto.STRING and bits in (2, 4):
        per = 8 // bits
        return (elements + per - 1) // per
    return elements


def check_tensor(tensor: TensorProto, name: str, file_size: int | None = None) -> int:
    """Dims >= 0 and a payload that holds exactly what the dims say; returns the element count.

    shape inference trusts dims and never looks at payloads, so this is where a short tensor,
    a negative dim or a [2**31, 2**31] tensor without data is caught. Payloads the loader
    stripped are checked by their recorded length, or (typed fields, whose length the skeleton
    reader does not know) against what a file of `file_size` bytes could possibly hold.
    """
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise MalformedGraphError(
            "", f"tensor {quote(name)} declares a negative dim {dims_text(dims)}", "dims are >= 0"
        )
    elements = element_count(dims)
    dtype = tensor.data_type
    room = None if file_size is None else MAX_ELEMENTS_PER_BYTE * file_size
    too_many = room is not None and elements > room
    if tensor.data_location == TensorProto.EXTERNAL:
        info = {e.key: e.value for e in tensor.external_data}
        if too_many and MARK_KEY in info and info.get("location") == EMBEDDED:
            raise _too_many(name, elements, dims, file_size)
        length, expected = _number(info.get("length")), dtypes.nbytes(dtype, elements)
        if length is not None and expected and length != expected:
            raise _bad_data(name, f"stores {length:,} bytes where its dims need {expected:,}")
        return elements
    if not dtypes.bits(dtype) and dtype != TensorProto.STRING:
        if too_many:  # an element type this onnx does not know: no width, only the bound
            raise _too_many(name, elements, dims, file_size)
        return elements
    if tensor.HasField("raw_data"):
        got, expected, unit = len(tensor.raw_data), dtypes.nbytes(dtype, elements), "bytes"
    else:
        got = sum(len(getattr(tensor, field)) for field in _TYPED_FIELDS)
        expected, unit = _typed_values(dtype, elements), "values"
    if got == expected or (dtype == TensorProto.STRING and tensor.HasField("raw_data")):
        return elements
    held = "no data" if got == 0 else f"{got:,} {unit}"
    raise _bad_data(name, f"holds {held} where its dims {dims_text(dims)} need {expected:,}")


def check_tensors(model: ModelProto, file_size: int | None = None) -> None:
    """check_tensor on every tensor of the model (initializers, Constant values, sparse parts)."""
    for tensor in iter_tensors(model):
        check_tensor(tensor, tensor.name, file_size)


def _forged_marker(model: ModelProto) -> str | None:
    for tensor in iter_tensors(model):
        if any(entry.key == MARK_KEY for entry in tensor.external_data):
            return tensor.name
    return None


@dataclass(frozen=True, slots=True)
class _External:
    tensor: str
    location: str
    offset: int
    length: int | None
    need: int
    """Bytes the tensor's dims take: the range when `length` is absent."""


def _external_entries(model: ModelProto) -> list[_External]:
    found: list[_External] = []
    for tensor in iter_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL or is_stripped(tensor):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        label = f"tensor {quote(tensor.name)}"
        try:
            offset = int(info.get("offset", "0") or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise UnsafeExternalDataError(
                "", f"{label}: external offset/length is not a number"
            ) from None
        if offset < 0 or (length is not None and length < 0):
            raise UnsafeExternalDataError("", f"{label}: negative external offset/length")
        if max(offset, length or 0) >= 2**64:
            raise UnsafeExternalDataError("", f"{label}: external offset/length over 2**64")
        need = dtypes.nbytes(tensor.data_type, max(0, element_count(tensor.dims)))
        found.append(_External(tensor.name, info.get("location", ""), offset, length, need))
    return found


def external_locations(model: ModelProto) -> dict[str, list[tuple[int, int | None]]]:
    """Real external data locations and the (offset, length) ranges each file must hold."""
    found: dict[str, list[tuple[int, int | None]]] = {}
    for entry in _external_entries(model):
        found.setdefault(entry.location, []).append((entry.offset, entry.length))
    return found


def _check_location(location: str, base: Path, path: str) -> os.stat_result:
    """stat a location after checking it stays inside `base` (the real model folder)."""
    where = f"external data {quote(location)}"
    if not location:
        raise UnsafeExternalDataError(path, "external tensor without a location")
    if "\x00" in location:
        raise UnsafeExternalDataError(path, f"{where}: NUL byte in path")
    rel = Path(location)
    if rel.is_absolute() or location.startswith(("/", "\\")) or ":" in location[:3]:
        raise UnsafeExternalDataError(path, f"{where} is an absolute path")
    if ".." in rel.parts or ".." in location.replace("\\", "/").split("/"):
        raise UnsafeExternalDataError(path, f"{where} climbs out with '..'")
    real = Path(os.path.realpath(base / rel))
    if real == base or base not in real.parents:
        raise UnsafeExternalDataError(path, f"{where} leads outside the model's folder")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise MissingExternalDataError(path, f"{where} does not exist") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise MissingExternalDataError(path, f"{where}: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeExternalDataError(path, f"{where} is not a regular file")
    return info


def check_external_data(model: ModelProto, path: Path) -> None:
    """Every external location stays inside the model's folder and fits in its file.

    The folder is the one the path names (as onnx and onnxruntime resolve locations), compared
    after resolving symlinks on both sides. Uses stat only: the analysis never opens external
    data files; each tensor's range (offset + length, or offset + the bytes its dims need) must
    lie within its file, in Python ints.
    """
    try:
        entries = _external_entries(model)
    except UnsafeExternalDataError as exc:
        raise UnsafeExternalDataError(str(path), exc.what) from None
    if not entries:
        return
    base = Path(os.path.realpath(Path(os.path.abspath(path)).parent))
    sizes: dict[str, int] = {}
    for entry in entries:
        size = sizes.get(entry.location)
        if size is None:
            size = sizes[entry.location] = _check_location(entry.location, base, str(path)).st_size
        need = entry.need if entry.length is None else entry.length
        if entry.offset + need > size:
            raise UnsafeExternalDataError(
                str(path),
                f"external data {quote(entry.location)}: tensor {quote(entry.tensor)} needs "
                f"bytes {entry.offset:,}+{need:,}, beyond the file's {size:,}",
                "the weight file is truncated or belongs to another model",
            )


SKELETON_MIN_BYTES = 32 * 2**20
"""Files above this size are read with the pread skeleton reader: below it, one protobuf parse
of the whole file is as fast, and the payloads are then checked value by value."""
READERS = ("auto", "plain", "skeleton")


def _skeleton(path: Path) -> ModelProto:
    """read_skeleton, with its wire-format errors told in the loader's terms."""
    from analyzer.skeleton import WireFormatError, read_skeleton  # noqa: PLC0415  (imports loader)

    try:
        return read_skeleton(path)
    except WireFormatError as exc:
        name = str(path)
        if exc.kind == "truncated":
            raise TruncatedError(name, "truncated ONNX file: it ends inside a message") from None
        if exc.kind == "depth":
            raise LimitExceededError(name, "messages nest deeper than protobuf parses") from None
        with path.open("rb") as handle:
            head = handle.read(64)
        if head[:1] != b"\x08":
            raise NotOnnxError(name, "not an ONNX model", _sniff(head)) from None
        raise CorruptError(
            name, f"corrupt ONNX file: {exc.reason} at byte {exc.offset:,}"
        ) from None


def load(path: str | os.PathLike[str], reader: str = "auto") -> ModelProto:
    """Load `path` as a payload-free skeleton, checked: tensors, external data locations.

    `reader` "plain" parses the whole file, then checks every payload against its dims and
    drops it; "skeleton" never reads large payloads (and reads files over 2 GiB); "auto"
    picks by file size. Both give the same skeleton.
    """
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, not {reader!r}")
    model_path = Path(path)
    try:
        size: int | None = model_path.stat().st_size
    except (OSError, ValueError):
        size = None  # read_model says why
    if reader == "skeleton" or (
        reader == "auto" and size is not None and size > SKELETON_MIN_BYTES
    ):
        model = _skeleton(model_path)
        check_tensors(model, size)
    else:
        model = read_model(model_path)
        for tensor in iter_tensors(model):  # check_tensors + strip_payloads in one walk
            check_tensor(tensor, tensor.name, size)
            strip_tensor(tensor)
    check_external_data(model, model_path)
    return model


__all__ = [
    "EMBEDDED",
    "check_external_data",
    "check_tensors",
    "element_count",
    "is_stripped",
    "load",
    "read_model",
    "strip_payloads",
]
_ = onnx  # onnx registers the protobuf descriptors ModelProto relies on
