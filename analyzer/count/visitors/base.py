"""The visitor registry, keyed by (domain, op_type), and the context handlers read from.

Handlers are pure: they look at one node through the Context and yield LayerTally records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

import numpy.typing as npt

from analyzer.core import dtypes, ops
from analyzer.core.errors import StrictModeError
from analyzer.core.results import LayerTally, Shape, WeightRef
from analyzer.core.symbolic import Dim, Poly
from analyzer.count.weights import Constants, side_kind
from analyzer.view.model import ModelView, NodeView, StoredTensor, normalize_domain

Visitor: TypeAlias = Callable[[NodeView, "Context"], Iterator[LayerTally]]
_REGISTRY: dict[tuple[str, str], Visitor] = {}
PARAM_KINDS = frozenset({"trainable", "non_trainable"})


def register(*op_types: str, domain: str = "") -> Callable[[Visitor], Visitor]:
    """Register a handler for ops of one domain; a key registered twice is a bug."""
    key_domain = normalize_domain(domain)

    def decorate(func: Visitor) -> Visitor:
        for op_type in op_types:
            key = (key_domain, op_type)
            if key in _REGISTRY:
                raise ValueError(
                    f"visitor for {key_domain or 'ai.onnx'}::{op_type} registered twice"
                )
            _REGISTRY[key] = func
        return func

    return decorate


def lookup(domain: str, op_type: str) -> Visitor | None:
    return _REGISTRY.get((normalize_domain(domain), op_type))


def registered() -> tuple[tuple[str, str], ...]:
    return tuple(sorted(_REGISTRY))


def _location(tensor: StoredTensor) -> str:
    return tensor.location if tensor.origin != "constant" else "constant-node"


@dataclass(slots=True)
class Context:
    """What a handler may ask about the model. Read-only for handlers."""

    view: ModelView
    consts: Constants
    strict: bool = False
    warnings: list[str] = field(default_factory=list)

    def shape(self, name: str) -> Shape | None:
        return self.view.shape(name) if name else None

    def const_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of a constant input when every dim is known."""
        shape = self.shape(name)
        if shape is None or not all(isinstance(d, int) for d in shape):
            return None
        return tuple(int(d) for d in shape)

    def is_const(self, name: str) -> bool:
        return self.consts.is_const(name)

    def values(self, name: str) -> npt.NDArray[Any] | None:
        """The values of a small float tensor stored in the file itself, read directly."""
        tensor = self.view.small.get(name) if name else None
        float_tensor = tensor is not None and dtypes.is_float(tensor.data_type)
        return self.view.values(name) if float_tensor else None

    def refs(
        self,
        node: NodeView,
        position: int,
        role: str,
        kind: str,
        *,
        elements: int | None = None,
    ) -> tuple[WeightRef, ...]:
        """WeightRefs for every stored tensor behind input `position`.

        kind "auto" applies the elementwise rule: float (or dequantized) tensors of more than
        one element are trainable, the rest are other constants.
        """
        name = node.input(position)
        reach = self.consts.reach(name)
        if reach is None:
            return self._unknown(node, name, role, kind)
        out: list[WeightRef] = []
        for tensor, via in reach.main:
            this_kind = kind
            if kind == "auto":
                learned = dtypes.is_float(tensor.dtype) or "DequantizeLinear" in via
                this_kind = "trainable" if learned and tensor.elements > 1 else "other"
            count = tensor.elements if elements is None else elements
            out.append(_ref(tensor, role, this_kind, count, via))
        for tensor, side in reach.side:
            out.append(
                _ref(
                    tensor,
                    "quantization" if side == "quantization" else "shape",
                    side,
                    tensor.elements,
                    (),
                )
            )
        return tuple(out)

    def _unknown(self, node: NodeView, name: str, role: str, kind: str) -> tuple[WeightRef, ...]:
        """A weight slot fed by a graph input: its values are not in the file."""
        if kind not in PARAM_KINDS or name not in self.view.graph_inputs:
            return ()
        shape = self.const_shape(name)
        elements = 1
        for dim in shape or ():
            elements *= dim
        count = elements if shape is not None else 0
        size = f"{count:,} elements" if shape is not None else "a size set by dynamic dims"
        self.warnings.append(
            f"{role} {name!r} of node {node.name!r} is a graph input: its values are not stored "
            f"in the file ({size}, counted as unknown, not as zero)"
        )
        dtype = self.view.elem_types.get(name, 0)
        return (
            WeightRef(
                tensor=name,
                role=role,
                kind="unknown",
                shape=shape or (),
                dtype=dtypes.dtype_name(dtype),
                elements=count,
                nbytes=dtypes.nbytes(dtype, count),
                location="graph-input",
            ),
        )

    def side_refs(
        self, node: NodeView, positions: Iterable[int], kind: str
    ) -> tuple[WeightRef, ...]:
        refs: list[WeightRef] = []
        for position in positions:
            refs.extend(self.refs(node, position, kind, kind))
        return tuple(refs)

    def layer(
        self,
        node: NodeView,
        refs: Iterable[WeightRef],
        macs: Poly | None = None,
        notes: Iterable[str] = (),
    ) -> LayerTally:
        weights = _dedupe(refs)
        trainable = non_trainable = nbytes = 0
        for weight in weights:
            if weight.kind == "trainable":
                trainable += weight.elements
                nbytes += weight.nbytes
            elif weight.kind == "non_trainable":
                non_trainable += weight.elements
                nbytes += weight.nbytes
        return LayerTally(
            name=node.name,
            module=node.module,
            op_type=node.op_type,
            domain=node.domain,
            params=trainable + non_trainable,
            trainable=trainable,
            non_trainable=non_trainable,
            nbytes=nbytes,
            macs=macs if macs is not None else _NO_MACS,
            input_shapes=self._shapes(node.inputs),
            output_shapes=self._shapes(node.outputs),
            weights=weights,
            notes=tuple(notes),
        )

    def _shapes(self, names: tuple[str, ...]) -> tuple[Shape | None, ...]:
        """Each value's shape; None for an omitted one ("")."""
        get = self.view.shapes.get
        if "" in names:
            return tuple([get(name) if name else None for name in names])
        return tuple(map(get, names))

    def note_once(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def unhandled(self, node: NodeView, what: str) -> None:
        message = f"unhandled op with weights: {node.domain or 'ai.onnx'}::{node.op_type} ({what})"
        if self.strict:
            raise StrictModeError("", message)
        self.warnings.append(f"{node.name}: {message}")


def _ref(
    tensor: StoredTensor, role: str, kind: str, elements: int, via: tuple[str, ...]
) -> WeightRef:
    return WeightRef(
        tensor=tensor.name,
        role=role,
        kind=kind,
        shape=tensor.dims,
        dtype=tensor.dtype_name,
        elements=elements,
        nbytes=tensor.nbytes,
        location=_location(tensor),
        via=tuple(reversed(via)),
    )


_RANK = {"trainable": 0, "non_trainable": 1, "unknown": 2, "quantization": 3, "other": 4}
_NO_MACS = Poly()
"""A layer without MACs: one shared record (records are immutable)."""


def _dedupe(refs: Iterable[WeightRef]) -> tuple[WeightRef, ...]:
    """One ref per stored tensor and layer; the most significant kind wins."""
    if isinstance(refs, tuple | list) and len(refs) < 2:  # a single weight: most layers
        return tuple(refs)
    best: dict[str, WeightRef] = {}
    for ref in refs:
        held = best.get(ref.tensor)
        if held is None or _RANK.get(ref.kind, 9) < _RANK.get(held.kind, 9):
            best[ref.tensor] = ref
    return tuple(best.values())


def dims(shape: Shape | None) -> list[Dim]:
    """A shape's dims for a MAC formula; an unknown shape is one unknown factor."""
    return list(shape) if shape is not None else ["?"]


def product(values: Iterable[int]) -> int:
    total = 1
    for value in values:
        total *= value
    return total


def fallback(node: NodeView, ctx: Context) -> Iterator[LayerTally]:
    """Any op without a handler: count what looks like a weight and say so, never a silent
    zero. A weight is a constant matrix of any number type (int8 and 4-bit included: quantized
    weights), or a float vector; an op the catalogue lists as weight-free has none."""
    key = (node.domain, node.op_type)
    if key in ops.WEIGHT_FREE:
        return
    if key in ops.ATTRIBUTE_MODELS:
        ctx.note_once(
            f"{node.domain}::{node.op_type} keeps its learned values in attributes, which are "
            "not counted as parameters"
        )
        return
    refs: list[WeightRef] = []
    for position, name in enumerate(node.inputs):
        if not name or not ctx.is_const(name):
            continue
        kind = side_kind(node, position)
        refs.extend(
            _weight_like(r) for r in ctx.refs(node, position, kind or "input", kind or "auto")
        )
    weights = [r for r in refs if r.kind == "trainable"]
    if weights:
        ctx.unhandled(node, ", ".join(w.tensor for w in weights))
        note = f"unhandled op with weights: {node.domain or 'ai.onnx'}::{node.op_type}"
        yield ctx.layer(node, refs, notes=(note,))


def _weight_like(ref: WeightRef) -> WeightRef:
    """A constant of rank >= 2 of any number type on a data input is a weight matrix."""
    numeric = ref.dtype not in ("bool", "string") and not ref.dtype.startswith("dtype")
    if ref.kind == "other" and ref.role == "input" and len(ref.shape) >= 2 and numeric:
        return replace(ref, kind="trainable")
    return ref
