"""Expand calls of model-local functions into the calling graph.

Each call site gets its own copy of the body so shape inference and the visitors see real
nodes; a Constant inside a body keeps one identity (a metadata key) across all copies,
because the file stores it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from analyzer.core.errors import LimitExceededError, MalformedGraphError, quote
from analyzer.core.onnxproto import AttributeProto, FunctionProto, GraphProto, ModelProto, NodeProto
from analyzer.core.protowalk import iter_graphs, subgraphs

STORED_KEY = "onnx-audit.stored-key"
MAX_INLINED_NODES = 250_000
"""Nodes inlining may add to the graphs: calls nested 20 deep, two per body, would expand to
millions, and a 60 KB file that expands to a million nodes takes a minute and gigabytes.
Exported models inline to a few tens of thousands of nodes at most."""


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
        _rename_outer_reads(node, rename, prefix)
        if template.op_type == "Constant" and template.domain in ("", "ai.onnx"):
            entry = node.metadata_props.add()
            entry.key = STORED_KEY
            entry.value = function_key(fn, index)
        body.append(node)
    return body


def _rename_outer_reads(node: NodeProto, rename: dict[str, str], prefix: str) -> None:
    """Names a copied node's subgraphs read from the function body (its formal inputs, its
    own values), renamed as the body's are. Names a subgraph defines itself, or an enclosing
    subgraph of the same node does, shadow the body's and stay."""
    stack: list[tuple[GraphProto, frozenset[str]]] = [(g, frozenset()) for g in subgraphs(node)]
    while stack:
        graph, enclosing = stack.pop()
        local = set(enclosing)
        local.update(value.name for value in graph.input)
        local.update(tensor.name for tensor in graph.initializer)
        local.update(sparse.values.name for sparse in graph.sparse_initializer)
        for inner in graph.node:
            local.update(inner.output)
        local.discard("")
        shadowing = frozenset(local)
        for inner in graph.node:
            for position, name in enumerate(inner.input):
                if name and name not in shadowing:
                    inner.input[position] = rename.setdefault(name, f"{prefix}/{name}")
            stack.extend((sub, shadowing) for sub in subgraphs(inner))
        for value in graph.output:
            if value.name and value.name not in shadowing:
                value.name = rename.setdefault(value.name, f"{prefix}/{value.name}")


def _ancestors(name: str) -> Iterator[str]:
    """ "a/b/c" -> "a", "a/b": the prefixes an expansion must not take."""
    at = name.find("/")
    while at > 0:
        yield name[:at]
        at = name.find("/", at + 1)


Key = tuple[str, str, str]


def _key(node: NodeProto) -> Key:
    return (node.domain, node.op_type, node.overload)


def _all_nodes(fn: FunctionProto) -> Iterator[NodeProto]:
    """A function's nodes, those of If/Loop/Scan bodies inside it included (iterative)."""
    stack: list[Iterable[NodeProto]] = [fn.node]
    while stack:
        for node in stack.pop():
            yield node
            stack.extend(graph.node for graph in subgraphs(node))


def _inline_graph(graph: GraphProto, table: dict[Key, FunctionProto]) -> int:
    """Replace calls in one graph, nested calls included, in one pass; returns calls expanded.

    A worklist expands a call's body in place of the call, so nested calls cost the size of
    the result, not one rescan of the whole graph per nesting level.
    """
    if not any(_key(node) in table for node in graph.node):
        return 0
    expanded = 0
    out: list[NodeProto] = []
    taken = _taken_prefixes(graph)
    work = list(reversed(list(enumerate(graph.node))))
    while work:
        index, node = work.pop()
        fn = table.get(_key(node))
        if fn is None:
            out.append(node)
            continue
        expanded += 1
        prefix = _free(node.name or f"{node.op_type}_{index}", taken)
        body = _expand(node, fn, prefix)
        taken.update(p for inner in body for name in inner.output for p in _ancestors(name))
        work.extend((index, inner) for inner in reversed(body))
    del graph.node[:]
    graph.node.extend(out)
    return expanded


def _taken_prefixes(graph: GraphProto) -> set[str]:
    """Every prefix of a name the graph already uses: no expansion prefix may be one."""
    names = [value.name for value in (*graph.input, *graph.output, *graph.value_info)]
    names += [tensor.name for tensor in graph.initializer]
    names += [name for node in graph.node for name in node.output]
    return {prefix for name in names for prefix in _ancestors(name)}


def _free(base: str, taken: set[str]) -> str:
    """An expansion prefix no name of the graph starts with: `base`, else `base#N`."""
    prefix, count = base, 1
    while prefix in taken:
        count += 1
        prefix = f"{base}#{count}"
    taken.add(prefix)
    return prefix


def expanded_sizes(table: dict[Key, FunctionProto]) -> dict[Key, int]:
    """Nodes each function becomes once fully inlined (saturating just past MAX_INLINED_NODES).

    An iterative post-order walk of the call graph, which also rejects recursion: ONNX forbids
    a function that calls itself, directly or through others.
    """
    cap = MAX_INLINED_NODES + 2  # one call of a saturated size still adds over the cap
    sizes: dict[Key, int] = {}
    on_path: set[Key] = set()
    for root, fn in table.items():
        if root in sizes:
            continue
        stack = [(root, _all_nodes(fn))]
        on_path.add(root)
        while stack:
            key, nodes = stack[-1]
            node = next(nodes, None)
            if node is not None:
                callee = _key(node)
                if callee in on_path:
                    name = quote(f"{callee[0]}::{callee[1]}")
                    raise MalformedGraphError(
                        "",
                        f"model-local function {name} calls itself",
                        "ONNX functions cannot be recursive",
                    )
                if callee in table and callee not in sizes:
                    on_path.add(callee)
                    stack.append((callee, _all_nodes(table[callee])))
                continue
            stack.pop()
            on_path.discard(key)
            total = sum(sizes.get(_key(n), 1) for n in _all_nodes(table[key]))
            sizes[key] = min(total, cap)
    return sizes


def inline_local_functions(model: ModelProto) -> ModelProto:
    """Expand every call of a model-local function in place (functions stay listed).

    The size of the result is computed first, so a file whose calls nest to multiply (f20
    calls f19 twice, ...) is refused at once rather than after millions of copies.
    """
    if not model.functions:
        return model
    table = {(fn.domain, fn.name, fn.overload): fn for fn in model.functions}
    sizes = expanded_sizes(table)
    graphs = list(iter_graphs(model))
    added = sum(sizes.get(_key(node), 1) - 1 for graph in graphs for node in graph.node)
    if added > MAX_INLINED_NODES:
        raise LimitExceededError(
            "",
            f"model-local functions expand to over {MAX_INLINED_NODES:,} more nodes",
            "nested function calls multiply; onnx-audit caps the expansion",
        )
    for graph in graphs:
        _inline_graph(graph, table)
    return model
