"""Iterative walks over every graph and tensor a ModelProto holds.

Subgraphs nest as deep as protobuf allows in hostile files, so nothing here recurses. Also
the repair of string fields protobuf hands back as bytes (not UTF-8).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
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


_GRAPH, _GRAPHS = AttributeProto.GRAPH, AttributeProto.GRAPHS
_TENSOR, _TENSORS, _SPARSE = (
    AttributeProto.TENSOR,
    AttributeProto.TENSORS,
    AttributeProto.SPARSE_TENSOR,
)


def _roots(model: ModelProto) -> tuple[list[GraphProto], list[NodeProto]]:
    """Where every walk starts: top-level graphs plus function bodies' subgraphs, and the
    function bodies' own nodes."""
    stack: list[GraphProto] = []
    loose: list[NodeProto] = []
    for item in _node_lists(model):
        if isinstance(item, GraphProto):
            stack.append(item)
        else:
            loose.extend(item)
    for node in loose:
        stack.extend(subgraphs(node))
    return stack, loose


def iter_graphs(model: ModelProto) -> Iterator[GraphProto]:
    """Every GraphProto in the model: main graph, subgraphs, function bodies' subgraphs."""
    stack, _ = _roots(model)
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            if node.attribute:
                stack.extend(subgraphs(node))


def subgraphs(node: NodeProto) -> Iterator[GraphProto]:
    for attr in node.attribute:
        if attr.type == _GRAPH:
            yield attr.g
        elif attr.type == _GRAPHS:
            yield from attr.graphs


def _node_tensors(node: NodeProto) -> Iterator[TensorProto]:
    for attr in node.attribute:
        kind = attr.type
        if kind == _TENSOR:
            yield attr.t
        elif kind == _TENSORS:
            yield from attr.tensors
        elif kind == _SPARSE:
            yield attr.sparse_tensor.values
            yield attr.sparse_tensor.indices


def iter_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Every TensorProto stored in the model, wherever it sits.

    One pass over each graph's nodes finds both their tensors and their subgraphs (nodes
    without attributes, most of a long graph, cost one check).
    """
    stack, loose = _roots(model)
    while stack:
        graph = stack.pop()
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            if not node.attribute:
                continue
            for attr in node.attribute:
                kind = attr.type
                if kind == _TENSOR:
                    yield attr.t
                elif kind == _GRAPH:
                    stack.append(attr.g)
                elif kind == _GRAPHS:
                    stack.extend(attr.graphs)
                elif kind == _TENSORS:
                    yield from attr.tensors
                elif kind == _SPARSE:
                    yield attr.sparse_tensor.values
                    yield attr.sparse_tensor.indices
    for node in loose:
        yield from _node_tensors(node)


_MESSAGE, _REPEATED_MESSAGE, _STRING, _REPEATED_STRING, _OTHER = range(5)
_FIELD_KINDS: dict[FieldDescriptor, int] = {}


def _field_kind(field: FieldDescriptor) -> int:
    kind = _FIELD_KINDS.get(field)
    if kind is None:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            kind = _REPEATED_MESSAGE if field.is_repeated else _MESSAGE
        elif field.type == FieldDescriptor.TYPE_STRING:
            kind = _REPEATED_STRING if field.is_repeated else _STRING
        else:
            kind = _OTHER
        _FIELD_KINDS[field] = kind
    return kind


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _all_text(values: Iterable[str | bytes]) -> bool:
    """No bytes among them; str.join checks that in C (node inputs: 100,000 lists a graph)."""
    try:
        "".join(values)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def repair_strings(message: Message) -> int:
    """Turn string fields that are not valid UTF-8 into text, in place; returns fields fixed.

    protobuf (upb) parses ONNX's proto2 strings without checking them and hands back `bytes`
    for invalid ones, which would break every name comparison and the JSON report. Invalid
    bytes become `\\xNN` escapes, so distinct names stay distinct and the damage stays visible.
    Iterative: hostile files nest messages as deep as protobuf allows.
    """
    fixed = 0
    stack: list[Message] = [message]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            kind = _FIELD_KINDS.get(field)
            if kind is None:
                kind = _field_kind(field)
            if kind == _MESSAGE:
                stack.append(value)
            elif kind == _REPEATED_MESSAGE:
                stack.extend(value)
            elif kind == _STRING and isinstance(value, bytes):
                setattr(current, field.name, _text(value))
                fixed += 1
            elif kind == _REPEATED_STRING and not _all_text(value):
                texts = [_text(v) for v in value]
                del value[:]
                value.extend(texts)
                fixed += 1
    return fixed


def all_messages(root: Message) -> list[Message]:
    """Every message in the tree, payload tensors included (iterative): fuzzers mutate them."""
    found, stack = [], [root]
    while stack:
        message = stack.pop()
        found.append(message)
        for descriptor, content in message.ListFields():
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend(content if descriptor.is_repeated else [content])
    return found
