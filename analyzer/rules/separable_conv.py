"""ONX102 conv-could-be-depthwise-separable: a full k x k conv (1-D and 3-D too) on many
channels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from analyzer.core import ops
from analyzer.core.results import Finding, Payload, Side, payload
from analyzer.core.symbolic import Poly
from analyzer.rules.base import Rule, RuleContext, add_rule
from analyzer.view.model import NodeView

CODE: Final = "ONX102"


@payload(CODE)
@dataclass(frozen=True, slots=True, kw_only=True)
class SeparableConv(Payload):
    """The conv as is and the depthwise + pointwise pair, per output position and in total."""

    kernel: int
    """The kernel's side k (k >= 3, the same along every spatial axis)."""
    channels: int
    filters: int
    conv_weights: int
    conv_bias: int
    depthwise_weights: int
    depthwise_bias: int
    pointwise_weights: int
    pointwise_bias: int
    ratio: float
    positions: Poly
    """Output positions the conv runs at (N x H_out x W_out), symbolic when a dim is dynamic."""
    conv_macs: Poly
    separable_macs: Poly
    kernel_dims: int = 2
    """Spatial axes of the kernel: 1 (Conv1d, k taps), 2 (k x k) or 3 (k x k x k)."""

    @property
    def taps(self) -> int:
        """k ** kernel_dims: the kernel's weights per input and output channel."""
        return int(self.kernel**self.kernel_dims)

    def kernel_text(self, side: int | None = None) -> str:
        """`3x3` (`3-tap` for a 1-D kernel, `3x3x3` for a 3-D one); `side` 1: the pointwise."""
        k = self.kernel if side is None else side
        if self.kernel_dims == 1:
            return f"{k}-tap"
        return "x".join([str(k)] * self.kernel_dims)

    @property
    def separable_weights(self) -> int:
        return self.depthwise_weights + self.pointwise_weights

    def summary(self) -> str:
        return f"{self.kernel_text()}, {self.channels:,} -> {self.filters:,}"

    def lines(self) -> tuple[tuple[str, str], ...]:
        taps, c, f = self.taps, self.channels, self.filters
        per_position_conv = taps * c * f
        per_position_sep = taps * c + c * f
        return (
            ("conv", f"{self.conv_weights:,} weights + {self.conv_bias:,} bias   "
                     f"{per_position_conv:,} MACs per output position"),
            ("separable", f"{self.depthwise_weights:,} + {self.pointwise_weights:,} = "
                          f"{self.separable_weights:,} weights + {self.depthwise_bias:,} + "
                          f"{self.pointwise_bias:,} bias   {per_position_sep:,} MACs per "
                          "position"),
            ("trade", f"{self.ratio:.1f}x fewer weights and MACs; MACs {self.conv_macs} -> "
                      f"{self.separable_macs} over {self.positions} positions"),
            ("drop-in", f"Conv({self.kernel_text()}, group={c}, same stride and pads) -> "
                        f"Conv({self.kernel_text(1)}, {f})"),
            ("note", "an architectural change (as in MobileNet): the replacement must be "
                     "retrained"),
        )  # fmt: skip

    def sides(self) -> tuple[Side, ...]:
        return (
            Side(label=f"conv {self.kernel_text()} (as is)", weights=self.conv_weights,
                 bias=self.conv_bias, macs=self.conv_macs),
            Side(label="depthwise + pointwise", weights=self.separable_weights,
                 bias=self.depthwise_bias + self.pointwise_bias, macs=self.separable_macs),
        )  # fmt: skip


def _conv_shape(node: NodeView, weight: str, ctx: RuleContext) -> tuple[int, int, int, int] | str:
    """(k, kernel dims, C, F) of a group-1 conv with a constant kernel `weight` of side k along
    each of its 1, 2 or 3 spatial axes, or why not.
    A quantized kernel (QLinearConv, ConvInteger, or DequantizeLinear before a Conv) has the
    same shape: its parameters are the same count of weights."""
    if int(node.attr("group", 1) or 1) != 1:
        return f"group {node.attr('group')} (already grouped or depthwise)"
    shape = ctx.view.shape(weight) if weight else None
    if not weight or not ctx.consts.is_const(weight) or shape is None:
        return "no constant weight"
    if not 3 <= len(shape) <= 5 or not all(isinstance(d, int) for d in shape):
        return f"weight shape {shape} is not a known 1-D, 2-D or 3-D kernel"
    filters, channels, *sides = (int(d) for d in shape)
    text = "x".join(map(str, sides))
    if len(set(sides)) != 1:
        return f"kernel {text} is not the same along every axis"
    if sides[0] < 3:
        return f"kernel {text} (a 1x1 conv is already pointwise)"
    return sides[0], len(sides), channels, filters


