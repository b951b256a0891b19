"""Read a model with its external data for onnxruntime, refusing what could escape its folder.

Before onnxruntime (or onnx-audit) reads a model's external data, `check_external_data_for_reading`
checks every file: inside the model's folder, no symlink on the way, no hard link (onnxruntime
follows those out of the folder), a regular file that holds the declared ranges, a total cap.
The checks themselves live in the read stage (`analyzer.read.external.checked_files`), which
`--inspect-weights` shares.
"""

from __future__ import annotations

import os
from pathlib import Path

from onnx import ModelProto, TensorProto

from analyzer.core import dtypes
from analyzer.core.errors import MissingExternalDataError, UnsafeExternalDataError
from analyzer.core.protowalk import iter_tensors
from analyzer.read import loader
from analyzer.read.external import (
    DEFAULT_MAX_EXTERNAL_BYTES,
    ExternalFile,
    checked_files,
    open_checked,
)


def _external_files(model: ModelProto, model_path: Path, max_bytes: int) -> dict[str, ExternalFile]:
    return checked_files(model, model_path, max_bytes)


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
                handles[location] = open_checked(checked, str(path))
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


__all__ = [
    "DEFAULT_MAX_EXTERNAL_BYTES",
    "ExternalFile",
    "check_external_data_for_reading",
    "load_model_for_reading",
]
