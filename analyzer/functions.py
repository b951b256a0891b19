"""Expand calls of model-local functions into the calling graph.

Each call site gets its own copy of the body so shape inference and the visitors see real
nodes; a Constant inside a body keeps one identity (a metadata key) across all copies,
because the file stores it once.
"""

from __future__ import annotations

from onnx import AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto

from analyzer.errors import MalformedGraphError
from analyzer.protowalk import iter_graphs

STORED_KEY = "onnx-audit.stored-key"
MAX_EXPANSIONS = 100_000


def function_key(fn: FunctionProto, index: int) -> str:
    overload = f"#{fn.overload}" if fn.overload else ""
    return f"function:{fn.domain}::{fn.name}{overload}/{index}"


def _expand(call: NodeProto, fn: FunctionProto, prefix: str) -> list[NodeProto]:
    rename: dict[str, str] = {"": ""}
    for formal, actual in zip(fn.input, call.input, strict=False):
        rename[formal] = actual
    for formal, actual in zip(fn.output, call.output, strict=False):
        rename[formal] = actual
    call_attrs = {a.name: a for a in call.attribute}
    defaults = {a.name: a for a in fn.attribute_proto}
    body: list[NodeProto] = []
    for index, template in enumerate(fn.node):
        node = NodeProto()
        node.CopyFrom(template)
        node.name = f"{prefix}/{template.name or f'{template.op_type}_{index}'}"
        del node.input[:]
        node.input.extend(rename.setdefault(n, f"{prefix}/{n}") for n in template.input)
        del node.output[:]
        node.output.extend(rename.setdefault(n, f"{prefix}/{n}") for n in template.output)
        kept: list[AttributeProto] = []
        for attr in node.attribute:
            if attr.ref_attr_name:
                source = call_attrs.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
                if source is None:
                    continue
                resolved = AttributeProto()
                resolved.CopyFrom(source)
                resolved.name = attr.name
                kept.append(resolved)
            else:
                kept.append(attr)
        del node.attribute[:]
        node.attribute.extend(kept)
        if template.op_type == "Constant" and template.domain in ("", "ai.onnx"):
            entry = node.metadata_props.add()
            entry.key = STORED_KEY
            entry.value = function_key(fn, index)
        body.append(node)
    return body


def _inline_graph(graph: GraphProto, table: dict[tuple[str, str, str], FunctionProto]) -> int:
    """Replace calls in one graph (repeatedly, for nested calls); returns calls expanded."""
    expanded = 0
    changed = True
    while changed:
        changed = False
        out: list[NodeProto] = []
        for index, node in enumerate(graph.node):
            fn = table.get((node.domain, node.op_type, node.overload))
            if fn is None:
                out.append(node)
                continue
            expanded += 1
            if expanded > MAX_EXPANSIONS:
                raise MalformedGraphError("", "model-local functions expand without end")
            prefix = node.name or f"{node.op_type}_{index}"
            out.extend(_expand(node, fn, prefix))
            changed = True
        if changed:
            del graph.node[:]
            graph.node.extend(out)
    return expanded


def inline_local_functions(model: ModelProto) -> ModelProto:
    """Expand every call of a model-local function in place (functions stay listed)."""
    if not model.functions:
        return model
    table = {(fn.domain, fn.name, fn.overload): fn for fn in model.functions}
    for graph in list(iter_graphs(model)):
        _inline_graph(graph, table)
    return model
