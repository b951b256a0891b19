"""ONX104 dominant-dense-layer: one dense layer holds most of the model's parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, LayerTally, Payload, Side, finite, payload
from analyzer.core.symbolic import Poly
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.dense import dense_shape
from analyzer.view.model import NodeView

CODE: Final = "ONX104"
MIN_SHARE: Final = 0.5
MIN_SAVING: Final = 4
"""The default rank is the largest that still saves this many times the weights."""


NOT_READ: Final = "the weights were not read (--inspect-weights estimates it)"


def default_rank(inputs: int, outputs: int) -> int:
    """The largest r with in*r + r*out <= in*out / 4: floor(in*out / (4*(in+out)))."""
    return (inputs * outputs) // (MIN_SAVING * (inputs + outputs))


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class DominantDense(Payload):
    """The layer's share of the model and its factorisation W ~ A[in, r] x B[r, out]."""

    in_features: int
    units: int
    layer_params: int
    """Weight plus bias, as the layer table counts them."""
    model_params: int
    share: float
    rank: int
    dense_weights: int
    bias: int
    low_rank_weights: int
    rows: Poly
    """Rows the layer multiplies (N, or N x T for a sequence)."""
    dense_macs: Poly
    low_rank_macs: Poly
    energy_kept: float | None = None
    """With --inspect-weights: the share of the weight's spectral energy (sum of squared
    singular values) in its `rank` largest, by randomised SVD; None when not estimated."""
    energy_reason: str = NOT_READ
    """Why energy_kept is None (weights not read, too big to estimate, quantized); "" when
    it was estimated."""

    def summary(self) -> str:
        return f"{self.in_features:,} -> {self.units:,}"

    def lines(self) -> tuple[tuple[str, str], ...]:
        r = self.rank
        saving = self.dense_weights / self.low_rank_weights if self.low_rank_weights else 0.0
        return (
            ("share", f"{self.layer_params:,} of {self.model_params:,} params "
                      f"({self.share:.1%} of the model)"),
            ("dense", f"{self.dense_weights:,} weights + {self.bias:,} bias   "
                      f"{self.dense_macs} MACs"),
            (f"rank {r}", f"{self.in_features:,}*{r} + {r}*{self.units:,} = "
                          f"{self.low_rank_weights:,} weights + {self.bias:,} bias   "
                          f"{self.low_rank_macs} MACs ({saving:.1f}x fewer)"),
            ("drop-in", f"MatMul([{self.in_features}, {r}]) -> Gemm([{r}, {self.units}], "
                        "bias)"),
            *self._energy_lines(),
        )  # fmt: skip

    def _energy_lines(self) -> tuple[tuple[str, str], ...]:
        r = self.rank
        if self.energy_kept is None:
            estimate = (
                ("energy", f"rank {r}'s share of the spectral energy not estimated: "
                           f"{self.energy_reason}"),
            )  # fmt: skip
            return (
                *(estimate if self.energy_reason != NOT_READ else ()),
                ("note", f"the file's shapes cannot tell whether rank {r} keeps the model's "
                         "accuracy: that needs the weights (their singular values) or "
                         "retraining"),
            )  # fmt: skip
        return (
            ("energy", f"rank {r} keeps {self.energy_kept:.2%} of the weight's spectral "
                       f"energy (squared singular values; relative squared error of the best "
                       f"rank-{r} approximation {1 - self.energy_kept:.2%})"),
            ("note", "energy is the first look, not the verdict: check the accuracy of the "
                     "factorised model on data (and fine-tune)"),
        )  # fmt: skip

    def sides(self) -> tuple[Side, ...]:
        return (
            Side(label="dense (as is)", weights=self.dense_weights, bias=self.bias,
                 macs=self.dense_macs),
            Side(label=f"rank {self.rank}", weights=self.low_rank_weights, bias=self.bias,
                 macs=self.low_rank_macs),
        )  # fmt: skip

    def properties(self) -> dict[str, object]:
        return {
            "inFeatures": self.in_features,
            "units": self.units,
            "layerParams": self.layer_params,
            "modelParams": self.model_params,
            "share": finite(self.share),
            "rank": self.rank,
            "denseWeights": self.dense_weights,
            "bias": self.bias,
            "lowRankWeights": self.low_rank_weights,
            "denseMacs": self.dense_macs.to_json(),
            "lowRankMacs": self.low_rank_macs.to_json(),
            "energyKept": None if self.energy_kept is None else finite(self.energy_kept),
            "energyReason": self.energy_reason,
        }


