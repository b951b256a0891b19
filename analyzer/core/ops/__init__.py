"""The op catalogue: for every op onnx-audit knows, by (domain, op), which inputs are weights,
biases, quantization parameters or other constants, which input a dense or conv layer
multiplies, the attribute that transposes its weight, its family, and which visitor counts it.

One catalogue, so that a new op is one decision in one place, and every stage reads it: the
visitors (count), the constant walk (`count.weights.side_kind`), the shape-inference stand-ins
(view), the rules' dense and conv layers, and the candidate writer (runtime): every per-op
table of inputs is derived from it. Lists that say how an activation flows through an op
(rules/trace, count/notes) or what shape an op outputs (view/standins) are not about its
inputs and stay beside their walk. `tests/test_op_catalogue.py` fails for any op of the installed
onnx, or any op onnxruntime registers, that is not decided here, and for any visitor that
reads other inputs than its entry describes.
"""

from __future__ import annotations

from collections.abc import Mapping

from analyzer.core.ops.free import ATTRIBUTE_MODELS, WEIGHT_FREE_NAMES
from analyzer.core.ops.generic import GENERIC_OPS
from analyzer.core.ops.layers import LAYERS
from analyzer.core.ops.spec import (
    CONV,
    DENSE,
    GENERIC,
    LAYOUT,
    MS,
    NCHWC,
    NHWC,
    NONE,
    OWN,
    VISITORS,
    OpSpec,
)

_WEIGHT_FREE_SPEC = OpSpec("data", visitor=NONE)

CATALOGUE: Mapping[tuple[str, str], OpSpec] = {
    **dict.fromkeys(WEIGHT_FREE_NAMES, _WEIGHT_FREE_SPEC),
    **LAYERS,
    **GENERIC_OPS,
}
"""Every op decided, by (domain, op); the three sources are disjoint (tested)."""

WEIGHT_FREE: frozenset[tuple[str, str]] = frozenset(
    key for key, entry in CATALOGUE.items() if entry.visitor == NONE
)
"""Ops whose inputs are all data, indices, shapes, scales or settings: a constant feeding one
is never a parameter, and no warning is due. Control flow (If, Scan, BeamSearch) holds its
weights in subgraphs, which are read as graphs of their own."""

DENSE_LAYERS: Mapping[tuple[str, str], OpSpec] = {
    key: entry
    for key, entry in CATALOGUE.items()
    if entry.family == "dense" and entry.data is not None and entry.weight is not None
}
"""Dense layers: `data` times one [K, N] `weight` (ONX101, ONX103, ONX104, the stand-ins)."""

CONV_LAYERS: Mapping[tuple[str, str], OpSpec] = {
    key: entry
    for key, entry in CATALOGUE.items()
    if entry.family == "conv" and entry.visitor == CONV and entry.weight is not None
}
"""Convolutions with an [F, C/group, k...] `weight`, float or quantized (ONX102). Not the
layout forms (nchwc pads channels to blocks), channels-last weights (family conv-nhwc),
transposed or deformable convs."""


def spec(domain: str, op_type: str) -> OpSpec | None:
    return CATALOGUE.get((domain, op_type))


def weight_free(domain: str, op_type: str) -> bool:
    return (domain, op_type) in WEIGHT_FREE


def counted_by(visitor: str) -> tuple[tuple[str, str], ...]:
    """The ops whose entry names this visitor kind (GENERIC, DENSE, CONV, ...), sorted."""
    return tuple(sorted(key for key, entry in CATALOGUE.items() if entry.visitor == visitor))


__all__ = [
    "ATTRIBUTE_MODELS",
    "CATALOGUE",
    "CONV",
    "CONV_LAYERS",
    "DENSE",
    "DENSE_LAYERS",
    "GENERIC",
    "LAYOUT",
    "MS",
    "NCHWC",
    "NHWC",
    "NONE",
    "OWN",
    "VISITORS",
    "WEIGHT_FREE",
    "OpSpec",
    "counted_by",
    "spec",
    "weight_free",
]
