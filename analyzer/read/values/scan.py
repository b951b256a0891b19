"""Read every stored tensor's values once, streamed, and summarise each one.

The caller opens external data files after its safety checks and passes their descriptors by
location; this module only reads the ranges the model names, a window at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from analyzer.core import dtypes
from analyzer.read.tensors import element_count
from analyzer.read.values.decode import (
    CHUNK,
    MAX_TYPED_MESSAGE,
    Array,
    from_bytes,
    read_windows,
    supported,
)
from analyzer.read.values.decode import typed_values as decode_typed
from analyzer.read.values.locate import Located, locate
from analyzer.read.values.stats import Accumulator, TensorStats


class Skipped(ValueError):
    """A tensor whose values cannot be read: the reason goes into the report's warnings."""


def stored_range(
    tensor: Located, model_fd: int, files: Mapping[str, int]
) -> tuple[int, int, int, str]:
    """(fd, offset, length, location label) of a raw or external tensor."""
    need = dtypes.nbytes(tensor.data_type, max(0, element_count(tensor.dims)))
    if tensor.external:
        location = tensor.external.get("location", "")
        if location not in files:
            raise Skipped(f"external data {location!r} was not opened")
        offset = int(tensor.external.get("offset") or 0)
        length = int(tensor.external.get("length") or need)
        return files[location], offset, length, location
    if tensor.raw is None:
        return model_fd, 0, 0, "embedded"
    return model_fd, tensor.raw[0], tensor.raw[1], "embedded"


def summarise(
    tensor: Located, model_fd: int, files: Mapping[str, int], buffer: bytearray | None = None
) -> TensorStats:
    """The tensor's statistics, its bytes read through `buffer` (reused across tensors)."""
    if not supported(tensor.data_type):
        raise Skipped(f"element type {dtypes.dtype_name(tensor.data_type)} is not numeric")
    stats = Accumulator(tensor.dims)
    if tensor.typed and tensor.raw is None:
        values = typed_values(model_fd, tensor)
        stats.add_bytes(values.tobytes())
        stats.add(values)
        location = "typed"
    else:
        fd, offset, length, location = stored_range(tensor, model_fd, files)
        need = dtypes.nbytes(tensor.data_type, max(0, element_count(tensor.dims)))
        if length != need:
            raise Skipped(f"{length:,} stored bytes where its dims need {need:,}")
        left = max(0, element_count(tensor.dims))
        window = buffer if buffer is not None else bytearray(CHUNK)
        for data in read_windows(fd, offset, length, tensor.data_type, window):
            stats.add_bytes(data)
            values = from_bytes(data, tensor.data_type)[:left]  # packed types pad a nibble
            left -= values.size
            stats.add(values)
    return stats.result(
        name=tensor.name,
        dtype=dtypes.dtype_name(tensor.data_type),
        location=location,
        nbytes=dtypes.nbytes(tensor.data_type, max(0, element_count(tensor.dims))),
    )


def typed_values(model_fd: int, tensor: Located) -> Array:
    """The values of a tensor stored in typed fields (small by construction: capped)."""
    if tensor.message[1] > MAX_TYPED_MESSAGE:
        raise Skipped(f"{tensor.message[1]:,} bytes in typed fields")
    data = os.pread(model_fd, tensor.message[1], tensor.message[0])
    return decode_typed(data, tensor.data_type)[: max(0, element_count(tensor.dims))]


def decode_typed_bytes(model_fd: int, tensor: Located) -> bytes:
    """A typed tensor's values as the bytes a raw_data copy would hold (for comparisons)."""
    return typed_values(model_fd, tensor).tobytes()


def scan_located(
    path: Path, files: Mapping[str, int]
) -> Iterator[tuple[Located, TensorStats | str]]:
    """Each located tensor with its TensorStats, or the reason it could not be read."""
    buffer = bytearray(CHUNK)
    for tensor, fd in _located(path):
        try:
            yield tensor, summarise(tensor, fd, files, buffer)
        except (Skipped, OSError, ValueError) as exc:
            yield tensor, str(exc)


def _located(path: Path) -> Iterator[tuple[Located, int]]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        for tensor in locate(path):
            yield tensor, fd
    finally:
        os.close(fd)


def scan(path: Path, files: Mapping[str, int]) -> Iterator[TensorStats | tuple[str, str]]:
    """TensorStats per stored tensor, or (name, reason) for one that could not be read."""
    for tensor, result in scan_located(path, files):
        yield (tensor.name, result) if isinstance(result, str) else result


__all__ = [
    "Skipped",
    "decode_typed_bytes",
    "scan",
    "scan_located",
    "stored_range",
    "summarise",
    "typed_values",
]
