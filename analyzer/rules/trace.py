"""Where a dense layer's input comes from: back through flattening and elementwise ops to
the spatial tensor it flattens (ONX101), or the reason there is none (--debug)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from analyzer.core.results import Shape
from analyzer.rules.base import RuleContext
from analyzer.view.model import NodeView

RESHAPING: Final = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose"})
ELEMENTWISE: Final = frozenset(
    {
        "Identity", "Cast", "Dropout", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu",
        "Celu", "Gelu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Clip", "Mish",
        "PRelu", "ThresholdedRelu", "QuantizeLinear", "DequantizeLinear", "Erf", "Abs", "Neg",
        "Add", "Sub", "Mul", "Div", "BatchNormalization", "InstanceNormalization", "Pad",
        "FastGelu", "BiasGelu", "QuickGelu", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearAdd",
        "QLinearMul", "DynamicQuantizeLinear", "Swish",
    }
)  # fmt: skip
SPATIAL_OPS: Final = frozenset(
    {
        "Conv", "ConvTranspose", "QLinearConv", "ConvInteger", "FusedConv", "NhwcConv",
        "MaxPool", "AveragePool", "LpPool", "QLinearAveragePool", "NhwcMaxPool", "Resize",
        "Upsample", "DepthToSpace", "SpaceToDepth", "MaxUnpool", "QLinearConcat",
    }
)  # fmt: skip
MAX_STEPS: Final = 256


@dataclass(frozen=True, slots=True)
class Source:
    """The spatial tensor a dense layer flattens, and how its axes read."""

    value: str
    channels: int
    spatial: tuple[int, ...]
    layout: str
    confidence: str
    chain: tuple[str, ...] = ()
    """The values walked from the dense input back to `value`, both included (set by
    `flattened_source`): the candidate writer replaces the nodes that produce them."""


def data_input(node: NodeView, ctx: RuleContext) -> str | None:
    """The one non-constant input an elementwise op carries forward."""
    live = [name for name in node.inputs if name and not ctx.consts.is_const(name)]
    if not live:
        return None
    out = ctx.view.shape(node.outputs[0]) if node.outputs else None
    for name in live:
        if ctx.view.shape(name) == out:
            return name
    return live[0]


def _origin(value: str, ctx: RuleContext) -> tuple[str, tuple[int, ...], str] | None:
    """Walk back from a rank>=3 tensor to a conv/pool op or a graph input.

    Returns (kind, perm, origin value): axis i of `value` is axis perm[i] of the origin.
    """
    perm: tuple[int, ...] = ()
    for _ in range(MAX_STEPS):
        index = ctx.view.producer.get(value)
        if index is None:
            return ("input", perm, value) if value in ctx.view.graph_inputs else None
        node = ctx.view.nodes[index]
        if node.op_type in SPATIAL_OPS:
            return "conv", perm, value
        if node.op_type in ("Transpose", "Squeeze"):
            step = _perm(node, ctx) if node.op_type == "Transpose" else _kept_axes(node, ctx)
            if step is None or (perm and max(perm) >= len(step)):
                return None
            perm = step if not perm else tuple(step[p] for p in perm)
            value = node.inputs[0]
            continue
        if node.op_type in ELEMENTWISE or node.op_type == "Concat":
            nxt = data_input(node, ctx)
            if nxt is None:
                return None
            value = nxt
            continue
        return None
    return None


def _perm(node: NodeView, ctx: RuleContext) -> tuple[int, ...] | None:
    """A Transpose's perm; without one it reverses the axes."""
    perm = tuple(int(p) for p in node.attr("perm", ()) or ())
    if perm:
        return perm
    shape = ctx.view.shape(node.input(0))
    return None if shape is None else tuple(reversed(range(len(shape))))


