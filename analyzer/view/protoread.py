"""Reading NodeProto and TensorProto fields into the view's plain values (from graph.py, which
walks the graphs): attribute values, stored-tensor records of Constant nodes, provenance."""

from __future__ import annotations

import re
from typing import Any

from analyzer.core.errors import MalformedGraphError, quote
from analyzer.core.onnxproto import AttributeProto, NodeProto, SparseTensorProto, TensorProto
from analyzer.read.loader import EMBEDDED, dims_text, element_count
from analyzer.view.model import StoredTensor


def attr_value(attr: AttributeProto) -> Any:
    kind = attr.type
    if kind == AttributeProto.INT:
        return attr.i
    if kind == AttributeProto.FLOAT:
        return attr.f
    if kind == AttributeProto.STRING:
        return attr.s.decode("utf-8", "replace")
    if kind == AttributeProto.INTS:
        return tuple(attr.ints)
    if kind == AttributeProto.FLOATS:
        return tuple(attr.floats)
    if kind == AttributeProto.STRINGS:
        return tuple(s.decode("utf-8", "replace") for s in attr.strings)
    return None  # tensors and graphs are handled as stored tensors and subgraphs


def tensor_location(tensor: TensorProto) -> str:
    if tensor.data_location != TensorProto.EXTERNAL:
        return "embedded"
    info = {e.key: e.value for e in tensor.external_data}
    where = info.get("location", "")
    return "embedded" if where == EMBEDDED else f"external:{where}"


def sparse_dims(sparse: SparseTensorProto, name: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in sparse.dims)
    if any(d < 0 for d in dims):
        raise MalformedGraphError(
            "", f"sparse tensor {quote(name)} declares a negative dim {dims_text(dims)}"
        )
    return dims


def constant_tensor(node: NodeProto, name: str, key: str) -> StoredTensor | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.type == AttributeProto.TENSOR:
            elements = element_count(attr.t.dims)  # the loader checked it
            dims = tuple(int(d) for d in attr.t.dims)
            dtype = attr.t.data_type
            where = tensor_location(attr.t)
            return StoredTensor(key, name, dims, dtype, "constant", where, elements)
        if attr.name == "sparse_value":
            sparse = attr.sparse_tensor
            dims = sparse_dims(sparse, name)
            nnz = element_count(sparse.values.dims)
            dtype = sparse.values.data_type
            return StoredTensor(key, name, dims, dtype, "constant", "embedded", nnz)
        scalar = {"value_float": TensorProto.FLOAT, "value_int": TensorProto.INT64}
        if attr.name in scalar:
            return StoredTensor(key, name, (), scalar[attr.name], "constant", "embedded", 1)
        lists = {
            "value_floats": (TensorProto.FLOAT, len(attr.floats)),
            "value_ints": (TensorProto.INT64, len(attr.ints)),
            "value_strings": (TensorProto.STRING, len(attr.strings)),
        }
        if attr.name in lists:
            dtype, count = lists[attr.name]
            return StoredTensor(key, name, (count,), dtype, "constant", "embedded", count)
        if attr.name == "value_string":
            return StoredTensor(key, name, (), TensorProto.STRING, "constant", "embedded", 1)
    return None


REWRITE_KEY = "pkg.onnxscript.rewriter.rule_name"
SCOPES_KEY = "pkg.torch.onnx.name_scopes"
MAX_METADATA = 2000
"""Longest metadata value read (a hostile file's megabyte string is not parsed)."""


def provenance(node: NodeProto) -> tuple[str, str]:
    """(rewrite rule, module path) from torch dynamo's node metadata. Name scopes are written as
    `['', 'layer2', 'layer2.short', 'layer2.short.1', 'conv2d_5']`: the module is the last scope
    before the op's own name."""
    rewrite = module = ""
    for entry in node.metadata_props:
        if entry.key == REWRITE_KEY:
            rewrite = entry.value[:200]
        elif entry.key == SCOPES_KEY and len(entry.value) <= MAX_METADATA:
            scopes = re.findall(r"'([^']*)'", entry.value)
            module = scopes[-2] if len(scopes) >= 3 else ""
    return rewrite, module
