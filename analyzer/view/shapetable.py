"""What shape inference learned, as plain data: the table crosses from the inferring child to
the view builder by pipe, so neither side needs the other's inferred ModelProto.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.core.onnxproto import GraphProto, ModelProto, TypeProto, ValueInfoProto
from analyzer.core.protowalk import subgraphs
from analyzer.core.results import Shape

MAX_RANK = 1024
"""Shapes of more dims are treated as unknown: no real tensor has them, and MAC products over
a hostile file's 100,000 huge dims would cost quadratic time in big-int arithmetic."""


def _shape_of(type_proto: TypeProto) -> Shape | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    if len(type_proto.tensor_type.shape.dim) > MAX_RANK:
        return None
    dims: list[int | str] = []
    for dim in type_proto.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value >= 0:
            dims.append(dim.dim_value)
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append("?")
    return tuple(dims)


ValueShape = tuple[str, Shape | None, int, int]
"""A graph value's name, shape (None when unknown or over MAX_RANK), element type and rank."""
ShapeTable = list[list[ValueShape]]
"""The value_info and outputs of every graph, in graph_walk order."""


TypeShapes = dict[bytes, tuple[Shape | None, int, int]]
"""Serialized TypeProto -> (shape, element type, rank): most values of a graph share a type."""


def value_shape(value: ValueInfoProto, seen: TypeShapes | None = None) -> ValueShape:
    """A value's name, shape, element type and rank. `seen` caches by the type's bytes: one
    C-level serialization instead of a protobuf wrapper per dim (50,000 values in a chain)."""
    key = b""
    if seen is not None:
        key = value.type.SerializeToString()
        known = seen.get(key)
        if known is not None:
            return value.name, *known
    tensor_type = value.type.tensor_type
    rank = len(tensor_type.shape.dim) if tensor_type.HasField("shape") else 0
    found = _shape_of(value.type), tensor_type.elem_type, rank
    if seen is not None:
        seen[key] = found
    return value.name, *found


def graph_walk(model: ModelProto) -> list[GraphProto]:
    """The main graph, then each node's subgraphs depth first, in node order: build's order."""
    order: list[GraphProto] = []
    stack: list[Iterator[GraphProto]] = [iter([model.graph])]
    while stack:
        graph = next(stack[-1], None)
        if graph is None:
            stack.pop()
            continue
        order.append(graph)
        stack.append(sub for node in graph.node if node.attribute for sub in subgraphs(node))
    return order


def shape_table(model: ModelProto) -> ShapeTable:
    """What inference learned, as plain data: it crosses from the inferring child by pipe."""
    seen: TypeShapes = {}
    return [graph_values(graph, seen) for graph in graph_walk(model)]


def graph_values(graph: GraphProto, seen: TypeShapes) -> list[ValueShape]:
    """One graph's value_info and outputs (an output's entry wins, coming last)."""
    return [value_shape(v, seen) for v in [*graph.value_info, *graph.output]]
