"""Convolutions. MACs = output elements x (input channels / group) x kernel size;
for ConvTranspose, input elements x (output channels / group) x kernel size."""

from __future__ import annotations

import re
from collections.abc import Iterator

from analyzer.core import ops
from analyzer.core.results import LayerNote, LayerTally, NoteKind, WeightRef
from analyzer.core.symbolic import Poly
from analyzer.count.visitors.base import Context, dims, product, register
from analyzer.count.visitors.linear import bias_add
from analyzer.view.model import NodeView

FOLDED = re.compile(r"^onnx::Conv_\d+(_quantized)?$|batch_?norm|weight_bias$", re.IGNORECASE)


FOLDED_NOTE = "exporter-computed weights, BatchNormalization likely folded in"


def folding_notes(refs: list[WeightRef], node: NodeView | None = None) -> list[str]:
    """Exporters fold BatchNorm into the conv and rename what they computed, or (torch's
    dynamo) keep the names and record the rewrite in the node's metadata; say so."""
    names = [r.tensor for r in refs if r.kind == "trainable" and FOLDED.search(r.tensor)]
    if not names and node is not None and "BatchNorm" in node.rewrite:
        names = [r.tensor for r in refs if r.kind == "trainable"]
    if not names:
        return []
    return [LayerNote(f"{FOLDED_NOTE} ({', '.join(names)})", NoteKind.FOLDED)]


def _separate_bias(node: NodeView, ctx: Context) -> list[WeightRef]:
    add = bias_add(node, ctx)
    if add is None:
        return []
    position = 1 if add.inputs[0] == node.outputs[0] else 0
    return list(ctx.refs(add, position, "bias", "trainable"))


def _conv(
    node: NodeView, ctx: Context, *, w: int, bias: int | None, quant: tuple[int, ...] = ()
) -> Iterator[LayerTally]:
    refs = list(ctx.refs(node, w, "weight", "trainable"))
    if bias is not None:
        refs.extend(ctx.refs(node, bias, "bias", "trainable"))
    refs.extend(ctx.side_refs(node, quant, "quantization"))
    refs.extend(_separate_bias(node, ctx))
    shape = ctx.const_shape(node.input(w))
    out = ctx.shape(node.outputs[0]) if node.outputs else None
    per_output: int | str = product(shape[1:]) if shape and len(shape) >= 3 else "?"
    macs = Poly.product([*dims(out), per_output])
    yield ctx.layer(node, refs, macs, folding_notes(refs, node))


def conv(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """A conv as the catalogue describes it: weight, bias and quantization inputs."""
    entry = ops.CATALOGUE[(node.domain, node.op_type)]
    assert entry.weight is not None, node.op_type
    yield from _conv(node, ctx, w=entry.weight, bias=entry.bias, quant=tuple(sorted(entry.quant)))


for _domain, _op in ops.counted_by(ops.CONV):
    register(_op, domain=_domain)(conv)


@register("ConvTranspose")
def conv_transpose(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    refs = list(ctx.refs(node, 1, "weight", "trainable"))
    refs.extend(ctx.refs(node, 2, "bias", "trainable"))
    refs.extend(_separate_bias(node, ctx))
    shape = ctx.const_shape(node.input(1))
    per_input: int | str = product(shape[1:]) if shape and len(shape) >= 3 else "?"
    yield ctx.layer(node, refs, Poly.product([*dims(ctx.shape(node.input(0))), per_input]))
