"""Fused, quantized and contrib ops that onnxruntime's optimizer and quantizers write, plus
Einsum and DeformConv: each counted with the MACs of the matrix work it stands for.

Attention MACs: the projections (tokens x weight elements) plus the score and context products
(2 x batch x query length x key length x hidden), as the unfused MatMuls would count them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from analyzer.core import dtypes
from analyzer.core.ops import CATALOGUE, GENERIC, MS, counted_by
from analyzer.core.results import LayerTally, Shape, WeightRef
from analyzer.core.symbolic import Dim, Poly
from analyzer.count.visitors.base import Context, dims, product, register
from analyzer.count.visitors.recurrent import recurrent_macs
from analyzer.view.model import NodeView


@register("DynamicQuantizeLSTM", domain=MS)
def dynamic_quantize_lstm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """onnxruntime's dynamic quantization of an LSTM: int8 W and R (stored [dirs, in, 4h],
    transposed from the ONNX LSTM's), their scales and zero points, a float bias and peepholes."""
    refs = [*ctx.refs(node, 1, "W", "trainable"), *ctx.refs(node, 2, "R", "trainable")]
    refs += [*ctx.refs(node, 3, "B", "trainable"), *ctx.refs(node, 7, "P", "trainable")]
    refs += ctx.side_refs(node, (4, 5, 6), "other")
    refs += ctx.side_refs(node, (8, 9, 10, 11), "quantization")
    yield ctx.layer(node, refs, recurrent_macs(node, ctx))


@register("AttnLSTM", domain=MS)
def attn_lstm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    refs = [*ctx.refs(node, 1, "W", "trainable"), *ctx.refs(node, 2, "R", "trainable")]
    refs += [*ctx.refs(node, 3, "B", "trainable"), *ctx.refs(node, 7, "P", "trainable")]
    for position, role in ((8, "QW"), (9, "MW"), (10, "V"), (13, "AW")):
        refs += ctx.refs(node, position, role, "trainable")
    refs += ctx.side_refs(node, (4, 5, 6, 11, 12), "other")
    yield ctx.layer(node, refs, recurrent_macs(node, ctx))


def _attention_products(ctx: Context, node: NodeView, query: Dim, kv_length: Dim) -> Poly:
    """Scores and context: 2 x batch x query length x key length x hidden (query's width)."""
    shape = ctx.shape(node.input(0))
    if shape is None or len(shape) != 3:
        return Poly.product(["?"])
    batch, length, _ = shape
    return Poly.product([2, batch, length, kv_length, query])


def _packed_attention(
    node: NodeView, ctx: Context, *, weight: int, bias: int, quant: tuple[int, ...] = ()
) -> Iterator[LayerTally]:
    """Attention with packed Q, K, V projection weights [hidden, 3 x hidden] (or qkv widths)."""
    refs: list[WeightRef] = [*ctx.refs(node, weight, "weight", "trainable")]
    refs += ctx.refs(node, bias, "bias", "trainable")
    refs += ctx.side_refs(node, quant, "quantization")
    others = [p for p in range(len(node.inputs)) if p not in (0, weight, bias, *quant)]
    refs += ctx.side_refs(node, others, "other")
    w = ctx.const_shape(node.input(weight))
    x = ctx.shape(node.input(0))
    if w is None or len(w) != 2 or x is None or len(x) != 3:
        yield ctx.layer(node, refs, Poly.product(["?"]))
        return
    sizes = node.attr("qkv_hidden_sizes", [])
    q_width = int(sizes[0]) if isinstance(sizes, list) and sizes else w[1] // 3
    projection = Poly.product([x[0], x[1], w[0], w[1]])
    yield ctx.layer(node, refs, projection + _attention_products(ctx, node, q_width, x[1]))


