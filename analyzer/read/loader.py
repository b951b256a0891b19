"""Read a model file into a payload-free ModelProto (the "skeleton").

Counting needs each tensor's name, dims and type, never its bytes. Large tensor payloads are
dropped and the tensor is marked as external data at the pseudo-location `@embedded`, so shape
inference sees a typed value and the rest of the pipeline treats embedded and external weights
alike. Small tensors (shapes, axes) keep their values because shape inference reads them.
"""

from __future__ import annotations

import os
from pathlib import Path

from analyzer.core.errors import CorruptError, LimitExceededError, NotOnnxError, TruncatedError
from analyzer.core.onnxproto import ModelProto
from analyzer.core.protowalk import iter_tensors
from analyzer.read.external import check_external_data, external_locations
from analyzer.read.plain import check_is_model, forged_error, open_model, read_model, sniff
from analyzer.read.skeleton import read_skeleton
from analyzer.read.tensors import (
    COUNT_CAP,
    EMBEDDED,
    KEEP_ELEMENTS,
    MARK_KEY,
    PROTOBUF_LIMIT,
    check_tensor,
    check_tensors,
    dims_text,
    element_count,
    is_stripped,
    strip_payloads,
    strip_tensor,
)
from analyzer.read.wire import WireFormatError

SKELETON_MIN_BYTES = 32 * 2**20
"""Files above this size are read with the pread skeleton reader: below it, one protobuf parse
of the whole file is as fast, and the payloads are then checked value by value."""
READERS = ("auto", "plain", "skeleton")


def _skeleton(path: Path) -> ModelProto:
    """read_skeleton, with its wire-format errors told in the loader's terms."""
    try:
        return read_skeleton(path)
    except WireFormatError as exc:
        name = str(path)
        if exc.kind == "truncated":
            raise TruncatedError(name, "truncated ONNX file: it ends inside a message") from None
        if exc.kind == "depth":
            raise LimitExceededError(name, "messages nest deeper than protobuf parses") from None
        with path.open("rb") as handle:
            head = handle.read(64)
        if head[:1] != b"\x08":
            raise NotOnnxError(name, "not an ONNX model", sniff(head)) from None
        raise CorruptError(
            name, f"corrupt ONNX file: {exc.reason} at byte {exc.offset:,}"
        ) from None


def load(path: str | os.PathLike[str], reader: str = "auto") -> ModelProto:
    """Load `path` as a payload-free skeleton, checked: tensors, external data locations.

    `reader` "plain" parses the whole file, then checks every payload against its dims and
    drops it; "skeleton" never reads large payloads (and reads files over 2 GiB); "auto"
    picks by file size. Both give the same skeleton.
    """
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, not {reader!r}")
    model_path = Path(path)
    try:
        size: int | None = model_path.stat().st_size
    except (OSError, ValueError):
        size = None  # read_model says why
    if reader == "skeleton" or (
        reader == "auto" and size is not None and size > SKELETON_MIN_BYTES
    ):
        model = _skeleton(model_path)
        check_tensors(model, size)
    else:
        model = read_model(model_path)
        for tensor in iter_tensors(model):  # check_tensors + strip_payloads in one walk
            strip_tensor(tensor, check_tensor(tensor, tensor.name, size))
    check_external_data(model, model_path)
    return model


__all__ = [  # the tensor and external-data helpers are re-exported: callers need one import
    "COUNT_CAP",
    "EMBEDDED",
    "KEEP_ELEMENTS",
    "MARK_KEY",
    "PROTOBUF_LIMIT",
    "check_external_data",
    "check_is_model",
    "check_tensor",
    "check_tensors",
    "dims_text",
    "element_count",
    "external_locations",
    "forged_error",
    "is_stripped",
    "load",
    "open_model",
    "read_model",
    "strip_payloads",
    "strip_tensor",
]
