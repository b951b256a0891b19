"""The user's fixes for dynamic input dims (`--input-shape NAME=D1,D2,...`), applied to the
skeleton before shape inference (`shapes`)."""

from __future__ import annotations

from collections.abc import Mapping

from analyzer.core.errors import UsageError
from analyzer.core.onnxproto import ModelProto, ValueInfoProto
from analyzer.core.protowalk import iter_graphs


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
    if any(v >= 2**63 for v in values):
        raise UsageError("", f"--input-shape {text!r}: dims must be below 2**63 (int64)")
    return name, values


def apply_input_shapes(model: ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Fix the dims of named graph inputs in place; names and ranks must match."""
    inputs = {value.name: value for value in model.graph.input}
    initializers = {t.name for t in model.graph.initializer}
    real = [name for name in inputs if name not in initializers]
    fixed: dict[str, int] = {}
    """Dim names of the fixed inputs -> the sizes given for them."""
    for name, dims in shapes.items():
        value = inputs.get(name)
        if value is None or name in initializers:
            raise UsageError(
                "", f"--input-shape: no graph input {name!r}", f"inputs: {', '.join(real)}"
            )
        _fix_input(value, name, dims, fixed)
    if fixed:
        _substitute_declared_dims(model, fixed)


def _fix_input(
    value: ValueInfoProto, name: str, dims: tuple[int, ...], fixed: dict[str, int]
) -> None:
    """One input's dims set to `dims` (checked); the dim names it had go into `fixed`."""
    if not all(isinstance(d, int) and 0 < d < 2**63 for d in dims):
        raise UsageError("", f"--input-shape: {name!r} dims must be integers in 1..2**63-1")
    tensor_type = value.type.tensor_type
    if tensor_type.HasField("shape") and len(tensor_type.shape.dim) != len(dims):
        rank = len(tensor_type.shape.dim)
        raise UsageError("", f"--input-shape: {name!r} has rank {rank}, got {len(dims)} dims")
    for old, size in zip(tensor_type.shape.dim, dims, strict=False):
        if old.HasField("dim_param") and old.dim_param:
            fixed[old.dim_param] = size
    tensor_type.ClearField("shape")
    for size in dims:
        tensor_type.shape.dim.add().dim_value = size


def _substitute_declared_dims(model: ModelProto, fixed: Mapping[str, int]) -> None:
    """Dims the file declares by name or formula (`b`, `(((s53 - 1)//2)) + 1`) become numbers
    once the names they use are fixed: onnx's inference keeps a declared name over a number it
    could compute. A formula that uses a fixed name but cannot be evaluated is cleared, so the
    inference recomputes it."""
    from analyzer.view import dimexpr  # noqa: PLC0415  (fractions: only with --input-shape)

    for graph in iter_graphs(model):
        for value in (*graph.input, *graph.output, *graph.value_info):
            if not value.type.HasField("tensor_type"):
                continue
            for dim in value.type.tensor_type.shape.dim:
                if not (dim.HasField("dim_param") and dim.dim_param):
                    continue
                size = dimexpr.evaluate(dim.dim_param, fixed)
                if size is not None:
                    dim.dim_value = size
                elif dimexpr.names(dim.dim_param) & fixed.keys():
                    dim.Clear()
