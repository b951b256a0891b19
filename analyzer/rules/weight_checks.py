"""The weight checks ONX201-ONX205 as pure functions of `--inspect-weights` statistics.

Each check takes the per-tensor TensorStats and how layers use each tensor (`WeightUse`), and
returns typed results; nothing here reads the file. They are not `Rule`s yet: the Finding
record is being redesigned, so `as_issue` flattens a result into a `WeightIssue` for the
report until each check is ported to a rule module of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from analyzer.core.results import LayerTally
from analyzer.core.tensorstats import TensorStats, WeightIssue
from analyzer.view.model import NodeView

PARAMETER_KINDS = frozenset({"trainable", "non_trainable"})
NOT_DEAD_ROLES = ("bias", "mean", "var", "beta", "zero", "offset")
"""Roles an all-zero tensor is normal for (a fresh bias, BatchNorm's running mean)."""
UNDERFLOW_SHARE = 0.01
"""ONX204: a float32 tensor with at least this share below float16's smallest normal."""
SPARSE_SHARE = 0.5
SPARSE_MIN_ELEMENTS = 10_000
DUPLICATE_MIN_BYTES = 1024
"""ONX203 ignores smaller copies (shape constants repeat in every export)."""


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


def _parameter(uses: Sequence[WeightUse]) -> bool:
    return any(use.kind in PARAMETER_KINDS for use in uses)


def _names(uses: Sequence[WeightUse]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(use.layer for use in uses))


@dataclass(frozen=True, slots=True)
class NonFinite:
    """ONX201: NaN or Inf values in a parameter tensor."""

    tensor: str
    layers: tuple[str, ...]
    nans: int
    infs: int


@dataclass(frozen=True, slots=True)
class DeadWeights:
    """ONX202: an all-zero parameter tensor, or output channels whose weights are all zero."""

    tensor: str
    layers: tuple[str, ...]
    all_zero: bool
    zero_channels: int
    channels: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    """ONX203: a stored tensor that repeats another (as is, or transposed)."""

    tensor: str
    layers: tuple[str, ...]
    original: str
    transposed: bool
    saved_bytes: int


@dataclass(frozen=True, slots=True)
class Fp16Unsafe:
    """ONX204: float32 values float16 would turn into Inf, or flush to subnormal/zero."""

    tensor: str
    layers: tuple[str, ...]
    overflow: int
    underflow: int
    elements: int


@dataclass(frozen=True, slots=True)
class Sparse:
    """ONX205: a large weight with at least half of its values zero."""

    tensor: str
    layers: tuple[str, ...]
    zeros: int
    elements: int


Result = NonFinite | DeadWeights | Duplicate | Fp16Unsafe | Sparse
Uses = Mapping[str, Sequence[WeightUse]]


def non_finite(tensors: Iterable[TensorStats], uses: Uses) -> Iterator[NonFinite]:
    for t in tensors:
        if (t.nans or t.infs) and _parameter(uses.get(t.name, ())):
            yield NonFinite(t.name, _names(uses[t.name]), t.nans, t.infs)


def _zero_channels(t: TensorStats, axes: set[int | None]) -> tuple[int, int]:
    """(all-zero output channels, channels) along the one known axis, else (0, 0)."""
    if len(axes) != 1 or len(t.dims) < 2:
        return 0, 0
    axis = axes.pop()
    if axis == 0:
        return t.zero_rows, t.dims[0]
    if axis == -1:
        return t.zero_columns, t.dims[-1]
    return 0, 0


def dead_weights(tensors: Iterable[TensorStats], uses: Uses) -> Iterator[DeadWeights]:
    for t in tensors:
        mine = [u for u in uses.get(t.name, ()) if u.kind in PARAMETER_KINDS]
        if not mine or not t.elements or t.nans or t.infs:
            continue
        if all(any(word in u.role for word in NOT_DEAD_ROLES) for u in mine):
            continue
        if t.zeros == t.elements:
            yield DeadWeights(t.name, _names(mine), True, 0, 0)
            continue
        zero, channels = _zero_channels(t, {u.axis for u in mine})
        if zero:
            yield DeadWeights(t.name, _names(mine), False, zero, channels)


def duplicates(tensors: Iterable[TensorStats], uses: Uses) -> Iterator[Duplicate]:
    for t in tensors:
        original = t.duplicate_of or t.transpose_of
        if original and t.nbytes >= DUPLICATE_MIN_BYTES and _parameter(uses.get(t.name, ())):
            layers = _names(uses[t.name])
            yield Duplicate(t.name, layers, original, bool(t.transpose_of), t.nbytes)


def fp16_unsafe(tensors: Iterable[TensorStats], uses: Uses) -> Iterator[Fp16Unsafe]:
    for t in tensors:
        if t.dtype != "float" or not t.elements or not _parameter(uses.get(t.name, ())):
            continue
        if t.fp16_overflow or t.fp16_underflow >= UNDERFLOW_SHARE * t.elements:
            layers = _names(uses[t.name])
            yield Fp16Unsafe(t.name, layers, t.fp16_overflow, t.fp16_underflow, t.elements)


def sparse(tensors: Iterable[TensorStats], uses: Uses) -> Iterator[Sparse]:
    for t in tensors:
        mine = [u for u in uses.get(t.name, ()) if u.kind in PARAMETER_KINDS]
        if not mine or t.elements < SPARSE_MIN_ELEMENTS or t.zeros == t.elements:
            continue
        if t.zeros >= SPARSE_SHARE * t.elements:
            yield Sparse(t.name, _names(mine), t.zeros, t.elements)


CHECKS = (non_finite, dead_weights, duplicates, fp16_unsafe, sparse)


def check_all(tensors: Sequence[TensorStats], uses: Uses) -> list[Result]:
    """Every check's results, check by check in code order."""
    return [result for check in CHECKS for result in check(tensors, uses)]


def _layers(layers: tuple[str, ...]) -> str:
    return f" (layer {', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''})" if layers else ""


def as_issue(result: Result) -> WeightIssue:
    """The flat record the report carries until the checks are rules."""
    where = f"{result.tensor!r}{_layers(result.layers)}"
    if isinstance(result, NonFinite):
        text = f"{where} holds {result.nans:,} NaN and {result.infs:,} Inf values"
        return WeightIssue(code="ONX201", rule="non-finite-weights", severity="error",
                           tensor=result.tensor, layers=result.layers, message=text)  # fmt: skip
    if isinstance(result, DeadWeights):
        text = (
            f"{where} is all zeros"
            if result.all_zero
            else f"{where}: {result.zero_channels:,} of {result.channels:,} output channels "
            "have all-zero weights"
        )
        return WeightIssue(code="ONX202", rule="dead-layer", severity="warning",
                           tensor=result.tensor, layers=result.layers, message=text)  # fmt: skip
    if isinstance(result, Duplicate):
        how = "the transpose of" if result.transposed else "a byte-identical copy of"
        text = f"{where} is {how} {result.original!r}: {result.saved_bytes:,} bytes to save"
        return WeightIssue(code="ONX203", rule="duplicate-weights", severity="warning",
                           tensor=result.tensor, layers=result.layers, message=text)  # fmt: skip
    if isinstance(result, Fp16Unsafe):
        share = result.underflow / result.elements
        text = (
            f"{where}: {result.overflow:,} values beyond float16's 65,504, "
            f"{result.underflow:,} ({share:.1%}) below its smallest normal"
        )
        return WeightIssue(code="ONX204", rule="fp16-unsafe", severity="warning",
                           tensor=result.tensor, layers=result.layers, message=text)  # fmt: skip
    share = result.zeros / result.elements
    text = f"{where}: {result.zeros:,} of {result.elements:,} weights ({share:.0%}) are zero"
    return WeightIssue(code="ONX205", rule="sparse-weights", severity="info",
                       tensor=result.tensor, layers=result.layers, message=text)  # fmt: skip


__all__ = [
    "CHECKS",
    "DeadWeights",
    "Duplicate",
    "Fp16Unsafe",
    "NonFinite",
    "Sparse",
    "WeightUse",
    "as_issue",
    "check_all",
    "weight_uses",
]
