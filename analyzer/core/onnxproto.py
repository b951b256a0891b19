"""ONNX's protobuf message classes, without `import onnx`.

`import onnx` costs 0.7 s (most of it ml_dtypes starting up), far more than reading a model;
the pipeline needs only the message classes. They come from onnx's own generated module,
`onnx/onnx_ml_pb2.py`, executed by file path so the package's `__init__` never runs. It adds
the same serialized schema to protobuf's default pool that onnx adds, so the classes are the
very classes `onnx.ModelProto` and friends are when onnx is imported later (protobuf keeps one
class per descriptor): messages pass freely between this module and onnx.

Falls back to a plain `import onnx` when onnx is already imported, when
ONNX_AUDIT_PROTO=onnx, or when the installed onnx has another layout (no `onnx_ml_pb2.py`,
a non-ML build, a protobuf that refuses the generated code). `SOURCE` says which was used.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

ENV_SOURCE = "ONNX_AUDIT_PROTO"
"""Set to "onnx" to take the classes from `import onnx` (the fallback), for tests."""
MODULE_NAME = "analyzer.core._onnx_ml_pb2"
_NAMES = (
    "AttributeProto",
    "FunctionProto",
    "GraphProto",
    "ModelProto",
    "NodeProto",
    "SparseTensorProto",
    "TensorProto",
    "TensorShapeProto",
    "TypeProto",
    "ValueInfoProto",
)


def _by_path() -> ModuleType | None:
    """onnx's generated onnx_ml_pb2 run by file path, or None when the layout differs."""
    spec = importlib.util.find_spec("onnx")  # a top-level package: found, not imported
    if spec is None or spec.origin is None:
        return None
    folder = os.path.dirname(spec.origin)
    path = os.path.join(folder, "onnx_ml_pb2.py")
    chooser = os.path.join(folder, "onnx_pb.py")
    try:
        with open(chooser, encoding="utf-8") as handle:
            if "onnx_ml_pb2" not in handle.read():  # a build without ONNX_ML uses onnx_pb2
                return None
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    generated = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if generated is None or generated.loader is None:
        return None
    module = importlib.util.module_from_spec(generated)
    generated.loader.exec_module(module)
    model = getattr(module, "ModelProto", None)
    if model is None or model.DESCRIPTOR.full_name != "onnx.ModelProto":
        return None
    if not all(hasattr(module, name) for name in (*_NAMES, "IR_VERSION")):
        return None
    sys.modules[MODULE_NAME] = module  # where the classes came from stays visible
    return module


def _load() -> tuple[ModuleType, str]:
    """The module holding the classes, and where it came from ("onnx_ml_pb2" or "onnx")."""
    if "onnx" not in sys.modules and os.environ.get(ENV_SOURCE, "") != "onnx":
        try:
            module = _by_path()
        except Exception:  # any surprise in another package's layout: the plain import
            module = None
        if module is not None:
            return module, "onnx_ml_pb2"
    import onnx  # noqa: PLC0415  (the fallback)

    return onnx, "onnx"


if TYPE_CHECKING:
    from onnx import (
        AttributeProto,
        FunctionProto,
        GraphProto,
        ModelProto,
        NodeProto,
        SparseTensorProto,
        TensorProto,
        TensorShapeProto,
        TypeProto,
        ValueInfoProto,
    )

    SOURCE: str
    IR_VERSION: int
else:
    _module, SOURCE = _load()
    AttributeProto = _module.AttributeProto
    FunctionProto = _module.FunctionProto
    GraphProto = _module.GraphProto
    ModelProto = _module.ModelProto
    NodeProto = _module.NodeProto
    SparseTensorProto = _module.SparseTensorProto
    TensorProto = _module.TensorProto
    TensorShapeProto = _module.TensorShapeProto
    TypeProto = _module.TypeProto
    ValueInfoProto = _module.ValueInfoProto
    IR_VERSION = int(_module.IR_VERSION)

__all__ = [
    "IR_VERSION",
    "SOURCE",
    "AttributeProto",
    "FunctionProto",
    "GraphProto",
    "ModelProto",
    "NodeProto",
    "SparseTensorProto",
    "TensorProto",
    "TensorShapeProto",
    "TypeProto",
    "ValueInfoProto",
]
