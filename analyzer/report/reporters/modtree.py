"""Layers grouped by module, like torchinfo's depth: the tree exporters write into node names.

torch's TorchScript exporter and tf2onnx name nodes by module path (`/model.22/cv2.1/Conv`,
`model/dense_1/MatMul`); names with dots only (`encoder.layer.3.attention`) split at the dots,
an index kept with the name before it (`layer.3`). A node's module is its name without the last
part; a name without structure (`node_conv2d_3`, `Gemm_0`) is a node at the top.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.core.results import LayerTally, Report
from analyzer.core.symbolic import Poly

MAX_ROWS = 60
"""The default --depth is the deepest that keeps the table at most this many rows."""

_INDEX = re.compile(r"\d+")


def split_name(name: str) -> list[str]:
    """`/model.22/cv2.1/Conv` -> [model.22, cv2.1, Conv]; `encoder.layer.3.attention` ->
    [encoder, layer.3, attention]; `Gemm_0` -> [Gemm_0]."""
    if "/" in name:
        parts = [p for p in name.split("/") if p]
        return parts or [name]
    if "." in name:
        parts = []
        for piece in name.split("."):
            if parts and (_INDEX.fullmatch(piece) or not piece):
                parts[-1] += "." + piece
            else:
                parts.append(piece)
        return parts
    return [name]


@dataclass(slots=True)
class Module:
    """One module: the sums over every layer below it (shared weights on each user)."""

    path: tuple[str, ...]
    children: dict[str, Module] = field(default_factory=dict)
    layers: list[int] = field(default_factory=list)
    """Indexes into Report.layers of the nodes directly in this module."""
    params: int = 0
    macs_parts: list[Poly] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    count: int = 0
    first: int = -1
    last: int = -1
    """Index of the last layer below it (its output shape is the module's)."""

    @property
    def name(self) -> str:
        return self.path[-1] if self.path else ""

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def macs(self) -> Poly:
        if len(self.macs_parts) != 1:
            self.macs_parts = [Poly.total(self.macs_parts)]
        return self.macs_parts[0]

    def walk(self) -> Iterator[Module]:
        yield self
        for child in self.children.values():
            yield from child.walk()


def build(layers: Sequence[LayerTally]) -> Module:
    """The module tree of the layers, children in order of first appearance."""
    root = Module(())
    for index, layer in enumerate(layers):
        parts = [*split_name(layer.module), layer.name] if layer.module else split_name(layer.name)
        node = root
        chain = [root]
        for part in parts[:-1]:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = Module((*node.path, part))
            node = child
            chain.append(node)
        node.layers.append(index)
        op = layer.qualified_op
        for module in chain:
            module.params += layer.params
            module.macs_parts.append(layer.macs)
            module.ops[op] = module.ops.get(op, 0) + 1
            module.count += 1
            if module.first < 0:
                module.first = index
            module.last = index
    return root


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: a module folded at the depth (or a node, or an unfolded module's
    header, which shows no sums: the rows under it hold them)."""

    depth: int
    label: str
    module: Module | None
    layer: int | None
    expanded: bool = False


def rows(root: Module, depth: int) -> list[Row]:
    """The rows at --depth `depth` >= 1: modules deeper than it folded into their ancestor."""
    out: list[Row] = []

    def visit(module: Module) -> None:
        # this module's own nodes and children, in the order their first layers appear
        items: list[tuple[int, Module | int]] = [(i, i) for i in module.layers]
        items += [(child.first, child) for child in module.children.values()]
        items.sort(key=lambda item: item[0])
        for _, item in items:
            if isinstance(item, int):
                out.append(Row(module.depth, "", None, item))
            elif item.depth >= depth or _single_chain(item):
                out.append(Row(module.depth, item.name, item, None))
            else:
                out.append(Row(module.depth, item.name, item, None, expanded=True))
                visit(item)

    visit(root)
    return out


def _single_chain(module: Module) -> bool:
    """A module holding a single node is shown folded: expanding it adds a row, not a fact."""
    return module.count == 1


def count_rows(root: Module, depth: int) -> int:
    return len(rows(root, depth))


def max_depth(root: Module) -> int:
    return max((m.depth for m in root.walk()), default=0)


def auto_depth(root: Module, layers: int, limit: int = MAX_ROWS) -> int:
    """0 (every node) when that fits in `limit` rows, else the deepest depth that does, else 1.

    One row says nothing (Paddle's `p2o.Conv.24` names: one `p2o` module, then every node), so
    then the first depth with more rows is taken while it stays within 4x `limit`."""
    if layers <= limit or not root.children:
        return 0
    best = 1
    for depth in range(1, max_depth(root) + 1):
        if count_rows(root, depth) <= limit:
            best = depth
        else:
            break
    deepest = max_depth(root)
    if count_rows(root, best) > 1:
        return best
    for depth in range(best + 1, deepest + 2):
        rows_there = count_rows(root, depth)
        if rows_there > 1:
            if rows_there > 4 * limit:
                return best
            return depth if depth <= deepest else 0  # below the deepest module: every node
    return best


def op_mix(ops: dict[str, int], limit: int = 3) -> str:
    """`Conv x3, Mul x2, +1 more` by count, then first use."""
    ranked = sorted(ops.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in ranked[:limit])
    more = len(ranked) - limit
    return text + (f", +{more} more" if more > 0 else "")


def module_records(report: Report) -> list[dict[str, Any]]:
    """The module tree as JSON records, parents before children (docs/json-report.md)."""
    root = build(report.layers)
    out: list[dict[str, Any]] = []
    for module in root.walk():
        out.append(
            {
                "path": list(module.path),
                "depth": module.depth,
                "params": module.params,
                "macs": module.macs.to_json(),
                "nodes": module.count,
                "ops": dict(sorted(module.ops.items())),
                "layers": list(module.layers),
            }
        )
    return out


__all__ = [
    "MAX_ROWS",
    "Module",
    "Row",
    "auto_depth",
    "build",
    "module_records",
    "op_mix",
    "rows",
    "split_name",
]
