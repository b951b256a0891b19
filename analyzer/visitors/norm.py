"""Normalization layers: scales and shifts are trainable, running statistics are not
(as Keras counts BatchNormalization). No MACs: the convention counts matrix work only."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.graph import NodeView
from analyzer.results import LayerTally, WeightRef
from analyzer.visitors.base import Context, register

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


@register("LayerNormalization", "InstanceNormalization", "GroupNormalization")
def scale_bias_norm(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    yield from _norm(node, ctx, {1: "scale", 2: "bias"})


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
