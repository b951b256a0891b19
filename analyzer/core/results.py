"""The analysis results: frozen records that reporters render and JSON round-trips."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from operator import attrgetter
from typing import Any, TypeVar

from analyzer.core.records import quick_init, row_builder
from analyzer.core.symbolic import Dim, Poly
from analyzer.core.tensorstats import TensorStats, UnreadTensor

FORMAT_VERSION = 2
"""Version of the JSON report schema (docs/json-report.md); bumped on incompatible change."""

Shape = tuple[Dim, ...]


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class WeightRef:
    """One stored tensor as one layer uses it."""

    tensor: str
    role: str
    kind: str
    """trainable | non_trainable | quantization | other"""
    shape: tuple[int, ...]
    dtype: str
    elements: int
    """Logical elements: for packed formats (MatMulNBits) the unpacked K x N."""
    nbytes: int
    location: str
    shared: bool = False
    """True when other layers use the same stored tensor: totals count it once."""
    via: tuple[str, ...] = ()
    """Ops between the stored tensor and the layer (DequantizeLinear, Transpose, ...)."""


class NoteKind(Enum):
    """Layer notes many layers share, summarised in one line each (`count/notes.py`)."""

    FOLDED = "folded"
    """Exporter-computed weights: BatchNormalization (or weight_norm) likely folded in."""
    IDENTITY = "identity"
    """A normalization's constant scale of ones and bias of zeros (other constants)."""


class LayerNote(str):
    """A layer note of a known kind: the text the report shows, with its kind as a value, so
    the summary never recognises a note by its words. It is a `str` everywhere else (JSON, the
    reporters, equality); a note read back from JSON is a plain `str`."""

    __slots__ = ("kind",)
    kind: NoteKind

    def __new__(cls, text: str, kind: NoteKind) -> LayerNote:
        note = super().__new__(cls, text)
        note.kind = kind
        return note

    def __reduce__(self) -> tuple[type[LayerNote], tuple[str, NoteKind]]:
        return LayerNote, (str(self), self.kind)


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class LayerTally:
    """One parameter-bearing (or MAC-bearing) node."""

    name: str
    op_type: str
    domain: str = ""
    params: int = 0
    trainable: int = 0
    non_trainable: int = 0
    nbytes: int = 0
    macs: Poly = field(default_factory=Poly)
    input_shapes: tuple[Shape | None, ...] = ()
    output_shapes: tuple[Shape | None, ...] = ()
    weights: tuple[WeightRef, ...] = ()
    notes: tuple[str, ...] = ()
    module: str = ""
    """The source module's path when the exporter records it apart from the node name."""

    @property
    def shared(self) -> bool:
        return any(w.shared for w in self.weights if w.kind in ("trainable", "non_trainable"))

    @property
    def qualified_op(self) -> str:
        return f"{self.domain}::{self.op_type}" if self.domain else self.op_type


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """Model-wide sums; each distinct stored tensor is counted once. Sums across a batch."""

    params: int = 0
    trainable: int = 0
    non_trainable: int = 0
    param_bytes: int = 0
    quantization_constants: int = 0
    quantization_bytes: int = 0
    other_constants: int = 0
    other_bytes: int = 0
    stored_tensors: int = 0
    stored_elements: int = 0
    """Elements as stored: packed weights count their bytes' elements, not K x N."""
    stored_bytes: int = 0
    unknown_weights: int = 0
    """Elements of weights fed as graph inputs: their values are not in the file."""
    macs: Poly = field(default_factory=Poly)

    def __add__(self, other: Totals) -> Totals:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return Totals(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pricing:
    """Measured cost of a finding's two sides in onnxruntime (filled by verify / --verify)."""

    batch: int
    dense_ms: float
    conv_ms: float
    dense_ms_batch: float
    conv_ms_batch: float
    machine: str
    runtime: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    """One side of a finding's trade (as is, or the suggested structure), for tables and charts."""

    label: str
    weights: int
    bias: int
    macs: Poly


class Payload:
    """What one rule knows about one finding, beyond the common core: a frozen dataclass per
    rule, registered by code with `payload(code)`, so JSON reads it back typed. Reporters print
    only what these methods give them, so they never need to know a rule."""

    __slots__ = ()

    def summary(self) -> str:
        """A few words after the op type in a finding's heading (`100 -> 32`)."""
        return ""

    def lines(self) -> tuple[tuple[str, str], ...]:
        """(label, text) detail lines for table, markdown and HTML, in reading order."""
        return ()

    def sides(self) -> tuple[Side, ...]:
        """The trade: the layer as is first, then the suggested structure."""
        return ()

    def subject(self) -> str:
        """What on the node the finding is about, when a rule can flag one node more than once
        (a weight rule: the tensor); `diff` tells findings apart by (code, node, subject)."""
        return ""

    def properties(self) -> dict[str, object]:
        """SARIF result properties (camelCase, JSON-ready values): by default every field, tuples
        as lists, non-finite floats as null, symbolic counts by `to_json`; a rule overrides it
        only to rename or leave out."""
        out: dict[str, object] = {}
        # every payload is a dataclass (payload() registers only those)
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, float):
                value = finite(value)
            elif isinstance(value, Poly):
                value = value.to_json()
            head, *rest = item.name.split("_")
            out[head + "".join(word.capitalize() for word in rest)] = value
        return out


def finite(value: float) -> float | None:
    """A float for JSON, which has no NaN or infinity: those become null."""
    return value if math.isfinite(value) else None


