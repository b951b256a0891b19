"""Dense layers by op: which input is the data, which the weight, and their shape. ONX101,
ONX103 and ONX104 (and the candidate writer) read one table."""

from __future__ import annotations

from typing import Final

from analyzer.rules.base import RuleContext
from analyzer.view.model import NodeView

MS = "com.microsoft"
# (domain, op) -> (data input, weight input, transB attribute or None)
DENSE: Final = {
    ("", "Gemm"): (0, 1, "transB"),
    (MS, "FusedGemm"): (0, 1, "transB"),
    ("", "MatMul"): (0, 1, None),
    (MS, "FusedMatMul"): (0, 1, "transB"),
    ("", "QLinearMatMul"): (0, 3, None),
    ("", "MatMulInteger"): (0, 1, None),
    (MS, "DynamicQuantizeMatMul"): (0, 1, None),
    (MS, "MatMulIntegerToFloat"): (0, 1, None),
    (MS, "QGemm"): (0, 3, "transB"),
    (MS, "MatMulNBits"): (0, 1, None),
}


def dense_shape(node: NodeView, ctx: RuleContext) -> tuple[str, int, int] | None:
    """(data input, in_features K, units F) of a dense node with a constant 2-D weight."""
    spec = DENSE.get((node.domain, node.op_type))
    if spec is None:
        return None
    data_pos, weight_pos, trans_attr = spec
    data, weight = node.input(data_pos), node.input(weight_pos)
    if not data or ctx.consts.is_const(data) or not ctx.consts.is_const(weight):
        return None
    if node.op_type in ("Gemm", "FusedGemm", "QGemm") and node.attr("transA", 0):
        return None
    if node.op_type == "MatMulNBits":
        return data, int(node.attr("K", 0)), int(node.attr("N", 0))
    shape = ctx.view.shape(weight)
    if shape is None or len(shape) != 2 or not all(isinstance(d, int) for d in shape):
        return None
    rows, cols = int(shape[0]), int(shape[1])
    if trans_attr and node.attr(trans_attr, 0):
        return data, cols, rows
    return data, rows, cols


__all__ = ["DENSE", "dense_shape"]