def _kept_axes(node: NodeView, ctx: RuleContext) -> tuple[int, ...] | None:
    """The axes of a Squeeze's input that its output keeps, in order (tf2onnx writes every
    Keras Conv1D as Unsqueeze -> Conv -> Squeeze); None when they cannot be told."""
    shape = ctx.view.shape(node.input(0))
    out = ctx.view.shape(node.outputs[0]) if node.outputs else None
    if shape is None or out is None or len(out) >= len(shape):
        return None
    rank = len(shape)
    given = _squeeze_axes(node, ctx)
    if given:
        removed = {a % rank for a in given if -rank <= a < rank}
    else:  # unambiguous when only the removed axes have size 1
        removed = {a for a, d in enumerate(shape) if d == 1}
    if len(removed) != rank - len(out):
        return None
    return tuple(a for a in range(rank) if a not in removed)


def _squeeze_axes(node: NodeView, ctx: RuleContext) -> tuple[int, ...]:
    """A Squeeze's axes: the attribute (before opset 13) or the stored second input."""
    given: tuple[int, ...] = tuple(node.attr("axes", ()))
    stored = ctx.view.values(node.input(1))
    if not given and stored is not None and stored.ndim <= 1:
        given = tuple(int(a) for a in stored.reshape(-1))
    return given


PASS_THROUGH: Final = ELEMENTWISE | RESHAPING | frozenset(
    {
        "Concat", "Slice", "Split", "Gather", "GatherElements", "Expand", "Tile", "ReduceMean",
        "ReduceMax", "ReduceSum", "GlobalAveragePool", "GlobalMaxPool", "Shape", "Max", "Min",
    }
)  # fmt: skip
"""Ops an exporter's decomposed pooling or slicing is made of (Gather/Add/Div chains): a
feature map passes through them unchanged in kind. Anything else (a recurrent layer, attention,
a MatMul, a Loop) makes a sequence or features, not a spatial map."""
MAX_ANCESTORS: Final = 512


def _conv_ancestor(value: str, ctx: RuleContext) -> str | None:
    """Why `value` is not known to descend from a conv/pool or an image input, or None when it
    does, through pass-through ops only.

    Exporters decompose pooling into Gather/Add/Div chains the strict walk cannot follow; a
    bounded search over ancestors still tells a feature map from a sequence: it stops at the
    first op that is not a pass-through (an LSTM, quantized or not, attention, a MatMul).
    """
    stack, seen, spatial = [value], {value}, False
    while stack and len(seen) < MAX_ANCESTORS:
        name = stack.pop()
        index = ctx.view.producer.get(name)
        if index is None:
            spatial = spatial or _image_input(name, ctx)
            continue
        node = ctx.view.nodes[index]
        if node.op_type in SPATIAL_OPS:
            spatial = True
            continue
        why = _not_passed_through(node, ctx)
        if why is not None:
            return why
        for source in node.inputs:
            if source and source not in seen and not ctx.consts.is_const(source):
                seen.add(source)
                stack.append(source)
    if stack:
        return "no spatial producer within the search bound"
    return None if spatial else "no conv, pooling or image input upstream"


def _not_passed_through(node: NodeView, ctx: RuleContext) -> str | None:
    """Why a feature map does not pass through `node` unchanged in kind, or None when it does."""
    label = f"{node.domain + '::' if node.domain else ''}{node.op_type} {node.name!r}"
    if node.op_type not in PASS_THROUGH:
        return f"traced back to {label}: a sequence or features, not a spatial map"
    if node.op_type == "Gather" and ctx.consts.is_const(node.input(0)):
        return f"traced back to the embedding lookup {label}: tokens, not pixels"
    return None


def _image_input(name: str, ctx: RuleContext) -> bool:
    """A graph input of rank 4 (an image batch) is a spatial producer."""
    shape = ctx.view.shape(name)
    return name in ctx.view.graph_inputs and shape is not None and len(shape) == 4


def _channel_axis(kind: str, origin: str, ctx: RuleContext) -> int | None:
    """Channel axis of the origin tensor: 1 for conv outputs (ONNX is NCHW), guessed for inputs."""
    if kind == "conv":
        return 1
    shape = ctx.view.shape(origin)
    if shape is None or len(shape) != 4:
        return None  # a rank-3 input is a single-channel image [N, H, W]
    last, first = shape[3], shape[1]
    return 3 if last in (1, 3, 4) and first not in (1, 3, 4) else 1


