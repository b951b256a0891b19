"""Dense layers: Gemm, MatMul with a constant operand (plus its bias Add), and their
fused and quantized forms. MACs = output elements x contraction length."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.core import ops
from analyzer.core.results import LayerTally, WeightRef
from analyzer.core.symbolic import Poly
from analyzer.count.visitors.base import Context, dims, register
from analyzer.view.model import NodeView


def bias_add(node: NodeView, ctx: Context) -> NodeView | None:
    """The Add that only adds a constant bias to this MatMul's (or bias-less conv's) output
    (paired once for the model: `count.biasadd`)."""
    return ctx.consts.bias_adds.of(ctx.view, node)


def absorbed_bias(add: NodeView, ctx: Context) -> bool:
    """True when `add` is the bias of a MatMul or conv, so that layer's row holds it."""
    return ctx.consts.bias_adds.is_absorbed(add)


def _contraction(ctx: Context, node: NodeView, weight_pos: int, trans: bool) -> int | None:
    shape = ctx.const_shape(node.input(weight_pos))
    if shape is None or len(shape) < 2:
        return None
    if weight_pos == 0:
        return shape[-1]
    return shape[-1] if trans else shape[-2]


def _macs(ctx: Context, node: NodeView, k: int | None) -> Poly:
    out = dims(ctx.shape(node.outputs[0]) if node.outputs else None)
    if k is None:
        shape = ctx.shape(node.input(0))
        k_dim: int | str = shape[-1] if shape else "?"
        return Poly.product([*out, k_dim])
    return Poly.product([*out, k])


def _dense(
    node: NodeView,
    ctx: Context,
    *,
    a: int,
    b: int,
    trans_b: bool = False,
    bias: int | None = None,
    quant: tuple[int, ...] = (),
) -> Iterator[LayerTally]:
    if ctx.is_const(node.input(b)):
        weight_pos, trans = b, trans_b
    elif ctx.is_const(node.input(a)):
        weight_pos, trans = a, False
    else:
        weight_pos, trans = b, trans_b
    refs: list[WeightRef] = list(ctx.refs(node, weight_pos, "weight", "trainable"))
    notes: list[str] = []
    if bias is not None:
        refs.extend(ctx.refs(node, bias, "bias", "trainable"))
    add = bias_add(node, ctx)
    if add is not None:
        position = 1 if add.inputs[0] == node.outputs[0] else 0
        refs.extend(ctx.refs(add, position, "bias", "trainable"))
    refs.extend(ctx.side_refs(node, quant, "quantization"))
    k = _contraction(ctx, node, weight_pos, trans)
    yield ctx.layer(node, refs, _macs(ctx, node, k), notes)


def dense(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A dense op as the catalogue describes it: data, weight, bias, quantization inputs."""
    entry = ops.CATALOGUE[(node.domain, node.op_type)]
    assert entry.data is not None and entry.weight is not None, node.op_type
    trans_b = bool(node.attr(entry.transpose, 0)) if entry.transpose else False
    yield from _dense(
        node,
        ctx,
        a=entry.data,
        b=entry.weight,
        trans_b=trans_b,
        bias=entry.bias,
        quant=tuple(sorted(entry.quant)),
    )


for _domain, _op in ops.counted_by(ops.DENSE):
    register(_op, domain=_domain)(dense)


@register("MatMulNBits", domain=ops.MS)
def matmul_nbits(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """B packs K x N weights into bytes: params are K x N (attributes), bytes what is stored."""
    k, n = int(node.attr("K", 0)), int(node.attr("N", 0))
    refs = list(ctx.refs(node, 1, "weight", "trainable", elements=k * n))
    refs.extend(ctx.side_refs(node, (2, 3, 4), "quantization"))
    refs.extend(ctx.refs(node, 5, "bias", "trainable"))
    bits = node.attr("bits", 4)
    notes = [f"{bits}-bit packed weight: {k:,} x {n:,} logical elements"]
    shape = ctx.shape(node.input(0))
    rows = dims(shape[:-1] if shape else None)
    yield ctx.layer(node, refs, Poly.product([*rows, k, n]), notes)
