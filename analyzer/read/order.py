"""Node order: onnx infers shapes in file order and our walks assume producers come first,
so every graph is put in topological order once, up front; cycles and undefined inputs are
rejected here, before they can turn into wrong numbers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from analyzer.core.errors import MalformedGraphError, quote
from analyzer.core.onnxproto import (
    AttributeProto,
    GraphProto,
    ModelProto,
    NodeProto,
)
from analyzer.core.protowalk import iter_graphs, subgraphs


def topological_order(
    nodes: list[NodeProto], where: str, defined: list[str]
) -> tuple[list[NodeProto], set[str] | None]:
    """Keep file order when it is valid, otherwise sort (Kahn, taking the earliest ready node
    in file order, so a report follows the file wherever it can) and reject cycles; also give,
    when every input is defined in this graph before its use, the names the graph defines.

    `defined` are the graph's inputs and initializers: a node output reusing one of them, or
    another node's output, is a tensor defined twice (reported as such, not as a cycle). One
    pass settles the common case (an exporter's sorted, self-contained graph); names from outer
    scopes or a node out of order send it to the exact check.
    """
    produced, seen = _producers(nodes, where, defined)
    if seen is not None:
        return nodes, seen
    for name in defined:
        produced.pop(name, None)
    if _in_order(nodes, produced):
        return nodes, None
    return _sorted(nodes, produced, where), None


def _producers(
    nodes: list[NodeProto], where: str, defined: list[str]
) -> tuple[dict[str, int], set[str] | None]:
    """Each name -> index of the node defining it (-1: `defined`), refusing a name defined
    twice; and the names defined, when every input is defined in this graph before its use."""
    produced: dict[str, int] = dict.fromkeys(defined, -1)
    seen = {"", *defined}
    local = True
    for index, node in enumerate(nodes):
        outputs = node.output
        if local and not seen.issuperset(_all_inputs(node) if len(node.attribute) else node.input):
            local = False
        for out in outputs:
            if out and produced.setdefault(out, index) != index:
                raise MalformedGraphError(
                    "", f"{short_path(where)}tensor {quote(out)} is defined twice"
                )
        if local:
            seen.update(outputs)
    return produced, seen if local else None


def _in_order(nodes: list[NodeProto], produced: dict[str, int]) -> bool:
    """Whether every node comes after the nodes producing its inputs (outer names aside)."""
    seen: set[str] = set()
    for node in nodes:
        names = _all_inputs(node) if len(node.attribute) else node.input
        if not seen.issuperset(n for n in names if n in produced):
            return False
        seen.update(node.output)
    return True


def _sorted(nodes: list[NodeProto], produced: dict[str, int], where: str) -> list[NodeProto]:
    """Kahn's sort taking the earliest ready node in file order; a cycle is an error."""
    waiting, users = _dependencies(nodes, produced, where)
    order = _kahn(waiting, users)
    if len(order) != len(nodes):
        stuck = next(nodes[i] for i, count in enumerate(waiting) if count)
        label = stuck.name or stuck.op_type
        raise MalformedGraphError(
            "", f"{short_path(where)}the graph has a cycle through node {quote(label)}"
        )
    return [nodes[i] for i in order]


def _dependencies(
    nodes: list[NodeProto], produced: dict[str, int], where: str
) -> tuple[list[int], list[list[int]]]:
    """How many producers each node waits for, and each node's users; refuses a node that
    consumes its own output."""
    needs = [[produced[n] for n in set(_all_inputs(node)) if n in produced] for node in nodes]
    waiting = [len(sources) for sources in needs]
    users: list[list[int]] = [[] for _ in nodes]
    for index, sources in enumerate(needs):
        for source in sources:
            if source == index:
                label = nodes[index].name or nodes[index].op_type
                raise MalformedGraphError(
                    "", f"{short_path(where)}node {quote(label)} consumes its own output"
                )
            users[source].append(index)
    return waiting, users


def _kahn(waiting: list[int], users: list[list[int]]) -> list[int]:
    """The order Kahn's sort reaches the nodes in (fewer than all: a cycle); counts `waiting`
    down as it goes."""
    ready = [i for i, count in enumerate(waiting) if count == 0]  # a heap: file order first
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    return order


def sort_graphs(model: ModelProto) -> int:
    """Check names and put every graph's nodes in topological order, in place.

    Runs before shape inference, which accepts cycles, duplicate and undefined names and then
    computes on them: here a cycle, a tensor defined twice or a node reading a tensor that no
    enclosing scope defines is an error first. onnx infers in file order, so a valid but
    unsorted file would lose shapes (and MACs) without the sort. Returns how many graphs were
    not in order (and so were sorted).
    """
    moved = 0
    checked: list[GraphProto] = []
    stack: list[tuple[GraphProto, _Names | None]] = [(model.graph, None)]
    while stack:
        graph, parent = stack.pop()
        checked.append(graph)
        names, local, reordered = _sort_graph(graph)
        moved += reordered
        scope = _Names(names, parent)
        where = f"graph {quote(graph.name)}: " if graph.name else ""
        for node in graph.node:
            if not local and not names.issuperset(node.input):  # an outer name, or undefined
                _check_defined(node, scope, where)
            if len(node.attribute):
                stack.extend((sub, scope) for sub in subgraphs(node))
    if not (len(model.functions) or len(model.training_info)):
        return moved
    return moved + _sort_unchecked(model, checked)


def _check_defined(node: NodeProto, scope: _Names, where: str) -> None:
    """Refuse a node reading a name that no enclosing scope defines."""
    for name in node.input:
        if name and not scope.has(name):
            label = node.name or node.op_type
            raise MalformedGraphError(
                "",
                f"{short_path(where)}node {quote(label)} consumes undefined tensor {quote(name)}",
            )


def _sort_unchecked(model: ModelProto, checked: list[GraphProto]) -> int:
    """Sort function bodies and training graphs (sorted only, not checked); how many moved."""
    moved = 0
    seen = {id(graph) for graph in checked}
    for graph in iter_graphs(model):
        if id(graph) not in seen:
            moved += _sort_graph(graph)[2]
    return moved


@dataclass(slots=True)
class _Names:
    names: set[str]
    parent: _Names | None

    def has(self, name: str) -> bool:
        scope: _Names | None = self
        while scope is not None:
            if name in scope.names:
                return True
            scope = scope.parent
        return False


def _sort_graph(graph: GraphProto) -> tuple[set[str], bool, bool]:
    """Sort one graph in place; returns the names it defines (inputs, initializers, node
    outputs), whether each node reads only names defined before it in this graph, and whether
    its nodes had to be reordered."""
    nodes = list(graph.node)
    defined = [v.name for v in graph.input] + [t.name for t in graph.initializer]
    defined += [s.values.name for s in graph.sparse_initializer]
    where = f"graph {quote(graph.name)}: " if graph.name else ""
    ordered, names = topological_order(nodes, where, defined)
    if names is not None:
        return names, True, False
    if ordered is not nodes:
        del graph.node[:]
        graph.node.extend(ordered)
    names = {"", *defined}
    names.update(out for node in ordered for out in node.output)
    return names, False, ordered is not nodes


def _all_inputs(node: NodeProto) -> Iterator[str]:
    """A node's inputs plus the outer-scope names its subgraphs read."""
    yield from (n for n in node.input if n)
    if not node.attribute:
        return
    stack = [
        g for a in node.attribute for g in ([a.g] if a.type == AttributeProto.GRAPH else a.graphs)
    ]
    while stack:
        yield from _outer_reads(stack.pop(), stack)


def _outer_reads(graph: GraphProto, stack: list[GraphProto]) -> Iterator[str]:
    """The names one subgraph reads from outside itself; pushes its own subgraphs on `stack`."""
    local = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for inner in graph.node:
        local.update(inner.output)
    for inner in graph.node:
        yield from (n for n in inner.input if n and n not in local)
        for attr in inner.attribute:
            if attr.type == AttributeProto.GRAPH:
                stack.append(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                stack.extend(attr.graphs)
    yield from (o.name for o in graph.output if o.name not in local)


def short_path(where: str, limit: int = 160) -> str:
    """A subgraph path for a message, cut from the left when hostile names make it long."""
    return where if len(where) <= limit else "..." + where[-limit:]


__all__ = ["short_path", "sort_graphs", "topological_order"]