def check(ctx: RuleContext) -> Iterator[Finding]:
    min_channels, min_ratio = ctx.options.separable_min_channels, ctx.options.min_ratio
    for node in ctx.view.nodes:
        entry = ops.CONV_LAYERS.get((node.domain, node.op_type))
        if entry is None or entry.weight is None:
            continue
        found = _conv_shape(node, node.input(entry.weight), ctx)
        if isinstance(found, str):
            ctx.debug.append(f"{CODE} {node.name}: not flagged: {found}")
            continue
        k, dims, c, f = found
        taps = k**dims
        if c < min_channels:
            ctx.debug.append(
                f"{CODE} {node.name}: not flagged: {c} input channels < {min_channels}"
            )
            continue
        conv_weights, depthwise, pointwise = taps * c * f, taps * c, c * f
        ratio = conv_weights / (depthwise + pointwise)
        if ratio < min_ratio:
            ctx.debug.append(f"{CODE} {node.name}: not flagged: ratio {ratio:.2f} < {min_ratio}")
            continue
        out = ctx.view.shape(node.outputs[0]) if node.outputs else None
        positions = Poly.product((out[0], *out[2:])) if out is not None else Poly()
        has_bias = entry.bias is not None and bool(node.input(entry.bias))
        detail = SeparableConv(
            kernel=k,
            channels=c,
            filters=f,
            conv_weights=conv_weights,
            conv_bias=f if has_bias else 0,
            depthwise_weights=depthwise,
            depthwise_bias=c if has_bias else 0,
            pointwise_weights=pointwise,
            pointwise_bias=f if has_bias else 0,
            ratio=round(ratio, 4),
            positions=positions,
            conv_macs=positions * Poly.of(conv_weights),
            separable_macs=positions * Poly.of(depthwise + pointwise),
            kernel_dims=dims,
        )
        yield Finding(
            code=CODE,
            rule=SEPARABLE_CONV.name,
            node=node.name,
            op_type=node.op_type,
            message=(
                f"conv {node.name!r} ({detail.kernel_text()}, {c:,} -> {f:,} channels, group 1)"
                f" holds {conv_weights:,} weights; a depthwise {detail.kernel_text()} conv plus a "
                f"{detail.kernel_text(1)} conv needs "
                f"{depthwise:,} + {pointwise:,} = {depthwise + pointwise:,} ({ratio:.1f}x "
                "fewer weights and MACs per output position); an architectural change that "
                "needs retraining, not an equivalent rewrite"
            ),
            confidence="high",
            params_saved=conv_weights - depthwise - pointwise,
            macs_delta=detail.separable_macs + Poly.of(-1) * detail.conv_macs,
            detail=detail,
        )


SEPARABLE_CONV: Final = add_rule(
    Rule(
        code=CODE,
        name="conv-could-be-depthwise-separable",
        summary=(
            "A full k x k convolution on many channels; a depthwise-separable pair needs far "
            "fewer weights and MACs."
        ),
        what=(
            "Flags a Conv (float, fused, or quantized: QLinearConv, ConvInteger, a Conv reading "
            "a DequantizeLinear'd kernel) with group 1, a square k x k kernel (k >= 3; also a "
            "1-D kernel of k taps or a k x k x k one, with k*k read as k or k*k*k), C >= "
            "--separable-min-channels (default 32) input channels and F filters, when k*k*C*F "
            "weights are at least --min-ratio times the k*k*C + C*F of a depthwise k x k conv "
            "followed by a 1x1 conv. Depthwise, grouped and 1x1 convs are never flagged, nor a "
            "stem conv on few channels (RGB stays full, as in MobileNet)."
        ),
        why=(
            "A full conv mixes space and channels in one k*k*C*F tensor. Factorising it into a "
            "per-channel spatial filter (k*k*C) and a channel mix (C*F), as MobileNet does, cuts "
            "weights and MACs per output position by about min(k*k, F) times; the model must "
            "be retrained and may lose some accuracy."
        ),
        example="x[N,256,56,56] -> Conv(3x3, 256 -> 256)   # 589,824 weights",
        instead=(
            "x[N,256,56,56] -> Conv(3x3, group=256) -> Conv(1x1, 256)   "
            "# 2,304 + 65,536 = 67,840 weights (8.7x fewer), same output shape"
        ),
        check=check,
    )
)
