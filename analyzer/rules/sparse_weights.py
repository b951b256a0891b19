"""ONX205 sparse-weights: a large weight with half or more of its values zero."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, payload
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.weightuse import (
    TensorPayload,
    layer_names,
    layers_text,
    parameter_tensors,
    tensor_finding,
)

CODE: Final = "ONX205"
SPARSE_SHARE: Final = 0.5
MIN_ELEMENTS: Final = 10_000


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class SparseWeights(TensorPayload):
    """How many of a large weight's values are zero."""

    zeros: int
    share: float

    def summary(self) -> str:
        return f"{self.tensor!r} {self.share:.0%} zeros"

    def lines(self) -> tuple[tuple[str, str], ...]:
        return (
            self.tensor_line(),
            ("zeros", f"{self.zeros:,} of {self.elements:,} weights ({self.share:.1%}) are zero"),
            ("candidate", f"a sparse or pruned kernel: {self.elements - self.zeros:,} non-zero "
                          "values to store and multiply, if the runtime has a sparse kernel"),
        )  # fmt: skip


def check(ctx: RuleContext) -> Iterator[Finding]:
    for t, mine in parameter_tensors(ctx):
        if t.elements < MIN_ELEMENTS or t.zeros == t.elements:
            continue  # an all-zero tensor is ONX202's
        if t.zeros < SPARSE_SHARE * t.elements:
            continue
        layers = layer_names(mine)
        share = t.zeros / t.elements
        detail = SparseWeights(
            tensor=t.name,
            layers=layers,
            dtype=t.dtype,
            dims=t.dims,
            elements=t.elements,
            zeros=t.zeros,
            share=round(share, 4),
        )
        yield tensor_finding(
            ctx,
            SPARSE_WEIGHTS,
            layers=layers,
            message=(
                f"weight {t.name!r} ({layers_text(layers)}): {t.zeros:,} of {t.elements:,} "
                f"values ({share:.0%}) are zero: a candidate for a sparse kernel or pruning"
            ),
            detail=detail,
        )


SPARSE_WEIGHTS: Final = add_rule(
    Rule(
        code=CODE,
        name="sparse-weights",
        summary="A large weight is half zeros or more (--inspect-weights).",
        what=(
            f"With --inspect-weights, flags a parameter tensor of {MIN_ELEMENTS:,} values or "
            f"more with at least {SPARSE_SHARE:.0%} of them zero (an all-zero one is ONX202's)."
        ),
        why=(
            "Stored dense, the zeros still take their bytes and their multiplications. A model "
            "that was pruned but exported dense gives nothing of the pruning back unless the "
            "weights are stored sparse or the runtime has a sparse kernel."
        ),
        example="fc1.weight float [200, 100]: 18,000 of 20,000 values zero (90%)",
        instead=(
            "A sparse format or kernel for the layer (or structured pruning that removes whole "
            "channels, which any runtime speeds up)."
        ),
        check=check,
        reads_weights=True,
        severity="note",
    )
)
