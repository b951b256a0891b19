"""External data locations, checked with stat only: the analysis never opens these files.

Every location must be relative, free of `..`, resolve inside the model's folder (no symlink
leading out), and name a regular file large enough for every declared range. Readers of the
values (`--inspect-weights`, onnxruntime) open them only through `opened_external` /
`open_checked`, after the stricter `checked_files` (no symlink at all, no hard link, a cap).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from analyzer.core import dtypes
from analyzer.core.errors import (
    MissingExternalDataError,
    UnsafeExternalDataError,
    quote,
)
from analyzer.core.onnxproto import ModelProto, TensorProto
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


DEFAULT_MAX_EXTERNAL_BYTES = 64 * 2**30
"""Cap on the external data bytes a model may ask us (or onnxruntime) to read."""
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class ExternalFile:
    """One external data file that passed the reading-time checks."""

    location: str
    path: Path
    size: int
    device: int
    inode: int


def _lstat_chain(base: Path, location: str, model_path: str) -> os.stat_result:
    """lstat each component from the model folder down to the file: no symlink anywhere."""
    where = f"external data {location!r}"
    current = base
    info: os.stat_result | None = None
    for part in Path(location).parts:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            raise MissingExternalDataError(model_path, f"{where} does not exist") from None
        except OSError as exc:
            raise MissingExternalDataError(model_path, f"{where}: {exc.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeExternalDataError(
                model_path,
                f"{where}: {str(current.relative_to(base))!r} is a symbolic link",
                "copy the real files next to the model (cp -L) before running it",
            )
    if info is None:
        raise UnsafeExternalDataError(model_path, "external tensor without a location")
    return info


def _check_file(location: str, base: Path, path_text: str) -> os.stat_result:
    """The file at `location`: no symlink on the way, regular, exactly one link."""
    where = f"external data {location!r}"
    info = _lstat_chain(base, location, path_text)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeExternalDataError(path_text, f"{where} is not a regular file")
    if info.st_nlink != 1:
        raise UnsafeExternalDataError(
            path_text,
            f"{where} is a hard link ({info.st_nlink} names for one file)",
            "hard links can point outside the model's folder; copy the file instead",
        )
    return info


def checked_files(
    model: ModelProto, model_path: Path, max_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES
) -> dict[str, ExternalFile]:
    """Every external data file of `model`, checked before anything opens it.

    On top of check_external_data (inside the folder, no '..', ranges fit): no symlink in any
    component below the folder nor as the model file itself, a regular file with exactly one
    link (hard links lead anywhere), and at most `max_bytes` in total.
    """
    path_text = str(model_path)
    check_external_data(model, model_path)
    try:
        locations = external_locations(model)
    except UnsafeExternalDataError as exc:
        raise UnsafeExternalDataError(path_text, exc.what) from None
    if not locations:
        return {}
    if model_path.is_symlink():
        raise UnsafeExternalDataError(
            path_text,
            "the model file is a symbolic link and its weights are external data",
            "copy the model and its weight files into one folder (cp -L) first",
        )
    base = Path(os.path.abspath(model_path)).parent
    found: dict[str, ExternalFile] = {}
    total = 0
    for location, ranges in locations.items():
        info = _check_file(location, base, path_text)
        size = int(info.st_size)
        for offset, length in ranges:
            need = size - offset if length is None else length
            if offset > size or offset + max(need, 0) > size:
                raise UnsafeExternalDataError(
                    path_text,
                    f"external data {location!r}: range {offset:,}+{need:,} beyond its "
                    f"{size:,} bytes",
                    "the weight file is truncated or belongs to another model",
                )
            total += max(need, 0)
        if total > max_bytes:
            raise UnsafeExternalDataError(
                path_text,
                f"external data totals over {max_bytes:,} bytes",
                "raise the cap if the model is legitimate",
            )
        found[location] = ExternalFile(location, base / location, size, info.st_dev, info.st_ino)
    return found


def open_checked(checked: ExternalFile, model_path: str) -> int:
    """Open a checked file with O_NOFOLLOW; it must still be the file that was checked (same
    device and inode, one link), so a swap between check and open is caught."""
    where = f"external data {checked.location!r}"
    try:
        handle = os.open(checked.path, OPEN_FLAGS)
    except OSError as exc:
        raise MissingExternalDataError(
            model_path, f"cannot open {where}: {exc.strerror or exc}"
        ) from None
    now = os.fstat(handle)
    if (now.st_dev, now.st_ino, now.st_nlink) != (checked.device, checked.inode, 1):
        os.close(handle)
        raise UnsafeExternalDataError(model_path, f"{where} changed while being read")
    return handle


@contextmanager
def opened_external(
    model: ModelProto, model_path: Path, max_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES
) -> Iterator[dict[str, int]]:
    """Descriptors of every external data file by location, after `checked_files`; closed on
    exit."""
    handles: dict[str, int] = {}
    try:
        for location, checked in checked_files(model, model_path, max_bytes).items():
            handles[location] = open_checked(checked, str(model_path))
        yield handles
    finally:
        for handle in handles.values():
            os.close(handle)
