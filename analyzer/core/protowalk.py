"""Iterative walks over every graph and tensor a ModelProto holds.

Subgraphs nest as deep as protobuf allows in hostile files, so nothing here recurses. Also
the repair of string fields protobuf hands back as bytes (not UTF-8).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal import api_implementation
from google.protobuf.message import DecodeError, Message

from analyzer.core.onnxproto import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto


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
_TENSOR, _TENSORS, _SPARSE, _SPARSES = (
    AttributeProto.TENSOR,
    AttributeProto.TENSORS,
    AttributeProto.SPARSE_TENSOR,
    AttributeProto.SPARSE_TENSORS,
)


def _roots(model: ModelProto) -> tuple[list[GraphProto], list[AttributeProto]]:
    """Where every walk starts: top-level graphs plus the subgraphs of function bodies and of
    functions' default attribute values, and the attributes of those (which hold tensors)."""
    stack: list[GraphProto] = []
    loose: list[AttributeProto] = []
    for item in _node_lists(model):
        if isinstance(item, GraphProto):
            stack.append(item)
        else:
            loose.extend(attr for node in item for attr in node.attribute)
    loose.extend(attr for fn in model.functions for attr in fn.attribute_proto)
    for attr in loose:
        stack.extend(_attr_graphs(attr))
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
        yield from _attr_graphs(attr)


def _attr_graphs(attr: AttributeProto) -> Iterator[GraphProto]:
    if attr.type == _GRAPH:
        yield attr.g
    elif attr.type == _GRAPHS:
        yield from attr.graphs


def _attr_tensors(attr: AttributeProto) -> Iterator[TensorProto]:
    kind = attr.type
    if kind == _TENSOR:
        yield attr.t
    elif kind == _TENSORS:
        yield from attr.tensors
    elif kind == _SPARSE:
        yield attr.sparse_tensor.values
        yield attr.sparse_tensor.indices
    elif kind == _SPARSES:
        for sparse in attr.sparse_tensors:
            yield sparse.values
            yield sparse.indices


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
                if kind == _GRAPH:
                    stack.append(attr.g)
                elif kind == _GRAPHS:
                    stack.extend(attr.graphs)
                else:
                    yield from _attr_tensors(attr)
    for attr in loose:
        yield from _attr_tensors(attr)


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


@cache
def _verifying_model() -> type[Message] | None:
    """ModelProto under a copy of onnx's schema that makes protobuf verify UTF-8 as it parses.

    ONNX's proto2 strings are not verified; the copy declares edition 2023 with
    `utf8_validation = VERIFY` on the whole file. None where this protobuf cannot build it,
    and under any backend but upb, whose handling of bad UTF-8 the repair walk is written for.
    """
    if api_implementation.Type() != "upb":
        return None
    try:
        features = descriptor_pb2.FeatureSet
        schema = descriptor_pb2.FileDescriptorProto()
        ModelProto.DESCRIPTOR.file.CopyToProto(schema)
        schema.name = "onnx_audit/utf8_check.proto"
        schema.syntax = "editions"
        schema.edition = descriptor_pb2.EDITION_2023
        schema.options.features.utf8_validation = features.VERIFY
        schema.options.features.enum_type = features.CLOSED
        schema.options.features.repeated_field_encoding = features.EXPANDED
        pool = descriptor_pool.DescriptorPool()
        pool.Add(schema)
        verifying: type[Message] = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("onnx.ModelProto")
        )
        return verifying
    except Exception:  # an older protobuf: the walk in repair_strings does the job
        return None


def strings_are_text(data: bytes | bytearray) -> bool:
    """True when every string field of the serialized model is valid UTF-8, checked in C.

    One verifying parse (milliseconds) spares `repair_strings` its walk over every message
    (half a second on 50,000 nodes). False means "walk and repair", never a wrong yes: any
    failure of the verifying parse falls back to the walk.
    """
    verifying = _verifying_model()
    if verifying is None:
        return False
    try:
        verifying().ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
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
