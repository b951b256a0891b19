"""onnx's shape inference, loaded as its C++ extension alone where that is possible.

Shape inference is the one thing the pipeline needs onnx's code for, and it is C++: the
extension `onnx/onnx_cpp2py_export*.so` loads by file path in milliseconds, without onnx's
Python package (whose `import onnx` costs 0.7 s, most of it numpy's ml_dtypes). The light
load is for the inference child only: the extension registers itself once per process, so it
is entered in sys.modules under its own name, where a later `import onnx` finds and reuses it.
Everything else (onnx already imported, in-process inference, another layout, or
ONNX_AUDIT_PROTO=onnx) takes the plain `import onnx`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from analyzer.core.onnxproto import ENV_SOURCE, IR_VERSION, ModelProto

EXTENSION = "onnx.onnx_cpp2py_export"
Infer = Callable[[bytes, bool, bool, bool], bytes]
"""(serialized model, check_type, strict_mode, data_prop) -> serialized inferred model."""


@dataclass(frozen=True)
class Engine:
    """What inference and its version warnings need from onnx."""

    infer_bytes: Infer
    version: str
    """onnx's version, as `onnx.__version__` gives it."""
    ir_version: int
    opsets: dict[str, int]
    """Newest opset of each standard domain ("" and "ai.onnx.ml") onnx has schemas for."""
    source: str
    """"extension" (the C++ module alone) or "onnx" (the package imported)."""
    has_schema: Callable[[str, int, str], bool]
    """onnx.defs.has_schema(op_type, max_inclusive_version, domain)."""

    def infer_shapes(self, model: ModelProto, strict_mode: bool, data_prop: bool) -> ModelProto:
        """onnx.shape_inference.infer_shapes(model, strict_mode=..., data_prop=...)."""
        inferred = ModelProto()
        inferred.ParseFromString(
            self.infer_bytes(model.SerializeToString(), False, strict_mode, data_prop)
        )
        return inferred


def _by_path(folder: str) -> ModuleType | None:
    """The extension module loaded from `folder`, or None when it is not there."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "onnx_cpp2py_export" + suffix)
        if not os.path.isfile(path):
            continue
        spec = importlib.util.spec_from_file_location(EXTENSION, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[EXTENSION] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(EXTENSION, None)
            raise
        return module
    return None


def _version() -> str:
    """onnx's version as its `__init__` reads it (onnx/version.py imports the package)."""
    import importlib.metadata  # noqa: PLC0415  (20 ms: only the inference child needs it)

    for name in ("onnx", "onnx-weekly"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _light() -> Engine | None:
    """The engine on the extension alone, or None where the layout differs from onnx 1.x's."""
    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.origin is None:
        return None
    folder = os.path.dirname(spec.origin)
    extension = sys.modules.get(EXTENSION) or _by_path(folder)
    if extension is None:
        return None
    versions = extension.defs.schema_version_map()
    opsets = {"": int(versions[""][1])}
    if "ai.onnx.ml" in versions:
        opsets["ai.onnx.ml"] = int(versions["ai.onnx.ml"][1])
    infer: Infer = extension.shape_inference.infer_shapes
    return Engine(infer, _version(), IR_VERSION, opsets, "extension", extension.defs.has_schema)


def _plain() -> Engine:
    import onnx  # noqa: PLC0415  (the fallback, and in-process inference)
    from onnx import shape_inference  # noqa: PLC0415

    opsets = {"": onnx.defs.onnx_opset_version()}
    table = getattr(onnx.helper, "VERSION_TABLE", None)
    if table:
        opsets["ai.onnx.ml"] = int(table[-1][3])
    infer: Infer = shape_inference.C.infer_shapes  # type: ignore[attr-defined]
    return Engine(infer, onnx.__version__, onnx.IR_VERSION, opsets, "onnx", onnx.defs.has)


def load(light: bool) -> Engine:
    """The extension alone when `light` (and possible), else onnx imported."""
    if light and "onnx" not in sys.modules and os.environ.get(ENV_SOURCE, "") != "onnx":
        try:
            engine = _light()
        except Exception:  # a layout this code does not know: the plain import
            engine = None
        if engine is not None:
            return engine
    return _plain()


__all__ = ["Engine", "load"]
