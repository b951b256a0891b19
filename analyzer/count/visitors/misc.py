"""Embeddings, PRelu, attention blocks, and constants feeding elementwise math.

Elementwise rule (DESIGN.md): a float tensor of more than one element added, multiplied,
concatenated... into the data is learned (position tables, folded BatchNorm scales, class
tokens); single values and integer tensors are other constants.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from analyzer.core.results import LayerTally, WeightRef
from analyzer.count.visitors.base import Context, register
from analyzer.count.visitors.conv import folding_notes
from analyzer.count.visitors.linear import absorbed_bias
from analyzer.count.weights import scales_dynamic_quantization, side_kind
from analyzer.view.model import NodeView

MS = "com.microsoft"
ELEMENTWISE = ("Add", "Mul", "Sum", "Mean", "Where", "Concat", "Expand", "Tile", "Pad")
BROADCASTS = ("Expand", "Tile")
"""Ops whose constant operand is the data itself, repeated: what the result feeds decides."""


@register("Gather")
def gather(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A lookup into a constant table is an embedding; indices are other constants. Constant
    indices into a graph input select from a runtime tensor (silero's `state[0]`): no table."""
    if ctx.is_const(node.input(1)) and node.input(0) in ctx.view.graph_inputs:
        return
    refs = [*ctx.refs(node, 0, "embedding", "trainable"), *ctx.side_refs(node, (1,), "other")]
    if any(r.kind in ("trainable", "unknown") for r in refs):
        yield ctx.layer(node, refs)


@register("Slice", "Reshape", "Squeeze", "Unsqueeze", "Split")
def table_view(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A stored table cut to bounds read from the input's shape, `table[:T]`. Added to the
    activations it is a learned position table (Whisper's decoder, GPT-2-style models): this
    layer's parameter. Multiplied in (rotary cos/sin caches), square (a causal mask) or used
    any other way it is a buffer: other constants. With constant bounds the op folds away and
    its consumer counts the table."""
    if not node.outputs or not ctx.consts.is_table(node.outputs[0]):
        return
    table = ctx.view.stored.get(node.input(0))
    square = table is not None and len(table.dims) == 2 and table.dims[0] == table.dims[1]
    kind = "auto" if not square and _added_to_activations(node.outputs[0], ctx) else "other"
    yield ctx.layer(node, ctx.refs(node, 0, "table", kind))


CARRIES = frozenset(
    {
        "Unsqueeze", "Squeeze", "Reshape", "Cast", "Expand", "Transpose", "Identity",
        "QuantizeLinear", "DequantizeLinear",
    }
)  # fmt: skip
"""Ops that carry a sliced table unchanged in kind to where it is used (QDQ pairs included)."""
ADDS = frozenset({"Add", "QLinearAdd"})


def _added_to_activations(value: str, ctx: Context) -> bool:
    """Whether `value` reaches an Add through CARRIES ops only (a bounded walk)."""
    frontier, seen = [value], 0
    while frontier and seen < 32:
        name = frontier.pop()
        seen += 1
        for index in ctx.view.consumers.get(name, ()):
            user = ctx.view.nodes[index]
            if user.op_type in ADDS:
                return True
            if user.op_type in CARRIES:
                frontier.extend(o for o in user.outputs if o)
    return False


@register("PRelu")
def prelu(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """The slope is learned even when it is a single value (torch's PReLU() default)."""
    yield ctx.layer(node, ctx.refs(node, 1, "slope", "trainable"))


@register(*ELEMENTWISE)
def elementwise(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    if node.op_type == "Add" and absorbed_bias(node, ctx):
        return
    if scales_dynamic_quantization(ctx.view, node):
        return  # quantization constants: accounting lists them apart
    state = node.op_type in BROADCASTS and _feeds_side_inputs_only(node, ctx)
    refs: list[WeightRef] = []
    for position, name in enumerate(node.inputs):
        if ctx.is_const(name):
            kind = "other" if (node.op_type == "Pad" and position) or state else "auto"
            refs.extend(ctx.refs(node, position, "operand", kind))
    if any(r.kind == "trainable" for r in refs):
        yield ctx.layer(node, refs, notes=folding_notes(refs))  # TF's batchnorm/mul, say


@register("Loop")
def loop(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A Loop holds no weights of its own: the ones it carries unchanged are read inside its
    body (the view reads them through), and constants it updates are state (an RNN's zero
    hidden state as tf2onnx writes a Keras LSTM), other constants."""
    return iter(())


def _feeds_side_inputs_only(node: NodeView, ctx: Context) -> bool:
    """Every use of the output only shapes, quantizes or seeds another op (an RNN's initial
    state): torch's zero states, broadcast to a batch size read from the input, are no
    parameters, while a class token broadcast the same way and concatenated is one."""
    out = node.outputs[0] if node.outputs else ""
    users = ctx.view.consumers.get(out, ())
    if not users or out in ctx.view.graph_outputs:
        return False
    for index in users:
        user = ctx.view.nodes[index]
        if any(name == out and side_kind(user, p) is None for p, name in enumerate(user.inputs)):
            return False
    return True


@register("QLinearAdd", "QLinearMul", domain=MS)
def qlinear_elementwise(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A constant quantized operand (an int8 bias or table) is a parameter; scales are not."""
    refs: list[WeightRef] = []
    for position in (0, 3):
        if ctx.is_const(node.input(position)):
            for ref in ctx.refs(node, position, "operand", "trainable"):
                # a single value (the -10000 of an attention mask, 1/sqrt(d)) is no parameter
                refs.append(ref if ref.elements > 1 else replace(ref, kind="other"))
    if any(r.kind == "trainable" for r in refs):
        refs.extend(ctx.side_refs(node, (1, 2, 4, 5, 6, 7), "quantization"))
        yield ctx.layer(node, refs)
