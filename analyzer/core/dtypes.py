"""ONNX element types: names and storage widths, without numpy (no int64 overflow)."""

from __future__ import annotations

from analyzer.core.onnxproto import TensorProto

_BITS: dict[int, int] = {
    TensorProto.FLOAT: 32,
    TensorProto.UINT8: 8,
    TensorProto.INT8: 8,
    TensorProto.UINT16: 16,
    TensorProto.INT16: 16,
    TensorProto.INT32: 32,
    TensorProto.INT64: 64,
    TensorProto.BOOL: 8,
    TensorProto.FLOAT16: 16,
    TensorProto.DOUBLE: 64,
    TensorProto.UINT32: 32,
    TensorProto.UINT64: 64,
    TensorProto.COMPLEX64: 64,
    TensorProto.COMPLEX128: 128,
    TensorProto.BFLOAT16: 16,
}
for _name, _bits in (
    ("FLOAT8E4M3FN", 8),
    ("FLOAT8E4M3FNUZ", 8),
    ("FLOAT8E5M2", 8),
    ("FLOAT8E5M2FNUZ", 8),
    ("FLOAT8E8M0", 8),
    ("UINT4", 4),
    ("INT4", 4),
    ("FLOAT4E2M1", 4),
    ("UINT2", 2),
    ("INT2", 2),
):
    if hasattr(TensorProto, _name):
        _BITS[getattr(TensorProto, _name)] = _bits

_FLOATS = {
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.DOUBLE,
    TensorProto.BFLOAT16,
    *(
        getattr(TensorProto, n)
        for n in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1")
        if hasattr(TensorProto, n)
    ),
}


_NAMES: dict[int, str] = {
    int(value): str(name).lower()
    for name, value in TensorProto.DataType.items()
    if value != TensorProto.UNDEFINED
}


def dtype_name(dtype: int) -> str:
    """`float`, `int8`, ... as users read them; unknown codes stay visible as `dtype<N>`."""
    return _NAMES.get(dtype) or f"dtype{dtype}"


def nbytes(dtype: int, elements: int) -> int:
    """Bytes the elements take in raw form; sub-byte types are packed."""
    bits = _BITS.get(dtype, 0)
    return (elements * bits + 7) // 8


def is_float(dtype: int) -> bool:
    return dtype in _FLOATS


def is_numeric(dtype: int) -> bool:
    """Any number type (floats, ints of every width, packed 4-bit): what a weight can be."""
    return dtype in _BITS and dtype != TensorProto.BOOL


def packs_bytes(dtype: int) -> bool:
    """int8/uint8: the byte types sub-byte weights are packed into (two 4-bit values each)."""
    return dtype in (TensorProto.UINT8, TensorProto.INT8)


def bits(dtype: int) -> int:
    return _BITS.get(dtype, 0)
