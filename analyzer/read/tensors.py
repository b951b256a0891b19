"""Stored tensors without their payloads: counting elements, dropping large payloads, and
checking that what a file stores matches what its dims claim.

Large payloads are dropped and the tensor marked as external data at the pseudo-location
`@embedded`, so shape inference sees a typed value and the rest of the pipeline treats embedded
and external weights alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from analyzer.core import dtypes
from analyzer.core.errors import (
    AuditError,
    MalformedGraphError,
    quote,
)
from analyzer.core.onnxproto import ModelProto, TensorProto
from analyzer.core.protowalk import iter_tensors

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
    values = tuple(map(int, dims))
    if len(values) <= 64:  # |count| only grows dim by dim: no clamp below the cap
        count = math.prod(values)
        if -COUNT_CAP <= count <= COUNT_CAP:
            return count
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


def strip_tensor(tensor: TensorProto, elements: int | None = None) -> None:
    """Drop a large embedded payload in place, leaving a typed, external-marked tensor.

    `elements` is the tensor's element count when the caller has it already.
    """
    if tensor.data_location == TensorProto.EXTERNAL:
        return
    if (element_count(tensor.dims) if elements is None else elements) <= KEEP_ELEMENTS:
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
    dims = list(tensor.dims)  # protobuf ints
    if dims and min(dims) < 0:
        raise MalformedGraphError(
            "", f"tensor {quote(name)} declares a negative dim {dims_text(dims)}", "dims are >= 0"
        )
    elements = element_count(dims)
    dtype = tensor.data_type
    room = None if file_size is None else MAX_ELEMENTS_PER_BYTE * file_size
    too_many = room is not None and elements > room
    if tensor.data_location == TensorProto.EXTERNAL:
        _check_external(tensor, name, elements, too_many, file_size)
        return elements
    if not dtypes.bits(dtype) and dtype != TensorProto.STRING:
        if too_many:  # an element type this onnx does not know: no width, only the bound
            raise _too_many(name, elements, dims, file_size)
        return elements
    _check_payload(tensor, name, elements, dims)
    return elements


def _check_external(
    tensor: TensorProto, name: str, elements: int, too_many: bool, file_size: int | None
) -> None:
    """External (or stripped, `@embedded`) data: its recorded length against the dims."""
    info = {e.key: e.value for e in tensor.external_data}
    if too_many and MARK_KEY in info and info.get("location") == EMBEDDED:
        raise _too_many(name, elements, list(tensor.dims), file_size)
    length, expected = _number(info.get("length")), dtypes.nbytes(tensor.data_type, elements)
    if length is not None and expected and length != expected:
        raise _bad_data(name, f"stores {length:,} bytes where its dims need {expected:,}")


def _check_payload(tensor: TensorProto, name: str, elements: int, dims: list[int]) -> None:
    """raw_data or the typed fields hold exactly what the dims say (strings: any raw_data)."""
    dtype = tensor.data_type
    if tensor.HasField("raw_data"):
        got, expected, unit = len(tensor.raw_data), dtypes.nbytes(dtype, elements), "bytes"
    else:
        got = sum(len(getattr(tensor, field)) for field in _TYPED_FIELDS)
        expected, unit = _typed_values(dtype, elements), "values"
    if got == expected or (dtype == TensorProto.STRING and tensor.HasField("raw_data")):
        return
    held = "no data" if got == 0 else f"{got:,} {unit}"
    raise _bad_data(name, f"holds {held} where its dims {dims_text(dims)} need {expected:,}")


def check_tensors(model: ModelProto, file_size: int | None = None) -> None:
    """check_tensor on every tensor of the model (initializers, Constant values, sparse parts)."""
    for tensor in iter_tensors(model):
        check_tensor(tensor, tensor.name, file_size)


def _forged_marker(model: ModelProto) -> str | None:
    for tensor in iter_tensors(model):
        entries = tensor.external_data
        if len(entries) and any(entry.key == MARK_KEY for entry in entries):
            return tensor.name
    return None
