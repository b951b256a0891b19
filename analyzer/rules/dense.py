"""Dense layers by op, as the op catalogue describes them: which input is the data, which the
weight, and their shape. ONX101, ONX103 and ONX104 (and the candidate writer) read it."""

from __future__ import annotations

from analyzer.core import ops
from analyzer.rules.base import RuleContext
from analyzer.view.model import NodeView


def dense_shape(node: NodeView, ctx: RuleContext) -> tuple[str, int, int] | None:
    """(data input, in_features K, units F) of a dense node with a constant 2-D weight."""
    entry = ops.DENSE_LAYERS.get((node.domain, node.op_type))
    if entry is None or entry.data is None or entry.weight is None:
        return None
    data, weight = node.input(entry.data), node.input(entry.weight)
    if not data or ctx.consts.is_const(data) or not ctx.consts.is_const(weight):
        return None
    if node.attr("transA", 0):
        return None
    k_attr, n_attr = entry.size_attrs
    if k_attr:
        return data, int(node.attr(k_attr, 0)), int(node.attr(n_attr, 0))
    shape = ctx.view.shape(weight)
    if shape is None or len(shape) != 2 or not all(isinstance(d, int) for d in shape):
        return None
    rows, cols = int(shape[0]), int(shape[1])
    if entry.transpose and node.attr(entry.transpose, 0):
        return data, cols, rows
    return data, rows, cols


__all__ = ["dense_shape"]
