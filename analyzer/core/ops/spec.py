"""One op's entry in the catalogue: which inputs are weights, which only quantize or shape it,
which input a dense or conv layer multiplies, and which visitor counts it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

MS: Final = "com.microsoft"
NCHWC: Final = "com.microsoft.nchwc"
NHWC: Final = "com.ms.internal.nhwc"

GENERIC: Final = "generic"
"""Counted by the catalogue's generic visitor (count/visitors/contrib.py) from this entry."""
DENSE: Final = "dense"
"""Counted by the dense visitor (count/visitors/linear.py) from this entry's positions."""
CONV: Final = "conv"
"""Counted by the conv visitor (count/visitors/conv.py) from this entry's positions."""
OWN: Final = "own"
"""A visitor of its own (MACs or roles the entry cannot say); tests/test_op_catalogue.py
checks that it reads exactly the inputs described here."""
LAYOUT: Final = "layout"
"""onnxruntime's layout form of a standard op: the standard op's visitor."""
NONE: Final = "none"
"""Weight-free: no layer, no warning; `other`/`quant` still say what a constant feeding it is."""
VISITORS: Final = frozenset({GENERIC, DENSE, CONV, OWN, LAYOUT, NONE})


@dataclass(frozen=True, slots=True)
class OpSpec:
    """Inputs of one op by position. Inputs not named are activations (data)."""

    family: str
    """dense, conv (weight [F, C/group, k...]), conv-nhwc, conv-transpose, deformable-conv,
    recurrent, norm, embedding, attention, elementwise, activation, quantize, shape, pool,
    reduce, resample, ..."""
    weights: Mapping[int, str] = field(default_factory=dict)
    """position -> role of the inputs that are parameters (trainable unless in `statistics`)."""
    quant: frozenset[int] = frozenset()
    """Scales and zero points: quantization constants."""
    other: frozenset[int] = frozenset()
    """Shapes, masks, rotary caches, initial states: other constants."""
    statistics: frozenset[int] = frozenset()
    """Weights that are not trained (BatchNormalization's running mean and variance)."""
    packed_bits: str = ""
    """Attribute naming the bit width of weights packed into bytes (4-bit in uint8)."""
    data: int | None = None
    """The activation a dense or conv layer multiplies by its `weight` input."""
    transpose: str = ""
    """Attribute that, when set, stores the dense weight transposed ([N, K], transB)."""
    size_attrs: tuple[str, str] = ("", "")
    """Attributes giving a packed dense weight's logical [K, N] (MatMulNBits' K and N)."""
    bias_add: bool = False
    """Its bias may come as the next node, an Add of a constant (torch's MatMul + Add,
    paddle2onnx's bias-less Conv + Add): that Add's constant is this layer's bias."""
    visitor: str = GENERIC
    """Which visitor counts it: GENERIC, DENSE, CONV, OWN, LAYOUT or NONE."""

    @property
    def weight(self) -> int | None:
        """The main weight input (role "weight"), or None."""
        return next((p for p, role in sorted(self.weights.items()) if role == "weight"), None)

    @property
    def bias(self) -> int | None:
        """The bias input (role "bias"), or None."""
        return next((p for p, role in sorted(self.weights.items()) if role == "bias"), None)


def spec(
    family: str,
    weights: str = "",
    quant: str = "",
    other: str = "",
    *,
    statistics: str = "",
    packed_bits: str = "",
    data: int | None = None,
    transpose: str = "",
    size_attrs: tuple[str, str] = ("", ""),
    bias_add: bool = False,
    visitor: str = GENERIC,
) -> OpSpec:
    """`weights` as "1:weight 2:bias"; `quant`, `other` and `statistics` as "3,4,6-8"."""
    pairs = (item.split(":") for item in weights.split())
    return OpSpec(
        family,
        {int(p): r for p, r in pairs},
        positions(quant),
        positions(other),
        positions(statistics),
        packed_bits,
        data,
        transpose,
        size_attrs,
        bias_add,
        visitor,
    )


def positions(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


def names(domain: str, text: str) -> list[tuple[str, str]]:
    return [(domain, op) for op in text.split()]
