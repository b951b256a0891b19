"""Stored bytes -> numpy values, a few MB at a time, for every type the counting knows.

Raw data (embedded or external) is read with `os.preadv` in windows of CHUNK bytes into a
reused buffer, so memory stays bounded whatever the tensor's size; typed fields (`float_data`,
`int32_data`, ...) are decoded from the TensorProto message itself, which exporters only use for
small tensors.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.core import dtypes
from analyzer.core.onnxproto import TensorProto

CHUNK = 4 << 20
"""Bytes decoded at a time: large enough for numpy to be fast, small enough for any model."""
MAX_TYPED_MESSAGE = 256 << 20
"""Typed-field tensors above this are not decoded (protobuf would hold them whole)."""

Array = npt.NDArray[Any]

_PLAIN: dict[int, str] = {
    TensorProto.FLOAT: "<f4",
    TensorProto.DOUBLE: "<f8",
    TensorProto.FLOAT16: "<f2",
    TensorProto.INT8: "i1",
    TensorProto.UINT8: "u1",
    TensorProto.INT16: "<i2",
    TensorProto.UINT16: "<u2",
    TensorProto.INT32: "<i4",
    TensorProto.UINT32: "<u4",
    TensorProto.INT64: "<i8",
    TensorProto.UINT64: "<u8",
    TensorProto.BOOL: "u1",
}
_ML_DTYPES = {
    "FLOAT8E4M3FN": "float8_e4m3fn",
    "FLOAT8E4M3FNUZ": "float8_e4m3fnuz",
    "FLOAT8E5M2": "float8_e5m2",
    "FLOAT8E5M2FNUZ": "float8_e5m2fnuz",
    "FLOAT8E8M0": "float8_e8m0fnu",
    "FLOAT4E2M1": "float4_e2m1fn",
}
_PACKED: dict[int, tuple[int, bool]] = {
    getattr(TensorProto, name): (bits, signed)
    for name, bits, signed in (
        ("INT4", 4, True),
        ("UINT4", 4, False),
        ("INT2", 2, True),
        ("UINT2", 2, False),
    )
    if hasattr(TensorProto, name)
}
"""Sub-byte integer types: (bits, signed), packed low bits first."""


def supported(data_type: int) -> bool:
    return data_type in _PLAIN or data_type in _PACKED or _special(data_type) is not None


def _special(data_type: int) -> str | None:
    """'bfloat16', or the ml_dtypes name of a float8/float4 type."""
    if data_type == TensorProto.BFLOAT16:
        return "bfloat16"
    for name, ml_name in _ML_DTYPES.items():
        if getattr(TensorProto, name, None) == data_type:
            return ml_name
    return None


def from_bytes(data: bytes | memoryview, data_type: int) -> Array:
    """The values stored in `data` (whole elements; sub-byte types unpacked)."""
    if data_type in _PLAIN:
        return np.frombuffer(data, dtype=_PLAIN[data_type])
    if data_type in _PACKED:
        bits, signed = _PACKED[data_type]
        raw = np.frombuffer(data, dtype=np.uint8)
        per = 8 // bits
        mask = (1 << bits) - 1
        parts = np.stack([(raw >> (bits * k)) & mask for k in range(per)], axis=1).reshape(-1)
        values = parts.astype(np.int8)
        if signed:
            half = 1 << (bits - 1)
            values = ((values ^ half) - half).astype(np.int8)
        return values
    special = _special(data_type)
    if special == "bfloat16":
        halves = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32)
    if special is not None:
        import ml_dtypes  # noqa: PLC0415  (only float8 / float4 tensors need it)

        return np.frombuffer(data, dtype=getattr(ml_dtypes, special)).astype(np.float32)
    raise ValueError(f"cannot decode element type {dtypes.dtype_name(data_type)}")


def _window(length: int, data_type: int) -> int:
    """CHUNK rounded down to whole elements (and whole packed bytes)."""
    width = max(1, dtypes.bits(data_type) // 8)
    return max(width, CHUNK - CHUNK % width)


def read_windows(
    fd: int, offset: int, length: int, data_type: int, buffer: bytearray
) -> Iterator[memoryview]:
    """The bytes [offset, offset + length) of fd, a window at a time, read into `buffer`:
    each window is valid only until the next one.

    The scan reads every byte of the model once; a fresh bytes object per window costs an
    allocation and a cold copy each time, the reused buffer stays in the CPU's cache."""
    step = min(len(buffer), _window(length, data_type))
    step -= step % max(1, dtypes.bits(data_type) // 8)
    view = memoryview(buffer)
    end = offset + length
    while offset < end:
        got = os.preadv(fd, [view[: min(step, end - offset)]], offset)
        if not got:
            raise OSError(f"file ends at byte {offset:,}, {end - offset:,} bytes short")
        offset += got
        yield view[:got]


def typed_values(message: bytes, data_type: int) -> Array:
    """Values of a tensor stored in typed fields, decoded from its TensorProto message."""
    return _typed(TensorProto.FromString(message), data_type)


def tensor_values(tensor: TensorProto) -> Array:
    """The values of an in-file tensor shaped by its dims, as numpy_helper.to_array reads them
    (float8, float4 and bfloat16 as float32, sub-byte integers as int8); raises ValueError
    for what it cannot read: strings, segments, external data, a payload that misfits."""
    data_type = tensor.data_type
    if tensor.HasField("segment") or tensor.data_location == TensorProto.EXTERNAL:
        raise ValueError("segments and external data are not read here")
    if data_type in (TensorProto.UNDEFINED, TensorProto.STRING) or not supported(data_type):
        raise ValueError(f"cannot decode element type {dtypes.dtype_name(data_type)}")
    dims = tuple(tensor.dims)
    if tensor.HasField("raw_data"):
        values = from_bytes(tensor.raw_data, data_type)
    else:
        values = _typed(tensor, data_type)
    if data_type in _PACKED:
        values = values[: math.prod(dims)]
    if data_type == TensorProto.BOOL:
        values = values.astype(bool)
    return values.reshape(dims)


def _typed(proto: TensorProto, data_type: int) -> Array:
    if data_type == TensorProto.FLOAT:
        return np.asarray(proto.float_data, dtype=np.float32)
    if data_type == TensorProto.DOUBLE:
        return np.asarray(proto.double_data, dtype=np.float64)
    if data_type == TensorProto.INT64:
        return np.asarray(proto.int64_data, dtype=np.int64)
    if data_type in (TensorProto.UINT32, TensorProto.UINT64):
        return np.asarray(proto.uint64_data, dtype=np.uint64)
    ints = np.asarray(proto.int32_data, dtype=np.int64)
    if data_type in _PLAIN and data_type not in (TensorProto.FLOAT16,):
        return ints.astype(_PLAIN[data_type])
    if data_type == TensorProto.FLOAT16:
        return (ints & 0xFFFF).astype("<u2").view("<f2")
    if data_type in _PACKED:  # int32_data holds the packed bytes, one per entry
        return from_bytes((ints & 0xFF).astype(np.uint8).tobytes(), data_type)
    # bfloat16 (bit patterns of 16) and float8/float4 (bytes) are stored as int32_data entries
    storage = "<u2" if dtypes.bits(data_type) == 16 else "u1"
    return from_bytes(ints.astype(storage).tobytes(), data_type)


__all__ = [
    "CHUNK",
    "MAX_TYPED_MESSAGE",
    "from_bytes",
    "read_windows",
    "supported",
    "tensor_values",
    "typed_values",
]
