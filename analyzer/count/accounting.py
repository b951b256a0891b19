"""Every stored element lands once: in a layer's parameters, or in the constants apart.

Layers claim tensors; a tensor claimed by several layers is shared (tied weights) and
counted once; a tensor nobody claims as a parameter is a quantization or other constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from analyzer.core.results import LayerTally, Totals
from analyzer.core.symbolic import Poly
from analyzer.count.weights import scales_dynamic_quantization, side_kind
from analyzer.view.model import ModelView

QUANTIZED_OPS = frozenset({"QGemm", "QAttention", "QuantizeLinear", "DequantizeLinear"})

_RANK = {"trainable": 0, "non_trainable": 1, "quantization": 2, "other": 3}


@dataclass(slots=True)
class _Claims:
    """What the layers claim: each stored tensor's kind (its highest-ranked claim) and logical
    element count, the layers using it as a parameter, and unknown weights' sizes."""

    kind: dict[str, str] = field(default_factory=dict)
    logical: dict[str, int] = field(default_factory=dict)
    users: dict[str, set[str]] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)


def account(view: ModelView, layers: Sequence[LayerTally]) -> tuple[tuple[LayerTally, ...], Totals]:
    """Mark shared weights on each layer and sum the model's totals over distinct tensors."""
    claims = _claims(view, layers)
    kind = claims.kind
    for name, tensor in view.stored.items():
        if tensor.key not in kind and _quantizes(view, name):
            kind[tensor.key] = "quantization"
    shared = {key for key, names in claims.users.items() if len(names) > 1}
    marked = tuple(_mark(view, layer, shared) for layer in layers) if shared else tuple(layers)
    sums = _sums(view, kind, claims.logical)
    macs = Poly.total(layer.macs for layer in marked)
    totals = Totals(**sums, unknown_weights=sum(claims.unknown.values()), macs=macs)
    return marked, totals


def _claims(view: ModelView, layers: Sequence[LayerTally]) -> _Claims:
    """Every layer's weight references, gathered per stored tensor."""
    claims = _Claims()
    kind, logical, users = claims.kind, claims.logical, claims.users
    for layer in layers:
        for ref in layer.weights:
            if ref.kind == "unknown":
                claims.unknown[ref.tensor] = ref.elements
                continue
            stored = view.stored.get(ref.tensor)
            if stored is None:
                continue
            held = kind.get(stored.key)
            if held is None or _RANK[ref.kind] < _RANK[held]:
                kind[stored.key] = ref.kind
                logical[stored.key] = ref.elements
            if ref.kind in ("trainable", "non_trainable"):
                users.setdefault(stored.key, set()).add(layer.name)
    return claims


def _sums(view: ModelView, kind: dict[str, str], logical: dict[str, int]) -> dict[str, int]:
    """The totals' counts over every distinct stored tensor, by its final kind."""
    sums = dict.fromkeys(
        [
            "params",
            "trainable",
            "non_trainable",
            "param_bytes",
            "quantization_constants",
            "quantization_bytes",
            "other_constants",
            "other_bytes",
            "stored_tensors",
            "stored_elements",
            "stored_bytes",
        ],
        0,
    )
    for tensor in view.all_stored:
        final = kind.get(tensor.key, "other")
        sums["stored_tensors"] += 1
        sums["stored_elements"] += tensor.elements
        sums["stored_bytes"] += tensor.nbytes
        if final in ("trainable", "non_trainable"):
            count = logical.get(tensor.key, tensor.elements)
            sums["params"] += count
            sums[final] += count
            sums["param_bytes"] += tensor.nbytes
        elif final == "quantization":
            sums["quantization_constants"] += tensor.elements
            sums["quantization_bytes"] += tensor.nbytes
        else:
            sums["other_constants"] += tensor.elements
            sums["other_bytes"] += tensor.nbytes
    return sums


def _quantizes(view: ModelView, name: str) -> bool:
    """An unclaimed constant read as a scale or zero point (activation quantization)."""
    for index in view.consumers.get(name, ()):
        node = view.nodes[index]
        if node.op_type.startswith("QLinear") or node.op_type in QUANTIZED_OPS:
            return True
        if scales_dynamic_quantization(view, node):
            return True
        if any(
            side_kind(node, p) == "quantization" for p, n in enumerate(node.inputs) if n == name
        ):
            return True
    return False


def _mark(view: ModelView, layer: LayerTally, shared: set[str]) -> LayerTally:
    if not any(
        (s := view.stored.get(w.tensor)) is not None and s.key in shared for w in layer.weights
    ):
        return layer
    weights = tuple(
        replace(w, shared=True)
        if (s := view.stored.get(w.tensor)) is not None and s.key in shared
        else w
        for w in layer.weights
    )
    return replace(layer, weights=weights)
