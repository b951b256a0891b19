"""Dense layers: Gemm, MatMul with a constant operand (plus its bias Add), and their
fused and quantized forms. MACs = output elements x contraction length."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.core.results import LayerTally, WeightRef
from analyzer.core.symbolic import Poly
from analyzer.count.visitors.base import Context, dims, register
from analyzer.view.model import NodeView

MS = "com.microsoft"
MATMUL_LIKE = frozenset({("", "MatMul"), (MS, "FusedMatMul")})


CONV_LIKE = frozenset({("", "Conv"), ("", "ConvTranspose")})


def _per_channel(ctx: Context, conv: NodeView, bias: str) -> bool:
    """A bias for a bias-less conv: one value per output channel, broadcast on axis 1."""
    weight, shape = ctx.const_shape(conv.input(1)), ctx.const_shape(bias)
    if weight is None or shape is None or len(weight) < 3:
        return False
    channels = weight[0] if conv.op_type == "Conv" else weight[1] * int(conv.attr("group", 1))
    squeezed = [d for d in shape if d != 1]
    return squeezed == [channels] and len(shape) >= 2 and shape[-len(weight) + 1] == channels


def bias_add(node: NodeView, ctx: Context) -> NodeView | None:
    """The Add that only adds a constant bias to this MatMul's (or bias-less conv's) output.

    paddle2onnx writes every conv bias this way; torch writes MatMul + Add for 3-D inputs.
    """
    key = (node.domain, node.op_type)
    if not _may_take_bias(node, ctx, key):
        return None
    add = _sole_add_user(node, ctx)
    if add is None:
        return None
    other = add.inputs[1] if add.inputs[0] == node.outputs[0] else add.inputs[0]
    if other == node.outputs[0] or not ctx.is_const(other):
        return None
    if key in CONV_LIKE and not _per_channel(ctx, node, other):
        return None
    return add


def _may_take_bias(node: NodeView, ctx: Context, key: tuple[str, str]) -> bool:
    """A MatMul with a constant operand, or a bias-less conv with a constant weight."""
    if not node.outputs or key not in MATMUL_LIKE | CONV_LIKE:
        return False
    if key in CONV_LIKE and (node.input(2) or not ctx.is_const(node.input(1))):
        return False
    return ctx.is_const(node.input(1)) or ctx.is_const(node.input(0))


def _sole_add_user(node: NodeView, ctx: Context) -> NodeView | None:
    """The plain two-input Add that is the only reader of the node's (non-output) output."""
    users = ctx.view.consumers.get(node.outputs[0], ())
    if len(users) != 1 or node.outputs[0] in ctx.view.graph_outputs:
        return None
    add = ctx.view.nodes[users[0]]
    if add.op_type != "Add" or add.domain != "" or len(add.inputs) != 2:
        return None
    return add


def absorbed_bias(add: NodeView, ctx: Context) -> bool:
    """True when `add` is the bias of a MatMul or conv, so that layer's row holds it."""
    for name in add.inputs:
        index = ctx.view.producer.get(name)
        if index is not None and bias_add(ctx.view.nodes[index], ctx) is add:
            return True
    return False


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


@register("Gemm")
@register("FusedGemm", domain=MS)
def gemm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=1, trans_b=bool(node.attr("transB", 0)), bias=2)


@register("MatMul")
def matmul(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=1)


@register("FusedMatMul", domain=MS)
def fused_matmul(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=1, trans_b=bool(node.attr("transB", 0)))


@register("QLinearMatMul")
def qlinear_matmul(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=3, quant=(1, 2, 4, 5, 6, 7))


@register("MatMulInteger")
def matmul_integer(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=1, quant=(2, 3))


@register("DynamicQuantizeMatMul", domain=MS)
def dynamic_quantize_matmul(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=1, bias=4, quant=(2, 3))


@register("MatMulIntegerToFloat", domain=MS)
def matmul_integer_to_float(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _dense(node, ctx, a=0, b=1, bias=6, quant=(2, 3, 4, 5))


@register("QGemm", domain=MS)
def qgemm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    trans_b = bool(node.attr("transB", 0))
    yield from _dense(node, ctx, a=0, b=3, trans_b=trans_b, bias=6, quant=(1, 2, 4, 5, 7, 8))


@register("MatMulNBits", domain=MS)
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
