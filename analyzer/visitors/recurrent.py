"""Recurrent layers. MACs = steps x batch x (elements of W + elements of R): every step
multiplies the input by W and the state by R, for each direction and gate."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.graph import NodeView
from analyzer.results import LayerTally
from analyzer.symbolic import Dim, Poly
from analyzer.visitors.base import Context, product, register


@register("LSTM", "GRU", "RNN")
def recurrent(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    refs = [*ctx.refs(node, 1, "W", "trainable"), *ctx.refs(node, 2, "R", "trainable")]
    refs += ctx.refs(node, 3, "B", "trainable")
    refs += ctx.side_refs(node, (4, 5), "other")
    if node.op_type == "LSTM":
        refs += ctx.side_refs(node, (6,), "other")
        refs += ctx.refs(node, 7, "P", "trainable")
    w, r = ctx.const_shape(node.input(1)), ctx.const_shape(node.input(2))
    x = ctx.shape(node.input(0))
    steps_batch: list[Dim] = ["?", "?"]
    if x is not None and len(x) == 3:
        steps_batch = [x[1], x[0]] if node.attr("layout", 0) else [x[0], x[1]]
    per_step: Dim = product(w) + product(r) if w and r else "?"
    yield ctx.layer(node, refs, Poly.product([*steps_batch, per_step]))
