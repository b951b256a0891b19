"""Which stored tensors feed a value, through data-independent ops.

A value is constant when a stored tensor holds it or a node computes it from constants only
(DequantizeLinear of an int8 weight, Transpose of a tied embedding, weight_norm's g·v/|v|).
Walking back through such nodes finds every stored tensor behind a layer's input; inputs that
only shape the data (Reshape's shape, Slice's starts) or quantize it (scales, zero points) are
reported apart so they never count as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from analyzer.graph import ModelView, NodeView, StoredTensor

QUANT_INPUTS: Mapping[str, frozenset[int]] = {
    "DequantizeLinear": frozenset({1, 2}),
    "QuantizeLinear": frozenset({1, 2}),
}
SHAPE_INPUTS: Mapping[str, frozenset[int]] = {
    "Reshape": frozenset({1}),
    "Squeeze": frozenset({1}),
    "Unsqueeze": frozenset({1}),
    "Slice": frozenset({1, 2, 3, 4}),
    "Expand": frozenset({1}),
    "Tile": frozenset({1}),
    "Pad": frozenset({1, 2, 3}),
    "Gather": frozenset({1}),
    "GatherElements": frozenset({1}),
    "GatherND": frozenset({1}),
    "Split": frozenset({1}),
    "Resize": frozenset({1, 2, 3}),
    "Upsample": frozenset({1}),
    "ConstantOfShape": frozenset({0}),
    "ReduceSum": frozenset({1}),
    "ReduceMean": frozenset({1}),
    "ReduceMax": frozenset({1}),
    "ReduceMin": frozenset({1}),
    "ReduceProd": frozenset({1}),
    "ReduceL2": frozenset({1}),
    "ReduceL1": frozenset({1}),
    "ReduceSumSquare": frozenset({1}),
    "TopK": frozenset({1}),
    "OneHot": frozenset({0, 1, 2}),
    "Range": frozenset({0, 1, 2}),
    "CumSum": frozenset({1}),
}
NONDETERMINISTIC = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)


def side_kind(node: NodeView, position: int) -> str | None:
    """'quantization' or 'other' when input `position` of `node` only parametrises the op."""
    if node.domain == "" and position in QUANT_INPUTS.get(node.op_type, frozenset()):
        return "quantization"
    if node.domain == "" and position in SHAPE_INPUTS.get(node.op_type, frozenset()):
        return "other"
    return None


@dataclass(frozen=True, slots=True)
class Reach:
    """The stored tensors behind one constant value."""

    main: tuple[tuple[StoredTensor, tuple[str, ...]], ...]
    """Tensors on the data path, with the ops passed through (nearest first)."""
    side: tuple[tuple[StoredTensor, str], ...]
    """Tensors that only shape or quantize the data path: (tensor, kind)."""


class Constants:
    """Constness of every value, computed once in graph order; reaches memoized."""

    def __init__(self, view: ModelView) -> None:
        self.view = view
        self.const: set[str] = set(view.stored)
        for node in view.nodes:
            if self._folds(node):
                self.const.update(o for o in node.outputs if o)
        self._memo: dict[str, Reach] = {}

    def _folds(self, node: NodeView) -> bool:
        if node.has_subgraphs or node.op_type in NONDETERMINISTIC or node.op_type == "Constant":
            return False
        inputs = [name for name in node.inputs if name]
        return bool(inputs) and all(name in self.const for name in inputs)

    def is_const(self, name: str) -> bool:
        return name in self.const

    def reach(self, name: str) -> Reach | None:
        """Stored tensors behind `name`, or None when `name` is not constant."""
        if not name or name not in self.const:
            return None
        found = self._memo.get(name)
        if found is None:
            found = self._walk(name)
            self._memo[name] = found
        return found

    def _walk(self, start: str) -> Reach:
        main: dict[str, tuple[StoredTensor, tuple[str, ...]]] = {}
        side: dict[str, tuple[StoredTensor, str]] = {}
        stack: list[tuple[str, tuple[str, ...], str | None]] = [(start, (), None)]
        seen: set[tuple[str, str | None]] = set()
        while stack:
            name, via, kind = stack.pop()
            if (name, kind) in seen:
                continue
            seen.add((name, kind))
            stored = self.view.stored.get(name)
            if stored is not None:
                if kind is None:
                    main.setdefault(stored.key, (stored, via))
                else:
                    side.setdefault(stored.key, (stored, kind))
                continue
            index = self.view.producer.get(name)
            if index is None:
                continue
            node = self.view.nodes[index]
            for position, source in enumerate(node.inputs):
                if not source:
                    continue
                this_kind = kind or side_kind(node, position)
                stack.append((source, (*via, node.op_type), this_kind))
        for key in main:
            side.pop(key, None)
        return Reach(tuple(main.values()), tuple(side.values()))
