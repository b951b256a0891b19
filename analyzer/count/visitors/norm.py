"""Normalization layers: scales and shifts are trainable, running statistics are not
(as Keras counts BatchNormalization). No MACs: the convention counts matrix work only."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.core.results import LayerNote, LayerTally, NoteKind, WeightRef
from analyzer.count.visitors.base import Context, register
from analyzer.view.model import NodeView

MS = "com.microsoft"


def _norm(node: NodeView, ctx: Context, trainable: dict[int, str]) -> Iterator[LayerTally]:
    refs: list[WeightRef] = []
    for position, role in trainable.items():
        refs.extend(ctx.refs(node, position, role, "trainable"))
    yield ctx.layer(node, refs)


@register("BatchNormalization")
def batch_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    refs = [*ctx.refs(node, 1, "scale", "trainable"), *ctx.refs(node, 2, "bias", "trainable")]
    refs += [
        *ctx.refs(node, 3, "mean", "non_trainable"),
        *ctx.refs(node, 4, "var", "non_trainable"),
    ]
    yield ctx.layer(node, refs)


@register("LayerNormalization", "GroupNormalization")
def scale_bias_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _norm(node, ctx, {1: "scale", 2: "bias"})


IDENTITY_NOTE = "identity scale and bias (all 1, all 0) counted as other constants"


@register("InstanceNormalization")
def instance_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """torch writes GroupNorm as InstanceNormalization on [N, groups, -1] with a scale of ones
    and a bias of zeros (its own affine follows as Mul and Add), and an InstanceNorm without
    affine the same way: values torch does not count, so they are other constants here."""
    scale, bias = ctx.values(node.input(1)), ctx.values(node.input(2))
    identity = (
        scale is not None
        and bias is not None
        and scale.size == bias.size > 0
        and bool((scale == 1).all())
        and bool((bias == 0).all())
    )
    if not identity:
        yield from _norm(node, ctx, {1: "scale", 2: "bias"})
        return
    refs = [*ctx.refs(node, 1, "scale", "other"), *ctx.refs(node, 2, "bias", "other")]
    yield ctx.layer(node, refs, notes=(LayerNote(IDENTITY_NOTE, NoteKind.IDENTITY),))


@register("RMSNormalization")
@register("SimplifiedLayerNormalization", domain=MS)
def rms_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _norm(node, ctx, {1: "scale"})


@register("SkipLayerNormalization", domain=MS)
def skip_layer_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _norm(node, ctx, {2: "scale", 3: "bias", 4: "input_bias"})


@register("SkipSimplifiedLayerNormalization", domain=MS)
def skip_rms_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _norm(node, ctx, {2: "scale", 3: "input_bias"})


@register("EmbedLayerNormalization", domain=MS)
def embed_layer_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    roles = {2: "word_embedding", 3: "position_embedding", 4: "segment_embedding"}
    yield from _norm(node, ctx, {**roles, 5: "scale", 6: "bias"})
