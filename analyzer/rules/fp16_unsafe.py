"""ONX204 fp16-unsafe: float32 weights that a float16 conversion would overflow or flush."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, Payload, payload
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.weightuse import (
    layer_names,
    layers_text,
    parameter_tensors,
    tensor_finding,
    tensor_text,
)

CODE: Final = "ONX204"
UNDERFLOW_SHARE: Final = 0.10
"""A float32 tensor with at least this share of its values below float16's smallest normal.

Not 1%: real exports (PP-OCR, PP-Layout) hold a few tiny BatchNorm statistics in one tensor
after another, and float16 keeps them as subnormals; 1% flagged 111 tensors of one healthy
model. A tenth of a tensor losing its precision is worth keeping in float32."""
FP16_MAX: Final = 65_504


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class Fp16Unsafe(Payload):
    """How many of a float32 tensor's values float16 would make Inf, or subnormal or zero."""

    tensor: str
    layers: tuple[str, ...]
    dims: tuple[int, ...]
    elements: int
    overflow: int
    """Finite values with |w| > 65,504."""
    underflow: int
    """Non-zero values with |w| < 2**-14."""
    largest: float | None
    """The largest |w| among the finite values."""

    def subject(self) -> str:
        return self.tensor

    def summary(self) -> str:
        return f"{self.tensor!r}: {self.overflow:,} over, {self.underflow:,} under"

    def lines(self) -> tuple[tuple[str, str], ...]:
        share = self.underflow / self.elements if self.elements else 0.0
        largest = f" (largest |w| {self.largest:.6g})" if self.largest is not None else ""
        over = (
            ("overflow", f"{self.overflow:,} of {self.elements:,} values beyond float16's "
                         f"{FP16_MAX:,}{largest}: Inf in float16"),
        )  # fmt: skip
        under = (
            ("underflow", f"{self.underflow:,} of {self.elements:,} ({share:.1%}) non-zero "
                          "values below float16's smallest normal 2^-14: subnormal or zero in "
                          "float16"),
        )  # fmt: skip
        return (
            ("tensor", f"{tensor_text(self.tensor, 'float', self.dims)} in "
                       f"{layers_text(self.layers)}"),
            *(over if self.overflow else ()),
            *(under if self.underflow else ()),
            ("fix", "keep this tensor (its layers) in float32 when converting (onnxconverter-"
                    "common float16: node_block_list), or use bfloat16, float32's range"),
        )  # fmt: skip


def check(ctx: RuleContext) -> Iterator[Finding]:
    for t, mine in parameter_tensors(ctx):
        if t.dtype != "float" or not t.elements:
            continue
        if not t.fp16_overflow and t.fp16_underflow < UNDERFLOW_SHARE * t.elements:
            continue
        ends = [abs(v) for v in (t.minimum, t.maximum) if v is not None]
        layers = layer_names(mine)
        detail = Fp16Unsafe(
            tensor=t.name,
            layers=layers,
            dims=t.dims,
            elements=t.elements,
            overflow=t.fp16_overflow,
            underflow=t.fp16_underflow,
            largest=max(ends) if ends else None,
        )
        share = t.fp16_underflow / t.elements
        yield tensor_finding(
            ctx,
            FP16_UNSAFE,
            layers=layers,
            message=(
                f"float32 weight {t.name!r} ({layers_text(layers)}): {t.fp16_overflow:,} values "
                f"beyond float16's {FP16_MAX:,} and {t.fp16_underflow:,} ({share:.1%}) below "
                "its smallest normal: converting it to float16 would overflow or flush them"
            ),
            detail=detail,
        )


FP16_UNSAFE: Final = add_rule(
    Rule(
        code=CODE,
        name="fp16-unsafe",
        summary="float32 weights beyond float16's range or precision (--inspect-weights).",
        what=(
            "With --inspect-weights, flags a float32 parameter tensor with any value beyond "
            f"float16's largest, |w| > {FP16_MAX:,}, or with {UNDERFLOW_SHARE:.0%} or more of "
            "its values non-zero and below float16's smallest normal, 2^-14 (about 6.1e-5)."
        ),
        why=(
            "Halving a model's size with a float16 conversion is routine before deployment. "
            "A weight beyond 65,504 becomes Inf (then NaN downstream); many tiny weights "
            "become subnormal or zero, and the layer's output drifts. The converted model "
            "runs and is wrong."
        ),
        example="norm.weight float [768]: 2 values of 1.2e5   # Inf in float16",
        instead=(
            "Keep the flagged layers in float32 (a mixed-precision conversion's block list), "
            "or convert to bfloat16, which has float32's range."
        ),
        check=check,
        reads_weights=True,
    )
)
