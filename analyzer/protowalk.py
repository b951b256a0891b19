"""Iterative walks over every graph and tensor a ModelProto holds.

Subgraphs nest without limit in hostile files, so nothing here recurses.
"""

from __future__ import annotations

from collections.abc import Iterator

from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto


def _node_lists(model: ModelProto) -> Iterator[list[NodeProto] | GraphProto]:
    yield model.graph
    for fn in model.functions:
        yield list(fn.node)
    for info in model.training_info:
        if info.HasField("initialization"):
            yield info.initialization
        if info.HasField("algorithm"):
            yield info.algorithm


def iter_graphs(model: ModelProto) -> Iterator[GraphProto]:
    """Every GraphProto in the model: main graph, subgraphs, function bodies' subgraphs."""
    stack: list[GraphProto] = []
    loose: list[NodeProto] = []
    for item in _node_lists(model):
        if isinstance(item, GraphProto):
            stack.append(item)
        else:
            loose.extend(item)
    for node in loose:
        stack.extend(subgraphs(node))
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            stack.extend(subgraphs(node))


def subgraphs(node: NodeProto) -> Iterator[GraphProto]:
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == AttributeProto.GRAPHS:
            yield from attr.graphs


def _node_tensors(node: NodeProto) -> Iterator[TensorProto]:
    for attr in node.attribute:
        if attr.type == AttributeProto.TENSOR:
            yield attr.t
        elif attr.type == AttributeProto.TENSORS:
            yield from attr.tensors
        elif attr.type == AttributeProto.SPARSE_TENSOR:
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices


def iter_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Every TensorProto stored in the model, wherever it sits."""
    for graph in iter_graphs(model):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            yield from _node_tensors(node)
    for fn in model.functions:
        for node in fn.node:
            yield from _node_tensors(node)
