"""ONX202 dead-layer: an all-zero weight, or output channels whose weights are all zero."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, payload
from analyzer.core.tensorstats import TensorStats
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.weightuse import (
    TensorPayload,
    WeightUse,
    layer_names,
    layers_text,
    parameter_tensors,
    tensor_finding,
)

CODE: Final = "ONX202"
NOT_DEAD_ROLES: Final = ("bias", "mean", "var", "beta", "zero", "offset")
"""Roles an all-zero tensor is normal for (a fresh bias, BatchNorm's running mean)."""


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLayer(TensorPayload):
    """The tensor, and which of its weights are zero: all, or whole output channels."""

    all_zero: bool
    zero_channels: int
    """Output channels whose weights are all zero (0 when the whole tensor is)."""
    channels: int
    dead_weights: int
    """Weights in the all-zero channels (every weight when the whole tensor is zero)."""

    def summary(self) -> str:
        if self.all_zero:
            return f"{self.tensor!r} all zero"
        return f"{self.tensor!r}: {self.zero_channels:,} of {self.channels:,} channels zero"

    def lines(self) -> tuple[tuple[str, str], ...]:
        zeros = (
            f"all {self.elements:,} weights are zero: the layer outputs its bias alone"
            if self.all_zero
            else f"{self.zero_channels:,} of {self.channels:,} output channels have all-zero "
            f"weights ({self.dead_weights:,} weights): those outputs are constant"
        )
        return (
            self.tensor_line(),
            ("zeros", zeros),
            ("fix", "check that the checkpoint loaded into every layer (torch: "
                    "load_state_dict(strict=True)); channels that are dead by training can be "
                    f"pruned: {self.dead_weights:,} fewer weights"),
        )  # fmt: skip


def _zero_channels(t: TensorStats, uses: list[WeightUse]) -> tuple[int, int]:
    """(all-zero output channels, channels) along the one known axis, else (0, 0)."""
    axes = {use.axis for use in uses}
    if len(axes) != 1 or len(t.dims) < 2:
        return 0, 0
    axis = axes.pop()
    if axis == 0:
        return t.zero_rows, t.dims[0]
    if axis == -1:
        return t.zero_columns, t.dims[-1]
    return 0, 0


def check(ctx: RuleContext) -> Iterator[Finding]:
    for t, mine in parameter_tensors(ctx):
        if not t.elements or t.nans or t.infs:
            continue
        if all(any(word in use.role for word in NOT_DEAD_ROLES) for use in mine):
            continue
        all_zero = t.zeros == t.elements
        zero, channels = (0, 0) if all_zero else _zero_channels(t, mine)
        if not all_zero and not zero:
            continue
        dead = t.elements if all_zero else zero * (t.elements // channels)
        layers = layer_names(mine)
        detail = DeadLayer(
            tensor=t.name,
            layers=layers,
            dtype=t.dtype,
            dims=t.dims,
            elements=t.elements,
            all_zero=all_zero,
            zero_channels=zero,
            channels=channels,
            dead_weights=dead,
        )
        what = (
            "is all zeros"
            if all_zero
            else f"has {zero:,} of {channels:,} output channels with all-zero weights"
        )
        yield tensor_finding(
            ctx,
            DEAD_LAYER,
            layers=layers,
            message=f"weight {t.name!r} ({layers_text(layers)}) {what}: {dead:,} dead weights",
            detail=detail,
            params_saved=dead,
        )


DEAD_LAYER: Final = add_rule(
    Rule(
        code=CODE,
        name="dead-layer",
        summary="A weight is all zeros, or some output channels' weights are (--inspect-weights).",
        what=(
            "With --inspect-weights, flags a parameter tensor whose values are all zero, or a "
            "Conv, Gemm or MatMul weight with output channels (Conv: axis 0; MatMul: the last "
            "axis; Gemm: axis 0 with transB, else the last) whose weights are all zero, and "
            "counts them. Tensors that are zero by design (biases, BatchNorm's running mean, "
            "zero points) are left alone."
        ),
        why=(
            "A layer of zeros passes nothing on: most often a checkpoint that did not load into "
            "it (a renamed key, strict=False), sometimes channels that training killed. The "
            "first is a broken model; the second is weights and MACs to prune."
        ),
        example="conv2.weight float [64, 32, 3, 3]: all 18,432 weights zero",
        instead=(
            "Load the checkpoint strictly and export again; prune channels that are dead by "
            "training (and the next layer's inputs from them)."
        ),
        check=check,
        reads_weights=True,
    )
)
