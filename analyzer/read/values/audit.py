"""`--inspect-weights` in the read stage: open external data only after the safety checks,
summarise every stored tensor streamed, then relate duplicates and transposed copies."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from analyzer.core.onnxproto import ModelProto
from analyzer.core.tensorstats import TensorStats, UnreadTensor
from analyzer.read.external import DEFAULT_MAX_EXTERNAL_BYTES, opened_external
from analyzer.read.values.locate import Located
from analyzer.read.values.relate import Reader, relate
from analyzer.read.values.scan import scan_located


@dataclass(frozen=True, slots=True)
class Inspection:
    """Every stored tensor's statistics, in file order, and those that could not be read."""

    tensors: tuple[TensorStats, ...]
    unread: tuple[UnreadTensor, ...]


def inspect_values(
    path: str | os.PathLike[str],
    model: ModelProto,
    *,
    max_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES,
) -> Inspection:
    """Read and summarise the values of every tensor `path` stores.

    `model` is the loaded skeleton: its external locations are checked (`checked_files`) and
    opened with O_NOFOLLOW before one byte of them is read; an unsafe or unreadable file raises
    Unsafe/MissingExternalDataError. Memory stays at a few read windows whatever the size.
    """
    model_path = Path(path)
    read: list[tuple[Located, TensorStats]] = []
    unread: list[UnreadTensor] = []
    with opened_external(model, model_path, max_bytes) as files:
        for tensor, result in scan_located(model_path, files):
            if isinstance(result, str):
                unread.append(UnreadTensor(name=tensor.name, reason=result))
            else:
                read.append((tensor, result))
        fd = os.open(model_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            tensors = relate(read, Reader(fd, files))
        finally:
            os.close(fd)
    return Inspection(tuple(tensors), tuple(unread))


__all__ = ["Inspection", "inspect_values"]
