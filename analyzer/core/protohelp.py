"""The few onnx.helper functions the pipeline uses, on the classes of `core.onnxproto`.

onnx.helper and onnx.numpy_helper live in the onnx package, whose import costs 0.7 s; these
do the same for the cases the stand-ins and the shape folding need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from analyzer.core.onnxproto import AttributeProto, NodeProto, TensorProto, ValueInfoProto

_SCALAR_FIELDS = {
    AttributeProto.FLOAT: "f",
    AttributeProto.INT: "i",
    AttributeProto.STRING: "s",
    AttributeProto.TENSOR: "t",
    AttributeProto.SPARSE_TENSOR: "sparse_tensor",
    AttributeProto.GRAPH: "g",
    AttributeProto.TYPE_PROTO: "tp",
}
_LIST_FIELDS = {
    AttributeProto.FLOATS: "floats",
    AttributeProto.INTS: "ints",
    AttributeProto.STRINGS: "strings",
    AttributeProto.TENSORS: "tensors",
    AttributeProto.SPARSE_TENSORS: "sparse_tensors",
    AttributeProto.GRAPHS: "graphs",
    AttributeProto.TYPE_PROTOS: "type_protos",
}


def attribute_value(attr: AttributeProto) -> Any:
    """The attribute's value as onnx.helper.get_attribute_value gives it (lists as lists)."""
    if attr.ref_attr_name:
        raise ValueError(f"Cannot get value of reference attribute: {attr}")
    kind = attr.type
    if kind in _SCALAR_FIELDS:
        return getattr(attr, _SCALAR_FIELDS[kind])
    if kind in _LIST_FIELDS:
        return list(getattr(attr, _LIST_FIELDS[kind]))
    if kind == AttributeProto.UNDEFINED:
        return None
    raise ValueError(f"Unsupported ONNX attribute: {attr}")


def make_node(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    attributes: Iterable[AttributeProto] = (),
    **ints: int | Sequence[int],
) -> NodeProto:
    """A node with copies of `attributes` plus integer (list) attributes given by keyword."""
    node = NodeProto(op_type=op_type)
    node.input.extend(inputs)
    node.output.extend(outputs)
    copied = sorted(attributes, key=lambda a: a.name)
    extra = {a.name for a in copied}
    for attr in copied:
        node.attribute.add().CopyFrom(attr)
    for name, value in sorted(ints.items()):
        if name in extra:
            continue
        attr = node.attribute.add(name=name)
        if isinstance(value, int):
            attr.type, attr.i = AttributeProto.INT, value
        else:
            attr.type = AttributeProto.INTS
            attr.ints.extend(value)
    return node


def make_tensor_value_info(name: str, elem_type: int, dims: Sequence[int]) -> ValueInfoProto:
    """A graph input or output of this element type and fixed dims."""
    value = ValueInfoProto(name=name)
    tensor_type = value.type.tensor_type
    tensor_type.elem_type = elem_type
    shape = tensor_type.shape
    shape.SetInParent()  # no dims: a scalar, not an unknown rank
    for size in dims:
        shape.dim.add().dim_value = size
    return value


def int64_tensor(name: str, values: Sequence[int]) -> TensorProto:
    """A 1-D int64 tensor with its values in raw_data, as numpy_helper.from_array writes it."""
    tensor = TensorProto(name=name, data_type=TensorProto.INT64)
    tensor.dims.append(len(values))
    tensor.raw_data = b"".join(int(v).to_bytes(8, "little", signed=True) for v in values)
    return tensor


__all__ = ["attribute_value", "int64_tensor", "make_node", "make_tensor_value_info"]
