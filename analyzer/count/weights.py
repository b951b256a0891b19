"""Which stored tensors feed a value, through data-independent ops.

A value is constant when a stored tensor holds it or a node computes it from constants only
(DequantizeLinear of an int8 weight, Transpose of a tied embedding, weight_norm's g·v/|v|).
Walking back through such nodes finds every stored tensor behind a layer's input; inputs that
only shape the data (Reshape's shape, Slice's starts) or quantize it (scales, zero points) are
reported apart so they never count as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.core.errors import LimitExceededError
from analyzer.core.ops import spec
from analyzer.core.records import quick_init
from analyzer.count.biasadd import BiasAdds, pair
from analyzer.view.model import ModelView, NodeView, StoredTensor

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
    """'quantization' or 'other' when input `position` of `node` only parametrises the op
    (or seeds its state), as the op catalogue says."""
    described = spec(node.domain, node.op_type)
    if described is None:
        return None
    if position in described.quant:
        return "quantization"
    return "other" if position in described.other else None


def scales_dynamic_quantization(view: ModelView, node: NodeView) -> bool:
    """Mul(DynamicQuantizeLinear's y_scale, weight scale): onnxruntime's dynamic quantization
    combines the activation's scale and the weight's (per tensor or per channel) this way, and
    the result rescales MatMulInteger's or ConvInteger's output."""
    if node.op_type != "Mul" or node.domain != "":
        return False
    for name in node.inputs:
        index = view.producer.get(name)
        source = view.nodes[index] if index is not None else None
        if (
            source is not None
            and source.op_type == "DynamicQuantizeLinear"
            and source.domain == ""
            and source.outputs[1:2] == (name,)
        ):
            return True
    return False


@quick_init
@dataclass(frozen=True, slots=True)
class Reach:
    """The stored tensors behind one constant value."""

    main: tuple[tuple[StoredTensor, tuple[str, ...]], ...]
    """Tensors on the data path, with the ops passed through (nearest first)."""
    side: tuple[tuple[StoredTensor, str], ...]
    """Tensors that only shape or quantize the data path: (tensor, kind)."""


MAX_WALK_STEPS = 1_000_000
"""Steps all walks back from layer inputs may take together. Each walk is linear, but n
layers each reading a constant computed from n stored tensors make n*n steps (and a report
of n*n weight rows); real models stay far below (one step per op between weight and layer)."""


class Constants:
    """Constness of every value, computed once in graph order; reaches memoized."""

    def __init__(self, view: ModelView) -> None:
        self.view = view
        self.const: set[str] = set(view.stored)
        self.shape_like: set[str] = set()
        self.tables: set[str] = set()
        """Outputs of nodes whose data is constant and whose bounds are read from shapes."""
        """Values computed from tensor shapes (and constants) only: positions from
        Range(Shape(x)), sequence lengths, rotary angles. Data-independent, but no weights."""
        for node in view.nodes:
            kind = self._classify(node)
            if kind is not None:
                (self.const if kind == "const" else self.shape_like).update(
                    o for o in node.outputs if o
                )
        self._memo: dict[str, Reach] = {}
        self._budget = MAX_WALK_STEPS
        self._bias_adds: BiasAdds | None = None

    @property
    def bias_adds(self) -> BiasAdds:
        """Every layer's separate bias Add, paired once (count, rules and runtime read it)."""
        if self._bias_adds is None:
            self._bias_adds = pair(self.view, self.is_const)
        return self._bias_adds

    def _classify(self, node: NodeView) -> str | None:
        """ "const" when the node computes a constant from constants, "shape" when it computes
        from shapes (a data input is read from shapes), else None. A stored table cut or
        selected by bounds read from shapes (GPT-2's position table sliced to the sequence
        length) is neither: the node is a layer that reads that table (see `is_table`)."""
        if node.has_subgraphs or node.op_type in NONDETERMINISTIC or node.op_type == "Constant":
            return None
        if node.op_type in ("Shape", "Size"):
            return "shape"
        inputs = [(p, name) for p, name in enumerate(node.inputs) if name]
        if not inputs or any(n not in self.const and n not in self.shape_like for _, n in inputs):
            return None
        if all(name in self.const for _, name in inputs):
            return "const"
        return self._shape_or_table(node, inputs)

    def _shape_or_table(self, node: NodeView, inputs: list[tuple[int, str]]) -> str | None:
        """For a node reading both constants and shapes: "shape", or None (noted as a table)
        when all its data inputs are constant and only its bounds come from shapes."""
        described = spec(node.domain, node.op_type)
        shaping = described.other if described is not None else frozenset()
        data = [name for p, name in inputs if p not in shaping]
        if data and all(name in self.const for name in data):
            self.tables.update(o for o in node.outputs if o)
            return None
        return "shape"

    def is_const(self, name: str) -> bool:
        return name in self.const

    def is_shape_like(self, name: str) -> bool:
        return name in self.shape_like

    def is_table(self, name: str) -> bool:
        return name in self.tables

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
        """Every stored tensor behind `start`, iteratively, each (name, kind) visited once.

        The ops passed through are kept as parent links, not copied per step: copying a
        growing tuple at each step made a 10,000-node constant chain quadratic.
        """
        stored = self.view.stored.get(start)
        if stored is not None and self._budget > 0:  # a weight read directly: most of them
            self._budget -= 1
            return Reach(((stored, ()),), ())
        main: dict[str, tuple[StoredTensor, tuple[str, ...]]] = {}
        side: dict[str, tuple[StoredTensor, str]] = {}
        hops: list[tuple[str, int]] = []
        """(op_type, index of the previous hop or -1): the path back towards `start`."""
        stack: list[tuple[str, int, str | None]] = [(start, -1, None)]
        seen: set[tuple[str, str | None]] = set()
        while stack:
            name, hop, kind = stack.pop()
            if (name, kind) in seen:
                continue
            seen.add((name, kind))
            self._budget -= 1
            if self._budget < 0:
                raise LimitExceededError(
                    "",
                    f"constants reach the layers through over {MAX_WALK_STEPS:,} steps",
                    "the constant subgraphs are shared quadratically; onnx-audit stops here",
                )
            stored = self.view.stored.get(name)
            if stored is not None:
                if kind is None:
                    if stored.key not in main:
                        main[stored.key] = (stored, _via(hops, hop))
                else:
                    side.setdefault(stored.key, (stored, kind))
                continue
            index = self.view.producer.get(name)
            if index is None:
                continue
            node = self.view.nodes[index]
            hops.append((node.op_type, hop))
            here = len(hops) - 1
            for position, source in enumerate(node.inputs):
                if source:
                    stack.append((source, here, kind or side_kind(node, position)))
        for key in main:
            side.pop(key, None)
        return Reach(tuple(main.values()), tuple(side.values()))


MAX_VIA = 16
"""Ops kept in a WeightRef's `via`: the ones nearest the stored tensor, then "..."."""


def _via(hops: list[tuple[str, int]], hop: int) -> tuple[str, ...]:
    """Ops from `start` to the tensor (nearest `start` first), at most MAX_VIA of them."""
    ops: list[str] = []
    while hop >= 0 and len(ops) < MAX_VIA:
        op_type, hop = hops[hop]
        ops.append(op_type)
    if hop >= 0:
        ops.append("...")
    return tuple(reversed(ops))
