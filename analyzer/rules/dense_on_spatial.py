"""ONX101 dense-on-spatial-input: a dense layer applied to a flattened feature map."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core.results import Finding, Payload, Side, finite, payload
from analyzer.core.symbolic import Poly
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.rules.dense import dense_shape
from analyzer.rules.trace import flattened_source
from analyzer.view.model import NodeView

CODE: Final = "ONX101"


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class DenseOnSpatial(Payload):
    """Both sides of the trade: the dense layer as is and the suggested conv (MACs per sample).

    The candidate writer and the pricer rebuild the conv from these fields, and the writer
    finds the nodes to replace by the chain the rule walked."""

    layout: str
    """NCHW | NHWC | NCL | NLC | image"""
    channels: int
    spatial: tuple[int, ...]
    in_features: int
    units: int
    dense_weights: int
    dense_bias: int
    kernel: int
    conv_weights: int
    conv_bias: int
    ratio: float
    dense_macs: int
    conv_macs: int
    replacement: str
    chain: tuple[str, ...] = ()
    """The values the rule walked, from the dense layer's input back to the flattened spatial
    tensor (both included): the candidate writer replaces what produces them."""
    bias_add_output: str = ""
    """The output of the separate Add that holds the dense layer's bias (torch's MatMul + Add),
    "" when the bias is inside the dense op or absent: the candidate writer removes it too."""

    def summary(self) -> str:
        return f"{self.in_features:,} -> {self.units:,}"

    def lines(self) -> tuple[tuple[str, str], ...]:
        window = "x".join([str(self.kernel)] * len(self.spatial))
        spatial = "x".join(str(d) for d in self.spatial)
        ratio_macs = self.conv_macs / self.dense_macs if self.dense_macs else 0.0
        plural = "s" if self.channels != 1 else ""
        return (
            ("input", f"flattened {self.channels} channel{plural} x {spatial} positions "
                      f"({self.layout})"),
            ("dense", f"{self.dense_weights:,} weights + {self.dense_bias:,} bias"
                      f"   {self.dense_macs:,} MACs"),
            (f"conv {window}", f"{self.conv_weights:,} weights + {self.conv_bias:,} bias"
                               f"   {self.conv_macs:,} MACs ({self.units:,} filters)"),
            ("trade", f"{self.ratio:.1f}x fewer weights for {ratio_macs:.1f}x the MACs "
                      "(per sample)"),
            ("drop-in", self.replacement),
            ("note", "an architectural change: the replacement must be retrained"),
        )  # fmt: skip

    def sides(self) -> tuple[Side, ...]:
        window = "x".join([str(self.kernel)] * max(1, len(self.spatial)))
        return (
            Side(label="dense (as is)", weights=self.dense_weights, bias=self.dense_bias,
                 macs=Poly.of(self.dense_macs)),
            Side(label=f"conv {window}, {self.units:,} filters", weights=self.conv_weights,
                 bias=self.conv_bias, macs=Poly.of(self.conv_macs)),
        )  # fmt: skip

    def properties(self) -> dict[str, object]:
        return {
            "layout": self.layout,
            "channels": self.channels,
            "spatial": list(self.spatial),
            "inFeatures": self.in_features,
            "units": self.units,
            "denseWeights": self.dense_weights,
            "denseBias": self.dense_bias,
            "kernel": self.kernel,
            "convWeights": self.conv_weights,
            "convBias": self.conv_bias,
            "ratio": finite(self.ratio),
            "denseMacs": self.dense_macs,
            "convMacs": self.conv_macs,
            "replacement": self.replacement,
        }


def check(ctx: RuleContext) -> Iterator[Finding]:
    kernel, min_ratio = ctx.options.kernel, ctx.options.min_ratio
    for node in ctx.view.nodes:
        dense = dense_shape(node, ctx)
        if dense is None:
            continue
        data, k, units = dense
        if k <= 0 or units <= 0:
            ctx.debug.append(f"ONX101 {node.name}: not flagged: empty weight ({k} x {units})")
            continue
        found = flattened_source(node, data, k, ctx)
        if isinstance(found, str):
            ctx.debug.append(f"ONX101 {node.name}: not flagged: {found}")
            continue
        positions = 1
        for d in found.spatial:
            positions *= d
        if positions <= 1:
            ctx.debug.append(f"ONX101 {node.name}: not flagged: one spatial position")
            continue
        layer = ctx.layers.get(node.name)
        bias = 0
        if layer is not None:
            bias = sum(w.elements for w in layer.weights if w.role == "bias")
        taps = kernel ** len(found.spatial)
        conv_weights = taps * found.channels * units
        dense_weights = k * units
        ratio = dense_weights / conv_weights
        if ratio < min_ratio:
            ctx.debug.append(f"ONX101 {node.name}: not flagged: ratio {ratio:.2f} < {min_ratio}")
            continue
        dense_macs, conv_macs = dense_weights, conv_weights * positions
        window = "x".join([str(kernel)] * len(found.spatial))
        shape_text = "x".join(str(d) for d in (found.channels, *found.spatial))
        replacement = (
            f"Conv({window}, {units} filters, same padding) -> GlobalAveragePool -> Flatten "
            f"=> [N, {units}]"
        )
        message = (
            f"dense layer {node.name!r} ({node.op_type}, {k:,} -> {units:,}) reads a flattened "
            f"{shape_text} ({found.layout}) tensor: {dense_weights:,} weights where a {window} "
            f"conv with {units:,} filters needs {conv_weights:,} ({ratio:.1f}x fewer), at "
            f"{conv_macs / dense_macs:.1f}x the MACs ({conv_macs:,} vs {dense_macs:,}); "
            "an architectural change that needs retraining, not an equivalent rewrite"
        )
        yield Finding(
            code=CODE,
            rule=DENSE_ON_SPATIAL.name,
            node=node.name,
            op_type=node.op_type,
            message=message,
            confidence=found.confidence,
            params_saved=dense_weights - conv_weights,
            macs_delta=_rows(data, ctx) * Poly.of(conv_macs - dense_macs),
            detail=DenseOnSpatial(
                layout=found.layout,
                channels=found.channels,
                spatial=found.spatial,
                in_features=k,
                units=units,
                dense_weights=dense_weights,
                dense_bias=bias,
                kernel=kernel,
                conv_weights=conv_weights,
                conv_bias=units,
                ratio=round(ratio, 4),
                dense_macs=dense_macs,
                conv_macs=conv_macs,
                replacement=replacement,
                chain=found.chain,
                bias_add_output=_bias_add_output(node, ctx),
            ),
        )


def _bias_add_output(node: NodeView, ctx: RuleContext) -> str:
    """The output of the Add holding `node`'s bias (paired once, in count), or ""."""
    add = ctx.consts.bias_adds.of(ctx.view, node)
    return add.outputs[0] if add is not None and add.outputs else ""


