"""Read a model with its external data for onnxruntime, refusing what could escape its folder.

Before onnxruntime (or onnx-audit) reads a model's external data, `check_external_data_for_reading`
checks every file: inside the model's folder, no symlink on the way, no hard link (onnxruntime
follows those out of the folder), a regular file that holds the declared ranges, a total cap.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from onnx import ModelProto, TensorProto

from analyzer.core import dtypes
from analyzer.core.errors import MissingExternalDataError, UnsafeExternalDataError
from analyzer.core.protowalk import iter_tensors
from analyzer.read import loader

DEFAULT_MAX_EXTERNAL_BYTES = 64 * 2**30
"""Cap on the external data bytes a model may ask us (or onnxruntime) to read."""
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


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


def _external_files(model: ModelProto, model_path: Path, max_bytes: int) -> dict[str, ExternalFile]:
    path_text = str(model_path)
    loader.check_external_data(model, model_path)  # inside the folder, no '..', ranges fit
    try:
        locations = loader.external_locations(model)
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
        size = int(info.st_size)
        for offset, length in ranges:
            need = size - offset if length is None else length
            if offset > size or offset + max(need, 0) > size:
                raise UnsafeExternalDataError(
                    path_text,
                    f"{where}: range {offset:,}+{need:,} beyond its {size:,} bytes",
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


def check_external_data_for_reading(
    model_path: str | os.PathLike[str],
    *,
    model: ModelProto | None = None,
    max_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES,
) -> None:
    """Raise Unsafe/MissingExternalDataError unless every external data file is safe to read.

    On top of the static checks of the loader (location inside the model's folder, no '..',
    ranges within the file): no symlink in any component below the folder nor as the model
    file itself, a regular file with exactly one link, offset+length within its size, and at
    most `max_bytes` in total. Parses `model_path` when `model` is not given.
    """
    path = Path(model_path)
    proto = loader.read_model(path) if model is None else model
    _external_files(proto, path, max_bytes)


def _read_range(handle: int, offset: int, length: int) -> bytes:
    chunks: list[bytes] = []
    while length > 0:
        chunk = os.pread(handle, min(length, 1 << 26), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def load_model_for_reading(
    model_path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES
) -> ModelProto:
    """The full model, external data read into raw_data after the reading-time checks.

    Files are opened with O_NOFOLLOW and must still be the file that was checked (same device
    and inode, one link), so a swap between check and read is caught.
    """
    path = Path(model_path)
    model = loader.read_model(path)
    files = _external_files(model, path, max_bytes)
    if not files:
        return model
    handles: dict[str, int] = {}
    try:
        for tensor in iter_tensors(model):
            if tensor.data_location != TensorProto.EXTERNAL:
                continue
            info = {entry.key: entry.value for entry in tensor.external_data}
            location = info.get("location", "")
            checked = files[location]
            if location not in handles:
                handle = os.open(checked.path, _OPEN_FLAGS)
                handles[location] = handle
                now = os.fstat(handle)
                if (now.st_dev, now.st_ino, now.st_nlink) != (checked.device, checked.inode, 1):
                    raise UnsafeExternalDataError(
                        str(path), f"external data {location!r} changed while being read"
                    )
            offset = int(info.get("offset", "0") or 0)
            length = int(info["length"]) if info.get("length") else checked.size - offset
            data = _read_range(handles[location], offset, length)
            expected = dtypes.nbytes(tensor.data_type, loader.element_count(tensor.dims))
            if len(data) != length or (expected and len(data) != expected):
                raise UnsafeExternalDataError(
                    str(path),
                    f"tensor {tensor.name!r}: {len(data):,} bytes in {location!r} where its "
                    f"dims need {expected:,}",
                )
            del tensor.external_data[:]
            tensor.data_location = TensorProto.DEFAULT
            tensor.raw_data = data
    except OSError as exc:
        raise MissingExternalDataError(str(path), f"cannot read external data: {exc}") from None
    finally:
        for handle in handles.values():
            os.close(handle)
    return model
