"""Which stored tensors repeat another one: byte-identical copies, and 2-D transposed copies.

Statistics only nominate candidates (same dtype, dims and hash; or reversed 2-D dims with the
same zeros, NaN, Inf, min and max); every pair is then compared byte by byte, streamed a window
at a time, so no tensor is ever held whole and a hash collision cannot make a false claim.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from analyzer.core import dtypes
from analyzer.core.tensorstats import TensorStats
from analyzer.read.tensors import element_count
from analyzer.read.values.decode import CHUNK
from analyzer.read.values.locate import Located
from analyzer.read.values.scan import decode_typed_bytes, stored_range

_UINT = {1: "u1", 2: "<u2", 4: "<u4", 8: "<u8"}
"""Bit patterns by element width: compared as integers, so NaN equals the same NaN."""


class Reader:
    """The stored bytes of located tensors: raw or external ranges by pread, typed ones decoded."""

    def __init__(self, model_fd: int, files: Mapping[str, int]) -> None:
        self.model_fd = model_fd
        self.files = files

    def block(self, tensor: Located, start: int, length: int) -> bytes:
        """`length` bytes from byte `start` of the tensor's values."""
        if tensor.typed and tensor.raw is None:
            return decode_typed_bytes(self.model_fd, tensor)[start : start + length]
        fd, offset, _, _ = stored_range(tensor, self.model_fd, self.files)
        return os.pread(fd, length, offset + start)

    def fill(self, tensor: Located, start: int, buffer: bytearray) -> bool:
        """Whether `buffer` could be filled with the tensor's bytes from byte `start` on."""
        if tensor.typed and tensor.raw is None:
            data = self.block(tensor, start, len(buffer))
            buffer[: len(data)] = data
            return len(data) == len(buffer)
        fd, offset, _, _ = stored_range(tensor, self.model_fd, self.files)
        return os.preadv(fd, [buffer], offset + start) == len(buffer)


def same_as_first(reader: Reader, group: Sequence[Located], nbytes: int) -> list[bool]:
    """For each of group[1:], whether its bytes equal group[0]'s: the first is read once, a
    window at a time, and a member that differs is dropped from further reads."""
    equal = [True] * (len(group) - 1)
    full = bytearray(CHUNK), bytearray(CHUNK)  # reused: a fresh 4 MB object per read costs
    for start in range(0, nbytes, CHUNK):
        length = min(CHUNK, nbytes - start)
        first, other = full if length == CHUNK else (bytearray(length), bytearray(length))
        if not reader.fill(group[0], start, first):
            return [False] * len(equal)
        for k, tensor in enumerate(group[1:]):
            equal[k] = equal[k] and reader.fill(tensor, start, other) and other == first
        if not any(equal):
            break
    return equal


def is_transpose(reader: Reader, tall: Located, wide: Located) -> bool:
    """wide == tall.T, for tall (R, C) and wide (C, R) with R >= C: row blocks of `tall` read
    contiguously, the matching columns of `wide` by one pread per row."""
    rows, cols = tall.dims
    width = dtypes.bits(tall.data_type) // 8
    kind = _UINT[width]
    step = max(1, CHUNK // max(1, cols * width))
    for start in range(0, rows, step):
        count = min(step, rows - start)
        block = np.frombuffer(reader.block(tall, start * cols * width, count * cols * width), kind)
        if block.size != count * cols:
            return False
        for j in range(cols):
            part = reader.block(wide, (j * rows + start) * width, count * width)
            if part != block[j::cols].tobytes():
                return False
    return True


def _comparable(stats: TensorStats, tensor: Located) -> bool:
    return (
        stats.elements > 0
        and dtypes.bits(tensor.data_type) // 8 in _UINT
        and dtypes.bits(tensor.data_type) % 8 == 0
        and element_count(tensor.dims) == stats.elements
    )


def relate(pairs: Sequence[tuple[Located, TensorStats]], reader: Reader) -> list[TensorStats]:
    """The stats with `duplicate_of` and `transpose_of` filled in, in the same order."""
    out = [stats for _, stats in pairs]
    _mark_duplicates(pairs, reader, out)
    _mark_transposes(pairs, reader, out)
    return out


def _mark_duplicates(
    pairs: Sequence[tuple[Located, TensorStats]], reader: Reader, out: list[TensorStats]
) -> None:
    """Fill in `duplicate_of` in `out`: the first of each group of byte-equal tensors."""
    groups: dict[tuple[str, tuple[int, ...], str], list[int]] = {}
    for index, (tensor, stats) in enumerate(pairs):
        if _comparable(stats, tensor):
            groups.setdefault((stats.dtype, stats.dims, stats.digest), []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        first = pairs[members[0]]
        equal = same_as_first(reader, [pairs[i][0] for i in members], first[1].nbytes)
        for index, same in zip(members[1:], equal, strict=True):
            if same:
                out[index] = replace(out[index], duplicate_of=first[1].name)


def _mark_transposes(
    pairs: Sequence[tuple[Located, TensorStats]], reader: Reader, out: list[TensorStats]
) -> None:
    """Fill in `transpose_of` in `out` for a 2-D tensor (not a duplicate) that is an earlier
    one transposed."""
    shapes: dict[tuple[object, ...], int] = {}
    for index, (tensor, stats) in enumerate(pairs):
        if len(stats.dims) != 2 or min(stats.dims) < 2 or out[index].duplicate_of:
            continue
        if not _comparable(stats, tensor):
            continue
        sign = (stats.dtype, stats.zeros, stats.nans, stats.infs, stats.minimum, stats.maximum)
        other = shapes.get((*sign, stats.dims[::-1]))
        if other is not None:
            tall, wide = sorted((pairs[other][0], tensor), key=lambda t: -t.dims[0])
            if is_transpose(reader, tall, wide):
                out[index] = replace(out[index], transpose_of=pairs[other][1].name)
                continue
        shapes.setdefault((*sign, stats.dims), index)


__all__ = ["Reader", "is_transpose", "relate", "same_as_first"]