PAYLOADS: dict[str, type[Payload]] = {}
P = TypeVar("P", bound=type[Payload])
"""Rule code -> its payload class; filled as the rule modules are imported."""


def payload(code: str) -> Callable[[P], P]:
    """Class decorator: register a rule's payload class under its code (one per code)."""

    def register(cls: P) -> P:
        if not is_dataclass(cls):
            raise TypeError(f"payload for {code} must be a dataclass (apply @payload above it)")
        if PAYLOADS.get(code, cls) is not cls:
            raise ValueError(f"payload for {code} registered twice")
        PAYLOADS[code] = cls
        return cls

    return register


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One rule's verdict on one node: a common core every reporter reads, and the rule's own
    typed `detail`.

    `params_saved` counts weights (biases are listed apart in the detail); `macs_delta` is the
    change in MACs the suggestion brings (negative when it also saves computation), symbolic
    when a dim is dynamic.
    """

    code: str
    rule: str
    node: str
    op_type: str
    message: str
    confidence: str
    """high | medium | low"""
    severity: str = "warning"
    """error | warning | note (SARIF levels)"""
    params_saved: int = 0
    macs_delta: Poly = field(default_factory=Poly)
    detail: Payload | None = None
    pricing: Pricing | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """A policy the model breaks (a budget, or a rule named in --fail-on): exit code 1."""

    policy: str
    """e.g. max-params, max-weight-bytes, max-layer-params, fail-on, max-growth"""
    limit: str
    measured: str
    message: str
    node: str = ""
    code: str = ""
    """Rule code for fail-on violations; empty for budgets."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputCheck:
    name: str
    shape: tuple[int, ...]
    dtype: str
    expected: Shape | None
    matches: bool
    nan: int
    inf: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    """Result of one onnxruntime run on seeded random inputs."""

    ok: bool
    error: str
    runtime: str
    outputs: tuple[OutputCheck, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    ir_version: int
    producer: str
    opsets: tuple[tuple[str, int], ...]
    graph_name: str
    nodes: int
    inputs: tuple[tuple[str, Shape | None], ...] = ()
    outputs: tuple[tuple[str, Shape | None], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything onnx-audit knows about one model."""

    path: str
    model: ModelInfo
    layers: tuple[LayerTally, ...]
    findings: tuple[Finding, ...]
    totals: Totals
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """What the exporter did that the counts reflect (folded BatchNorm, transposed copies)."""
    settings: tuple[tuple[str, str], ...] = ()
    violations: tuple[Violation, ...] = ()
    verification: Verification | None = None
    weights: tuple[TensorStats, ...] | None = None
    """Per stored tensor value statistics (--inspect-weights); None when not inspected."""
    unread_weights: tuple[UnreadTensor, ...] = ()
    """Stored tensors --inspect-weights could not read, and why."""
    format_version: int = FORMAT_VERSION

    def __reduce__(self) -> tuple[Callable[..., Report], tuple[Any, ...]]:
        """Pickled with its layers as plain rows: the sandboxed child hands a 50,000-layer
        Report to the parent in 0.4 s instead of 1.3 s (pickle rebuilds a frozen dataclass
        one attribute at a time through Python)."""
        rest = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        return _rebuild_report, (_pack_layers(self.layers), rest)


_LAYER_FIELDS = tuple(f.name for f in fields(LayerTally))
_WEIGHT_FIELDS = tuple(f.name for f in fields(WeightRef))
_MACS = _LAYER_FIELDS.index("macs")
_WEIGHTS = _LAYER_FIELDS.index("weights")
_layer_values = attrgetter(*_LAYER_FIELDS)
_weight_values = attrgetter(*_WEIGHT_FIELDS)
_build_layer = row_builder(LayerTally)
_build_weight = row_builder(WeightRef)


def _pack_layers(layers: tuple[LayerTally, ...]) -> list[list[Any]]:
    """Each layer as its field values in order; macs as its terms, weights as value tuples."""
    rows = []
    for layer in layers:
        row = list(_layer_values(layer))
        row[_MACS] = layer.macs.terms
        row[_WEIGHTS] = tuple(map(_weight_values, layer.weights))
        rows.append(row)
    return rows


def _unpack_layers(rows: list[list[Any]]) -> tuple[LayerTally, ...]:
    layers = []
    for row in rows:
        row[_MACS] = Poly(row[_MACS])
        row[_WEIGHTS] = tuple(map(_build_weight, row[_WEIGHTS]))
        layers.append(_build_layer(row))
    return tuple(layers)


def _rebuild_report(rows: list[list[Any]], rest: dict[str, Any]) -> Report:
    return Report(layers=_unpack_layers(rows), **rest)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerDelta:
    """One layer across two versions of a model."""

    status: str
    """same | changed | added | removed"""
    old_name: str
    new_name: str
    op_type: str
    old_params: int
    new_params: int
    matched_by: str = ""
    """name | position (k-th unmatched node of the same op) | "" for added/removed"""

    @property
    def delta(self) -> int:
        return self.new_params - self.old_params


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffReport:
    """`onnx-audit diff OLD NEW`: totals and per-layer deltas, new and fixed findings."""

    old: Report
    new: Report
    layers: tuple[LayerDelta, ...]
    new_findings: tuple[Finding, ...]
    fixed_findings: tuple[Finding, ...]
    violations: tuple[Violation, ...] = ()
    format_version: int = FORMAT_VERSION

    @property
    def growth(self) -> float | None:
        """Relative growth of total params; None when the old model had none."""
        before = self.old.totals.params
        return None if before == 0 else (self.new.totals.params - before) / before
