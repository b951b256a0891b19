"""Recurrent layers. MACs = steps x batch x (elements of W + elements of R): every step
multiplies the input by W and the state by R, for each direction and gate."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.core.results import LayerTally
from analyzer.core.symbolic import Dim, Poly
from analyzer.count.visitors.base import Context, product, register
from analyzer.view.model import NodeView


@register("LSTM", "GRU", "RNN")
def recurrent(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    refs = [*ctx.refs(node, 1, "W", "trainable"), *ctx.refs(node, 2, "R", "trainable")]
    refs += ctx.refs(node, 3, "B", "trainable")
    refs += ctx.side_refs(node, (4, 5), "other")
    if node.op_type == "LSTM":
        refs += ctx.side_refs(node, (6,), "other")
        refs += ctx.refs(node, 7, "P", "trainable")
    yield ctx.layer(node, refs, recurrent_macs(node, ctx), _bias_notes(node, ctx))


def recurrent_macs(node: NodeView, ctx: Context) -> Poly:
    """Steps x batch x (elements of W + elements of R), from X's shape and the weights'."""
    w, r = ctx.const_shape(node.input(1)), ctx.const_shape(node.input(2))
    x = ctx.shape(node.input(0))
    steps_batch: list[Dim] = ["?", "?"]
    if x is not None and len(x) == 3:
        steps_batch = [x[1], x[0]] if node.attr("layout", 0) else [x[0], x[1]]
    per_step: Dim = product(w) + product(r) if w and r else "?"
    return Poly.product([*steps_batch, per_step])


ZERO_RECURRENT_BIAS = "recurrent bias all zeros"


def _bias_notes(node: NodeView, ctx: Context) -> tuple[str, ...]:
    """ONNX's B holds two biases, [Wb; Rb]; Keras has one, and tf2onnx fills Rb with zeros."""
    bias = ctx.values(node.input(3))
    if bias is None or bias.ndim != 2 or bias.shape[1] % 2 or not bias.size:
        return ()
    half = bias.shape[1] // 2
    if bias[:, half:].any() or not bias[:, :half].any():
        return ()
    return (
        f"{ZERO_RECURRENT_BIAS} ({bias.shape[0] * half:,} values): a framework with one bias per "
        "gate (Keras) counts that many fewer",
    )