def _source(value: str, ctx: RuleContext) -> Source | str:
    shape = ctx.view.shape(value)
    if shape is None or not all(isinstance(d, int) for d in shape[1:]):
        return f"{value!r} has unknown dims"
    dims = [int(d) for d in shape[1:]]
    found = _origin(value, ctx)
    if found is None:
        return _unknown_origin(value, len(shape), dims, ctx)
    kind, perm, origin = found
    confidence = "high" if kind == "conv" else "medium"
    origin_axis = _channel_axis(kind, origin, ctx)
    if origin_axis is None:
        if len(dims) == 2:
            return Source(value, 1, (dims[0], dims[1]), "image", confidence)
        return f"the channel axis of {value!r} cannot be told"
    axis = origin_axis
    if perm:
        if len(perm) != len(shape) or origin_axis not in perm:
            return f"the channel axis of {value!r} cannot be told"
        axis = perm.index(origin_axis)
    if axis == 0:
        return f"the channel axis of {value!r} cannot be told"
    channels = dims[axis - 1]
    spatial = tuple(d for position, d in enumerate(dims, start=1) if position != axis)
    return Source(value, channels, spatial, _layout(len(shape), axis), confidence)


def _unknown_origin(value: str, rank: int, dims: list[int], ctx: RuleContext) -> Source | str:
    """A value no spatial op is known to make: a feature map by rank, unless a conv it
    comes from says otherwise."""
    if rank not in (3, 4):
        return f"{value!r} is not a feature map or image (rank {rank})"
    why = _conv_ancestor(value, ctx)
    if why is not None:
        return why
    layout = "NCHW" if rank == 4 else "NCL"
    return Source(value, dims[0], tuple(dims[1:]), layout, "medium")


def _layout(rank: int, axis: int) -> str:
    """The layout's name, from the rank and the channel axis."""
    if rank == 4:
        return "NCHW" if axis == 1 else "NHWC" if axis == 3 else "N?C?"
    if rank == 3:
        return "NCL" if axis == 1 else "NLC"
    return f"rank{rank}"


def flattened_source(node: NodeView, data: str, k: int, ctx: RuleContext) -> Source | str:
    """Find the flattened spatial source of a dense input, or say why there is none; the
    source carries the chain of values walked."""
    shape = ctx.view.shape(data)
    if shape is not None and len(shape) >= 3:
        return "contracts only the last axis at each position (per-position dense, like a 1x1 conv)"
    value, flattened = data, False
    chain = [data]
    for _ in range(MAX_STEPS):
        shape = ctx.view.shape(value)
        if flattened and shape is not None and len(shape) >= 3:
            found = _flattened_from(value, shape, k, ctx)
            return found if isinstance(found, str) else replace(found, chain=tuple(chain))
        index = ctx.view.producer.get(value)
        if index is None:
            return "reached a graph input of rank <= 2"
        producer = ctx.view.nodes[index]
        if producer.op_type in RESHAPING:
            flattened = True
            value = producer.inputs[0]
        elif producer.op_type in ELEMENTWISE:
            nxt = data_input(producer, ctx)
            if nxt is None:
                return "constant input"
            value = nxt
        else:
            return f"input comes from {producer.op_type} {producer.name!r}"
        chain.append(value)
    return "walk too long"


def _flattened_from(value: str, shape: Shape, k: int, ctx: RuleContext) -> Source | str:
    """The source when `value` (rank >= 3, flattened on the way to the dense) has k elements."""
    known = all(isinstance(d, int) for d in shape[1:])
    total = 1
    for d in shape[1:]:
        total *= d if isinstance(d, int) else 0
    if not known:
        return f"spatial dims of {value!r} are unknown"
    if total != k:
        return f"in_features {k} != {total} elements of {value!r}"
    return _source(value, ctx)


__all__ = [
    "ELEMENTWISE",
    "MAX_STEPS",
    "PASS_THROUGH",
    "RESHAPING",
    "SPATIAL_OPS",
    "Source",
    "data_input",
    "flattened_source",
]
