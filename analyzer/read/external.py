"""External data locations, checked with stat only: the analysis never opens these files.

Every location must be relative, free of `..`, resolve inside the model's folder (no symlink
leading out), and name a regular file large enough for every declared range.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from onnx import ModelProto, TensorProto

from analyzer.core import dtypes
from analyzer.core.errors import (
    MissingExternalDataError,
    UnsafeExternalDataError,
    quote,
)
from analyzer.core.protowalk import iter_tensors
from analyzer.read.tensors import element_count, is_stripped


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
