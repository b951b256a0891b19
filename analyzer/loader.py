"""Read a model file into a payload-free ModelProto (the "skeleton").

Counting needs each tensor's name, dims and type, never its bytes. Large tensor payloads are
dropped and the tensor is marked as external data at the pseudo-location `@embedded`, so shape
inference sees a typed value and the rest of the pipeline treats embedded and external weights
alike. Small tensors (shapes, axes) keep their values because shape inference reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto

from analyzer.errors import (
    MissingExternalDataError,
    NotFoundError,
    NotOnnxError,
    TruncatedError,
    UnsafeExternalDataError,
    UnsupportedError,
)
from analyzer.protowalk import iter_tensors

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


def element_count(dims: list[int] | tuple[int, ...]) -> int:
    """Product of dims in Python ints (numpy int64 products wrap on hostile dims)."""
    count = 1
    for dim in dims:
        count *= int(dim)
    return count


def is_stripped(tensor: TensorProto) -> bool:
    return any(entry.key == MARK_KEY for entry in tensor.external_data)


def strip_tensor(tensor: TensorProto) -> None:
    """Drop a large embedded payload in place, leaving a typed, external-marked tensor."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return
    if element_count(tensor.dims) <= KEEP_ELEMENTS:
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


def _sniff(head: bytes) -> str:
    """A hint about what a file that failed to parse really is."""
    if head.startswith(b"PK\x03\x04"):
        return "looks like a zip archive (a PyTorch checkpoint or a zipped model?)"
    if head.startswith(b"\x1f\x8b"):
        return "looks like gzip data; decompress it first"
    if head.startswith(b"\x89HDF"):
        return "looks like an HDF5 (Keras .h5) file; export it to ONNX first"
    if head[:1] == b"\x80":
        return "looks like a Python pickle; export it to ONNX first"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return "looks like a text file"
    return "is this an ONNX ModelProto file?"


def read_model(path: Path) -> ModelProto:
    """Parse the file with protobuf (no external data) and check it is a real model."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFoundError(str(path), "no such file") from None
    except OSError as exc:
        raise NotFoundError(str(path), f"cannot stat file: {exc.strerror}") from None
    if not path.is_file():
        raise NotOnnxError(str(path), "not a regular file", "pass a .onnx file")
    if size == 0:
        raise NotOnnxError(str(path), "empty file", "the export probably failed")
    if size > PROTOBUF_LIMIT:
        raise UnsupportedError(
            str(path),
            f"file is {size:,} bytes, over protobuf's 2 GiB limit",
            "save the weights as external data",
        )
    try:
        with path.open("rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise NotFoundError(str(path), f"cannot read file: {exc.strerror}") from None
    model = ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        head = data[:64]
        if head[:1] == b"\x08":
            raise TruncatedError(str(path), "corrupt or truncated ONNX protobuf") from None
        raise NotOnnxError(str(path), "not an ONNX model", _sniff(head)) from None
    del data
    check_is_model(model, str(path))
    return model


def check_is_model(model: ModelProto, path: str) -> None:
    """protobuf accepts many non-models silently: insist on a graph and an IR version."""
    if not model.HasField("graph"):
        hint = "the file parsed but holds no graph"
        raise NotOnnxError(path, "not an ONNX model: no graph", hint)
    if model.ir_version <= 0:
        raise NotOnnxError(path, "not an ONNX model: no ir_version", "re-export the model")


def external_locations(model: ModelProto) -> dict[str, list[tuple[int, int | None]]]:
    """Real external data locations and the (offset, length) ranges each file must hold."""
    found: dict[str, list[tuple[int, int | None]]] = {}
    for tensor in iter_tensors(model):
        if tensor.data_location != TensorProto.EXTERNAL or is_stripped(tensor):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        try:
            offset = int(info.get("offset", "0") or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError:
            raise UnsafeExternalDataError(
                "", f"tensor {tensor.name!r}: external offset/length is not a number"
            ) from None
        if offset < 0 or (length is not None and length < 0):
            raise UnsafeExternalDataError("", f"tensor {tensor.name!r}: negative offset/length")
        found.setdefault(location, []).append((offset, length))
    return found


def check_external_data(model: ModelProto, path: Path) -> None:
    """Every external location stays inside the model's folder and fits in its file.

    Uses stat only: the analysis never opens external data files.
    """
    base = path.resolve().parent
    try:
        locations = external_locations(model)
    except UnsafeExternalDataError as exc:
        raise UnsafeExternalDataError(str(path), exc.what) from None
    for location, ranges in locations.items():
        where = f"external data {location!r}"
        if not location:
            raise UnsafeExternalDataError(str(path), "external tensor without a location")
        if "\x00" in location:
            raise UnsafeExternalDataError(str(path), f"{where}: NUL byte in path")
        rel = Path(location)
        if rel.is_absolute() or location.startswith(("/", "\\")) or ":" in location[:3]:
            raise UnsafeExternalDataError(str(path), f"{where} is an absolute path")
        if ".." in rel.parts or ".." in location.replace("\\", "/").split("/"):
            raise UnsafeExternalDataError(str(path), f"{where} climbs out with '..'")
        target = base / rel
        real = Path(os.path.realpath(target))
        if real != base and base not in real.parents:
            raise UnsafeExternalDataError(str(path), f"{where} leads outside the model's folder")
        try:
            info = os.stat(real)
        except FileNotFoundError:
            raise MissingExternalDataError(str(path), f"{where} does not exist") from None
        except OSError as exc:
            raise MissingExternalDataError(str(path), f"{where}: {exc.strerror}") from None
        if not os.path.isfile(real):
            raise UnsafeExternalDataError(str(path), f"{where} is not a regular file")
        for offset, length in ranges:
            end = offset + (length or 0)
            if end > info.st_size or offset > info.st_size:
                raise UnsafeExternalDataError(
                    str(path),
                    f"{where}: range {offset:,}+{length or 0:,} beyond its {info.st_size:,} bytes",
                    "the weight file is truncated or belongs to another model",
                )


def load(path: str | os.PathLike[str]) -> ModelProto:
    """Load `path` as a payload-free skeleton and validate its external data locations."""
    model_path = Path(path)
    model = read_model(model_path)
    strip_payloads(model)
    check_external_data(model, model_path)
    return model


__all__ = ["EMBEDDED", "element_count", "is_stripped", "load", "strip_payloads"]
_ = onnx  # onnx registers the protobuf descriptors ModelProto relies on
