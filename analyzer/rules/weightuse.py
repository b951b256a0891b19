"""What the weight rules (ONX201-ONX205) share: how layers use each stored tensor, and the
finding they make about one tensor. The rules judge `ctx.weights` (the --inspect-weights
statistics); nothing here reads the file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from analyzer.core.results import Finding, LayerTally, Payload
from analyzer.core.symbolic import Poly
from analyzer.core.tensorstats import TensorStats
from analyzer.rules.base import Rule, RuleContext
from analyzer.view.model import NodeView

PARAMETER_KINDS = frozenset({"trainable", "non_trainable"})


@dataclass(frozen=True, slots=True)
class WeightUse:
    """One layer's use of a stored tensor."""

    layer: str
    op_type: str
    role: str
    kind: str
    axis: int | None
    """Axis of the stored tensor that indexes the layer's output channels, when known."""


def _axis(
    layer: LayerTally, tensor: str, via: tuple[str, ...], node: NodeView | None
) -> int | None:
    """Conv: axis 0; MatMul weight (input 1): last axis; Gemm: axis 0 with transB, else last."""
    if node is None or via or tensor not in node.inputs or node.domain:
        return None
    position = node.inputs.index(tensor)
    if layer.op_type == "Conv" and position == 1:
        return 0
    if layer.op_type == "MatMul" and position == 1:
        return -1
    if layer.op_type == "Gemm" and position == 1:
        return 0 if node.attr("transB", 0) else -1
    return None


def weight_uses(
    layers: Iterable[LayerTally], nodes: Mapping[str, NodeView] | None = None
) -> dict[str, tuple[WeightUse, ...]]:
    """Stored tensor name -> every layer use; `nodes` (by name) gives the channel axes."""
    found: dict[str, list[WeightUse]] = {}
    for layer in layers:
        node = (nodes or {}).get(layer.name)
        for ref in layer.weights:
            axis = _axis(layer, ref.tensor, ref.via, node)
            use = WeightUse(layer.name, layer.op_type, ref.role, ref.kind, axis)
            found.setdefault(ref.tensor, []).append(use)
    return {name: tuple(uses) for name, uses in found.items()}


Uses = Mapping[str, Sequence[WeightUse]]


def context_uses(ctx: RuleContext) -> dict[str, tuple[WeightUse, ...]]:
    return weight_uses(ctx.layers.values(), {node.name: node for node in ctx.view.nodes})


def parameter_uses(uses: Uses, tensor: str) -> list[WeightUse]:
    """The uses of `tensor` as a parameter (trainable or not), not as a constant."""
    return [use for use in uses.get(tensor, ()) if use.kind in PARAMETER_KINDS]


def layer_names(uses: Sequence[WeightUse]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(use.layer for use in uses))


def layers_text(layers: Sequence[str]) -> str:
    """`layer 'a'`, `layers 'a', 'b', 'c', ...`."""
    if not layers:
        return "no layer"
    shown = ", ".join(repr(name) for name in layers[:3])
    return f"layer{'s' if len(layers) > 1 else ''} {shown}{', ...' if len(layers) > 3 else ''}"


def tensor_text(name: str, dtype: str, dims: Sequence[int]) -> str:
    """`'w' float [64, 32]`."""
    return f"{name!r} {dtype} [{', '.join(map(str, dims))}]"


def read_weights(ctx: RuleContext) -> list[TensorStats]:
    """The statistics of every stored tensor read, in file order; none without
    --inspect-weights."""
    return list(ctx.weights.values()) if ctx.weights is not None else []


def parameter_tensors(ctx: RuleContext) -> Iterator[tuple[TensorStats, list[WeightUse]]]:
    """Each tensor read (file order) that some layer uses as a parameter, with those uses:
    what every weight rule walks. Nothing without --inspect-weights."""
    tensors = read_weights(ctx)
    if not tensors:
        return
    uses = context_uses(ctx)
    for tensor in tensors:
        mine = parameter_uses(uses, tensor.name)
        if mine:
            yield tensor, mine


def tensor_finding(
    ctx: RuleContext,
    rule: Rule,
    *,
    layers: tuple[str, ...],
    message: str,
    detail: Payload,
    params_saved: int = 0,
) -> Finding:
    """A finding about one stored tensor, placed on the first layer that uses it."""
    node = layers[0] if layers else ""
    layer = ctx.layers.get(node)
    return Finding(
        code=rule.code,
        rule=rule.name,
        node=node,
        op_type=layer.op_type if layer is not None else "",
        message=message,
        confidence="high",
        severity=rule.severity,
        params_saved=params_saved,
        macs_delta=Poly(),
        detail=detail,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorPayload(Payload):
    """The fields a weight rule's payload starts with: the tensor and the layers that use it."""

    tensor: str
    layers: tuple[str, ...]
    dtype: str
    dims: tuple[int, ...]
    elements: int

    def subject(self) -> str:
        return self.tensor

    def tensor_line(self) -> tuple[str, str]:
        """The detail line that names the tensor and where it is used."""
        where = f"{tensor_text(self.tensor, self.dtype, self.dims)} in {layers_text(self.layers)}"
        return ("tensor", where)


__all__ = [
    "PARAMETER_KINDS",
    "TensorPayload",
    "Uses",
    "WeightUse",
    "context_uses",
    "layer_names",
    "layers_text",
    "parameter_tensors",
    "parameter_uses",
    "read_weights",
    "tensor_finding",
    "tensor_text",
    "weight_uses",
]
