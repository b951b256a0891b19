"""Shape inference on the skeleton, with the user's fixes for dynamic input dims.

Large weights arrive as typed external-marked tensors, so onnx infers from dims and types
alone; the skeleton is small, so inference stays fast even for multi-GB models.
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx
from onnx import ModelProto

from analyzer.errors import UsageError


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """`name=1,3,224,224` -> ("name", (1, 3, 224, 224))."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise UsageError("", f"--input-shape {text!r}: expected NAME=D1,D2,...")
    try:
        values = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise UsageError("", f"--input-shape {text!r}: dims must be integers") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError("", f"--input-shape {text!r}: dims must be positive integers")
    return name, values


def apply_input_shapes(model: ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Fix the dims of named graph inputs in place; names and ranks must match."""
    inputs = {value.name: value for value in model.graph.input}
    initializers = {t.name for t in model.graph.initializer}
    real = [name for name in inputs if name not in initializers]
    for name, dims in shapes.items():
        value = inputs.get(name)
        if value is None or name in initializers:
            raise UsageError(
                "", f"--input-shape: no graph input {name!r}", f"inputs: {', '.join(real)}"
            )
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape") and len(tensor_type.shape.dim) != len(dims):
            rank = len(tensor_type.shape.dim)
            raise UsageError("", f"--input-shape: {name!r} has rank {rank}, got {len(dims)} dims")
        tensor_type.ClearField("shape")
        for size in dims:
            tensor_type.shape.dim.add().dim_value = size


def infer(model: ModelProto) -> tuple[ModelProto, list[str]]:
    """onnx shape inference, strict first; on failure retry leniently and say so."""
    warnings: list[str] = []
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True), warnings
    except Exception as exc:  # onnx raises several unrelated types here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warnings.append(f"shape inference (strict) failed: {first[:300]}")
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True), warnings
    except Exception as exc:
        warnings.append(f"shape inference failed; shapes and MACs are partial: {str(exc)[:200]}")
        return model, warnings