def _energy(ctx: RuleContext, tensor: str | None, rank: int) -> tuple[float | None, str]:
    """(share of energy kept at `rank`, "") or (None, why not)."""
    if ctx.energy is None:
        return None, NOT_READ
    if tensor is None:
        return None, "no stored weight tensor"
    kept = ctx.energy(tensor, rank)
    if isinstance(kept, str):
        return None, kept
    return round(kept, 4), ""


def check(ctx: RuleContext) -> Iterator[Finding]:
    total = ctx.total_params
    if total <= 0:
        return
    for node in ctx.view.nodes:
        dense = dense_shape(node, ctx)
        layer = ctx.layers.get(node.name)
        if dense is None or layer is None:
            continue
        _, k, units = dense
        share = layer.params / total
        if share < MIN_SHARE:
            continue
        if layer.shared:
            ctx.debug.append(f"{CODE} {node.name}: not flagged: its weight is shared (tied)")
            continue
        rank = ctx.options.rank or default_rank(k, units)
        low_rank = k * rank + rank * units
        if rank < 1 or low_rank >= k * units:
            ctx.debug.append(f"{CODE} {node.name}: not flagged: rank {rank} saves nothing")
            continue
        yield _finding(ctx, node, layer, dense, rank=rank, share=share)


def _finding(
    ctx: RuleContext,
    node: NodeView,
    layer: LayerTally,
    dense: tuple[str, int, int],
    *,
    rank: int,
    share: float,
) -> Finding:
    """The finding for the dense `node` (data, K, units), factorised at `rank`."""
    total = ctx.total_params
    data, k, units = dense
    low_rank = k * rank + rank * units
    shape = ctx.view.shape(data)
    rows = Poly.product(shape[:-1]) if shape else Poly.of(1)
    bias = sum(w.elements for w in layer.weights if w.role == "bias")
    weight = next((w.tensor for w in layer.weights if w.role == "weight"), None)
    kept, reason = _energy(ctx, weight, rank)
    detail = DominantDense(
        in_features=k,
        units=units,
        layer_params=layer.params,
        model_params=total,
        share=round(share, 4),
        rank=rank,
        dense_weights=k * units,
        bias=bias,
        low_rank_weights=low_rank,
        rows=rows,
        dense_macs=rows * Poly.of(k * units),
        low_rank_macs=rows * Poly.of(low_rank),
        energy_kept=kept,
        energy_reason=reason,
    )
    accuracy = (
        f"At rank {rank} it keeps {kept:.2%} of the weight's spectral energy; the "
        "accuracy still needs checking on data"
        if kept is not None
        else f"Whether rank {rank} keeps the accuracy needs the weights or retraining"
    )
    return Finding(
        code=CODE,
        rule=DOMINANT_DENSE.name,
        node=node.name,
        op_type=node.op_type,
        message=(
            f"dense layer {node.name!r} ({k:,} -> {units:,}) holds {layer.params:,} of the "
            f"model's {total:,} parameters ({share:.1%}); factorised at rank {rank} it "
            f"needs {k:,}*{rank} + {rank}*{units:,} = {low_rank:,} weights instead of "
            f"{k * units:,}, and as many MACs per row. {accuracy}"
        ),
        confidence="medium",
        severity="note",
        params_saved=k * units - low_rank,
        macs_delta=detail.low_rank_macs + Poly.of(-1) * detail.dense_macs,
        detail=detail,
    )


DOMINANT_DENSE: Final = add_rule(
    Rule(
        code=CODE,
        name="dominant-dense-layer",
        summary="One dense layer holds half the model's parameters or more.",
        what=(
            "Flags a dense layer (Gemm, or MatMul with a constant 2-D weight) holding at least "
            "50% of the model's parameters, and prices its low-rank factorisation at rank r "
            "(--rank; by default the largest r that still saves 4x: "
            "r = floor(in*out / (4*(in+out)))): in*r + r*out weights and MACs per row. A layer "
            "whose weight is shared (a tied head) is left alone. With --inspect-weights it also "
            "states the share of the weight's spectral energy rank r keeps (randomised SVD; a "
            "weight over 8,388,608 values is reported as too big to estimate)."
        ),
        why=(
            "When one matrix is most of the model, it is where size can be won: replacing "
            "W[in, out] by A[in, r] x B[r, out] stores in*r + r*out numbers. Whether rank r "
            "keeps the accuracy cannot be told from shapes: it needs the weights (how fast "
            "their singular values fall) or retraining."
        ),
        example="x[N,25088] -> Gemm(25,088 -> 4,096)   # 102,760,448 weights, 74% of VGG-16",
        instead=(
            "x[N,25088] -> MatMul(25,088 -> 880) -> Gemm(880 -> 4,096)   "
            "# 25,088*880 + 880*4,096 = 25,681,920 weights (4.0x fewer)"
        ),
        check=check,
    )
)
