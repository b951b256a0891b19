"""ONX201 non-finite-weights: NaN or Inf values in a parameter tensor (--inspect-weights)."""

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

CODE: Final = "ONX201"


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class NonFiniteWeights(TensorPayload):
    """The tensor, the layers that use it, and how many of its values are NaN or Inf."""

    nans: int
    infs: int

    def summary(self) -> str:
        return f"{self.tensor!r}: {self.nans:,} NaN, {self.infs:,} Inf"

    def lines(self) -> tuple[tuple[str, str], ...]:
        return (
            self.tensor_line(),
            ("values", f"{self.nans:,} NaN and {self.infs:,} Inf of {self.elements:,}: every "
                       "output they reach is NaN or Inf"),
            ("fix", "export again from a checkpoint saved before training diverged (or the "
                    "right one); check the conversion that wrote this tensor"),
        )  # fmt: skip


def check(ctx: RuleContext) -> Iterator[Finding]:
    for t, mine in parameter_tensors(ctx):
        if not (t.nans or t.infs):
            continue
        layers = layer_names(mine)
        detail = NonFiniteWeights(
            tensor=t.name,
            layers=layers,
            dtype=t.dtype,
            dims=t.dims,
            elements=t.elements,
            nans=t.nans,
            infs=t.infs,
        )
        yield tensor_finding(
            ctx,
            NON_FINITE,
            layers=layers,
            message=(
                f"weight {t.name!r} ({layers_text(layers)}) holds {t.nans:,} NaN and "
                f"{t.infs:,} Inf values of {t.elements:,}: the model's outputs will be NaN"
            ),
            detail=detail,
        )


NON_FINITE: Final = add_rule(
    Rule(
        code=CODE,
        name="non-finite-weights",
        summary="A parameter tensor holds NaN or Inf values (--inspect-weights).",
        what=(
            "With --inspect-weights, flags every parameter tensor (a weight, bias or "
            "normalisation parameter a layer uses) holding a NaN or an infinite value, and names "
            "the tensor, its layers and the counts. Without --inspect-weights the weights are "
            "not read and the rule reports nothing."
        ),
        why=(
            "One NaN in a weight turns every activation it reaches into NaN: the model loads "
            "and runs, and answers garbage. It is the mark of a diverged training run or a "
            "broken conversion, and it deploys silently. `--fail-on ONX201` stops it in CI."
        ),
        example="fc.weight float [512, 256]: 3 NaN   # saved after the loss went to NaN",
        instead="Export from the last good checkpoint; every weight finite.",
        check=check,
        reads_weights=True,
        severity="error",
    )
)
