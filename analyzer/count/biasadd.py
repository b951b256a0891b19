"""Bias Adds, paired with their layers once per model.

torch writes MatMul + Add for a dense layer on 3-D inputs, paddle2onnx every conv bias as a
bias-less Conv + Add: the Add's constant is that layer's bias. The dense and conv visitors
(which count it), the elementwise visitor (which then skips the Add), the rules and the
candidate writer (which removes the Add with its layer) all read this one pairing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from analyzer.core import ops
from analyzer.view.model import ModelView, NodeView


@dataclass(frozen=True, slots=True)
class BiasAdds:
    """Each layer's bias Add, by node index, and the Adds so absorbed."""

    by_layer: Mapping[int, int]
    """Index of a MatMul (or bias-less conv) -> index of the Add holding its bias."""
    absorbed: frozenset[int]
    """Indices of the Adds that are some layer's bias."""

    def of(self, view: ModelView, node: NodeView) -> NodeView | None:
        """The Add holding `node`'s bias, or None."""
        index = self.by_layer.get(node.index)
        return None if index is None else view.nodes[index]

    def is_absorbed(self, add: NodeView) -> bool:
        """True when `add` is the bias of a MatMul or conv, so that layer's row holds it."""
        return add.index in self.absorbed


def pair(view: ModelView, is_const: Callable[[str], bool]) -> BiasAdds:
    """Every layer's bias Add, in one pass over the nodes."""
    by_layer: dict[int, int] = {}
    for node in view.nodes:
        entry = ops.spec(node.domain, node.op_type)
        if entry is None or not entry.bias_add:
            continue
        add = _bias_add(node, entry, view, is_const)
        if add is not None:
            by_layer[node.index] = add.index
    return BiasAdds(by_layer, frozenset(by_layer.values()))


def _bias_add(
    node: NodeView, entry: ops.OpSpec, view: ModelView, is_const: Callable[[str], bool]
) -> NodeView | None:
    """The Add that only adds a constant bias to this MatMul's (or bias-less conv's) output."""
    if not _may_take_bias(node, entry, is_const):
        return None
    add = _sole_add_user(node, view)
    if add is None:
        return None
    other = add.inputs[1] if add.inputs[0] == node.outputs[0] else add.inputs[0]
    if other == node.outputs[0] or not is_const(other):
        return None
    if entry.family != "dense" and not _per_channel(view, node, other):
        return None
    return add


def _may_take_bias(node: NodeView, entry: ops.OpSpec, is_const: Callable[[str], bool]) -> bool:
    """A MatMul with a constant operand, or a bias-less conv with a constant weight."""
    if not node.outputs:
        return False
    weight = node.input(entry.weight if entry.weight is not None else 1)
    if entry.family != "dense":  # a conv or transposed conv
        has_bias = entry.bias is not None and bool(node.input(entry.bias))
        if has_bias or not is_const(weight):
            return False
    return is_const(weight) or is_const(node.input(0))


def _sole_add_user(node: NodeView, view: ModelView) -> NodeView | None:
    """The plain two-input Add that is the only reader of the node's (non-output) output."""
    users = view.consumers.get(node.outputs[0], ())
    if len(users) != 1 or node.outputs[0] in view.graph_outputs:
        return None
    add = view.nodes[users[0]]
    if add.op_type != "Add" or add.domain != "" or len(add.inputs) != 2:
        return None
    return add


def _known(view: ModelView, name: str) -> tuple[int, ...] | None:
    shape = view.shape(name) if name else None
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(int(d) for d in shape)


def _per_channel(view: ModelView, conv: NodeView, bias: str) -> bool:
    """A bias for a bias-less conv: one value per output channel, broadcast on axis 1."""
    weight, shape = _known(view, conv.input(1)), _known(view, bias)
    if weight is None or shape is None or len(weight) < 3:
        return False
    channels = weight[0] if conv.op_type == "Conv" else weight[1] * int(conv.attr("group", 1))
    squeezed = [d for d in shape if d != 1]
    return squeezed == [channels] and len(shape) >= 2 and shape[-len(weight) + 1] == channels


__all__ = ["BiasAdds", "pair"]