@register("Attention", "DecoderMaskedSelfAttention", "PackedAttention", domain=MS)
def attention(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _packed_attention(node, ctx, weight=1, bias=2)


@register("QAttention", domain=MS)
def qattention(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _packed_attention(node, ctx, weight=1, bias=2, quant=(3, 4, 6, 7))


@register(
    "MultiHeadAttention",
    "DecoderMaskedMultiHeadAttention",
    "PackedMultiHeadAttention",
    "GroupQueryAttention",
    domain=MS,
)
def multi_head_attention(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """Attention on projected Q, K, V: only a bias or norm weights are parameters; past KV,
    masks and the rotary caches (GroupQueryAttention's cos/sin) are other constants."""
    entry = CATALOGUE[(node.domain, node.op_type)]
    refs: list[WeightRef] = []
    for position, role in sorted(entry.weights.items()):
        refs += ctx.refs(node, position, role, "trainable")
    refs += ctx.side_refs(node, sorted(entry.quant), "quantization")
    refs += ctx.side_refs(node, sorted(entry.other), "other")
    query = ctx.shape(node.input(0))
    key = ctx.shape(node.input(1)) if node.input(1) else None
    width = _query_width(node, query)
    kv_length: Dim = key[1] if key and len(key) >= 3 else "?"
    if node.input(6 if node.op_type == "MultiHeadAttention" else 3):
        kv_length = "?"  # past keys: the total length is set at run time
    yield ctx.layer(node, refs, _attention_products(ctx, node, width, kv_length))


def _query_width(node: NodeView, query: Shape | None) -> Dim:
    """The query's hidden width: of a packed QKV input (GroupQueryAttention without a key),
    the query heads' share of it."""
    width: Dim = query[-1] if query and len(query) == 3 else "?"
    if node.op_type == "GroupQueryAttention" and query and len(query) == 3 and not node.input(1):
        heads, kv_heads = int(node.attr("num_heads", 0)), int(node.attr("kv_num_heads", 0))
        if isinstance(width, int) and heads and kv_heads:  # packed QKV: q is heads of 2+h/kv
            width = width * heads // (heads + 2 * kv_heads)
    return width


@register("MatMulBnb4", domain=MS)
def matmul_bnb4(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """bitsandbytes 4-bit: B packs K x N weights two to a byte; absmax is per block."""
    k, n = int(node.attr("K", 0)), int(node.attr("N", 0))
    refs = [*ctx.refs(node, 1, "weight", "trainable", elements=k * n)]
    refs += ctx.side_refs(node, (2,), "quantization")
    shape = ctx.shape(node.input(0))
    rows = dims(shape[:-1] if shape else None)
    yield ctx.layer(node, refs, Poly.product([*rows, k, n]))


@register("GatherBlockQuantized", domain=MS)
def gather_block_quantized(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A block-quantized embedding table: 4-bit values packed two to a uint8 byte count as two
    parameters each (int4/uint4 tensors already count one per value)."""
    table = ctx.view.stored.get(node.input(0))
    bits = int(node.attr("bits", 4))
    packed = table is not None and dtypes.packs_bytes(table.dtype)
    per_byte = 8 // bits if packed and bits in (2, 4) else 1
    elements = table.elements * per_byte if table is not None else None
    refs = [*ctx.refs(node, 0, "embedding", "trainable", elements=elements)]
    refs += ctx.side_refs(node, (1,), "other")
    refs += ctx.side_refs(node, (2, 3), "quantization")
    notes = [f"{bits}-bit packed table"] if per_byte > 1 else []
    yield ctx.layer(node, refs, notes=notes)


@register("QLinearConcat", domain=MS)
def qlinear_concat(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """Inputs Y_scale, Y_zero_point, then (tensor, scale, zero point) triples: a constant
    quantized tensor concatenated into the data (a class token) is a parameter."""
    refs: list[WeightRef] = [*ctx.side_refs(node, (0, 1), "quantization")]
    for position in range(2, len(node.inputs), 3):
        if ctx.is_const(node.input(position)):
            refs += ctx.refs(node, position, "operand", "trainable")
        refs += ctx.side_refs(node, (position + 1, position + 2), "quantization")
    if any(r.kind == "trainable" for r in refs):
        yield ctx.layer(node, refs)


@register("ConvTransposeWithDynamicPads", domain=MS)
def conv_transpose_dynamic_pads(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    refs = [*ctx.refs(node, 1, "weight", "trainable"), *ctx.refs(node, 3, "bias", "trainable")]
    refs += ctx.side_refs(node, (2,), "other")
    shape = ctx.const_shape(node.input(1))
    per_input: Dim = product(shape[1:]) if shape and len(shape) >= 3 else "?"
    yield ctx.layer(node, refs, Poly.product([*dims(ctx.shape(node.input(0))), per_input]))


EQUATION = re.compile(r"^([a-zA-Z,.\s]+)(->([a-zA-Z.\s]*))?$")


@register("Einsum")
def einsum(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A constant operand is a weight (tf2onnx writes Keras EinsumDense this way); MACs are the
    product of every index's size (each output element sums over the contracted indices)."""
    refs: list[WeightRef] = []
    for position, name in enumerate(node.inputs):
        if ctx.is_const(name):
            refs += ctx.refs(node, position, "weight", "trainable")
    if not any(r.kind == "trainable" for r in refs):
        return
    yield ctx.layer(node, refs, _einsum_macs(node, ctx))


def _einsum_macs(node: NodeView, ctx: Context) -> Poly:
    equation = node.attr("equation", "")
    if isinstance(equation, bytes):
        equation = equation.decode("utf-8", "replace")
    match = EQUATION.match(str(equation).replace(" ", ""))
    if match is None or "." in equation or len(node.inputs) < 2:
        return Poly.product(["?"])
    sizes: dict[str, Dim] = {}
    for letters, name in zip(match.group(1).split(","), node.inputs, strict=False):
        shape = ctx.shape(name)
        if shape is None or len(shape) != len(letters):
            return Poly.product(["?"])
        for letter, dim in zip(letters, shape, strict=True):
            if isinstance(dim, int) or letter not in sizes:
                sizes[letter] = dim
    return Poly.product(sizes.values())


def _catalogued(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """An op the catalogue gives the generic visitor: its named inputs as parameters, its
    quantization and other inputs apart; constants elsewhere follow the elementwise rule."""
    described = CATALOGUE[(node.domain, node.op_type)]
    bits = int(node.attr(described.packed_bits, 4)) if described.packed_bits else 8
    refs: list[WeightRef] = []
    for position, role in described.weights.items():
        table = ctx.view.stored.get(node.input(position))
        packed = bits < 8 and table is not None and dtypes.packs_bytes(table.dtype)
        elements = table.elements * (8 // bits) if packed and table is not None else None
        refs += ctx.refs(node, position, role, "trainable", elements=elements)
    refs += ctx.side_refs(node, sorted(described.quant), "quantization")
    refs += ctx.side_refs(node, sorted(described.other), "other")
    named = set(described.weights) | described.quant | described.other
    for position, name in enumerate(node.inputs):
        if position not in named and ctx.is_const(name):
            refs += ctx.refs(node, position, "operand", "auto")
    if refs:
        yield ctx.layer(node, refs)


for _domain, _op in counted_by(GENERIC):
    register(_op, domain=_domain)(_catalogued)