def _rows(data: str, ctx: RuleContext) -> Poly:
    """Rows a dense layer multiplies (the batch, symbolic when dynamic); 1 when unknown."""
    shape = ctx.view.shape(data)
    return Poly.product(shape[:-1]) if shape else Poly.of(1)


def detail(finding: Finding) -> DenseOnSpatial:
    """ONX101's payload of a finding (the runtime's candidate writer and pricer read it)."""
    if not isinstance(finding.detail, DenseOnSpatial):
        raise TypeError(f"{finding.code} on {finding.node!r} is not an ONX101 finding")
    return finding.detail


DENSE_ON_SPATIAL: Final = add_rule(
    Rule(
        code=CODE,
        name="dense-on-spatial-input",
        summary=(
            "A dense layer reads a flattened feature map; a convolution needs far fewer weights."
        ),
        what=(
            "Flags a dense layer (Gemm, or MatMul with a constant 2-D weight, and their fused or "
            "quantized forms) whose input is a flattened C x H x W (or C x L) tensor with more "
            "than one spatial position, when a k x k convolution with the same number of filters "
            "would need at least --min-ratio times fewer weights."
        ),
        why=(
            "A dense layer learns one weight per input pixel per unit. A convolution shares its "
            "k x k x C weights across every position, so it needs H x W / k^2 times fewer. The "
            "price is computation: the convolution runs at every position (k*k*C*F*H*W MACs "
            "instead of C*H*W*F)."
        ),
        example=("x[N,1,10,10] -> Flatten -> Gemm(100 -> 32)     # 3,200 weights, 3,200 MACs"),
        instead=(
            "x[N,1,10,10] -> Conv(3x3, 32, same) -> GlobalAveragePool -> Flatten   "
            "# 288 weights, 28,800 MACs, same [N,32] output. It is an architectural change: "
            "retrain the model."
        ),
        check=check,
    )
)
