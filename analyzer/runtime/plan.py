"""Where a flagged dense layer sits in the graph and how the candidate writer replaces it:
the chain back to its spatial source, what is refused and why, the new feed. Split from
`candidate`, which saves and checks the written model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from onnx import TensorProto, helper

from analyzer.api import prepare
from analyzer.core.results import Finding, Report
from analyzer.count.visitors import Context
from analyzer.count.visitors.linear import bias_add
from analyzer.count.weights import Constants
from analyzer.read import loader
from analyzer.rules import Options, RuleContext, trace
from analyzer.rules import dense_on_spatial as onx101
from analyzer.rules.dense import dense_shape
from analyzer.runtime.surgery import CHANNELS_FIRST, CHANNELS_LAST, Plan
from analyzer.view.model import ModelView, NodeView

REPLACEABLE = frozenset({("", "Gemm"), ("", "MatMul")})
PURE_RESHAPES = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16})
"""Element types the block is built in (onnxruntime's CPU provider has no double Conv)."""


def rule_view(
    path: Path, input_shapes: Mapping[str, tuple[int, ...]], sandbox: bool | None
) -> tuple[ModelView, Constants]:
    """The same view analyze() builds: skeleton, local functions inlined, shapes inferred."""
    _, view, _ = prepare(loader.load(path), input_shapes, sandbox)
    return view, Constants(view)


def _chain(view: ModelView, ctx: RuleContext, data: str, source: str) -> list[NodeView] | None:
    """Nodes from the flattened spatial `source` down to the dense input `data` (rule's walk)."""
    nodes: list[NodeView] = []
    value = data
    for _ in range(trace.MAX_STEPS):
        if value == source:
            return nodes
        index = view.producer.get(value)
        if index is None:
            return None
        node = view.nodes[index]
        nodes.append(node)
        if node.op_type in trace.RESHAPING:
            value = node.inputs[0]
        elif node.op_type in trace.ELEMENTWISE:
            nxt = trace.data_input(node, ctx)
            if nxt is None:
                return None
            value = nxt
        else:
            return None
    return None


def _channels_last_perm(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank), 1)


def replacement_plan(
    finding: Finding,
    view: ModelView,
    consts: Constants,
    report: Report,
    main_outputs: set[str],
) -> Plan | str:
    """How to replace one finding, or why it cannot be."""
    node = {n.name: n for n in view.nodes}.get(finding.node)
    if node is None:
        return "node not found in the model"
    refused = _refused(finding, node, report, main_outputs)
    if refused is not None:
        return refused
    ctx = RuleContext(view, consts, {}, Options(kernel=onx101.detail(finding).kernel), [])
    matched = _matched(finding, node, ctx)
    if isinstance(matched, str):
        return matched
    data, source, dtype = matched
    chain = _chain(view, ctx, data, source.value)
    if chain is None:
        return "cannot follow the flatten chain"
    removed, output = _replaced_outputs(node, view, consts)
    direct = all(step.op_type in PURE_RESHAPES for step in chain)
    feed, bypass, reshape_to = _feed(
        finding, view, source, data, direct=direct, main_outputs=main_outputs
    )
    if feed not in main_outputs and feed not in view.graph_inputs:
        return f"its input {feed!r} is computed inside a model-local function"
    return Plan(finding, removed, output, feed, reshape_to, bypass, dtype)


def _refused(
    finding: Finding, node: NodeView, report: Report, main_outputs: set[str]
) -> str | None:
    """Why this node cannot be replaced whatever its shapes, or None."""
    if node.scope:
        return "inside a subgraph (If/Loop/Scan body)"
    if not node.outputs or node.outputs[0] not in main_outputs:
        return "inside a model-local function"
    if (node.domain, node.op_type) not in REPLACEABLE:
        op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        return f"{op} is fused or quantized: emit the candidate from the float model"
    layout = onx101.detail(finding).layout
    if layout not in CHANNELS_FIRST | CHANNELS_LAST | {"image"}:
        return f"layout {layout} not supported"
    layer = next((entry for entry in report.layers if entry.name == finding.node), None)
    if layer is not None and layer.shared:
        return "its weights are shared with another layer"
    return None


def _matched(
    finding: Finding, node: NodeView, ctx: RuleContext
) -> tuple[str, trace.Source, int] | str:
    """The dense input, its spatial source and its dtype, as the report describes them."""
    detail = onx101.detail(finding)
    dense = dense_shape(node, ctx)
    if dense is None:
        return "not a dense layer with a constant 2-D weight"
    data, k, units = dense
    source = trace.flattened_source(node, data, k, ctx)
    if isinstance(source, str):
        return source
    if (source.channels, source.spatial, source.layout) != (
        detail.channels,
        detail.spatial,
        detail.layout,
    ) or (k, units) != (detail.in_features, detail.units):
        return "the model no longer matches the report (re-run the analysis)"
    if detail.conv_weights != units * source.channels * detail.kernel ** len(source.spatial):
        return "conv weights in the report do not match a k x k conv"
    dtype = ctx.view.elem_types.get(data, 0)
    if dtype not in FLOAT_TYPES:
        name = helper.tensor_dtype_to_string(dtype).removeprefix("TensorProto.").lower()
        return f"input type {name} is not float or float16 (onnxruntime runs no other Conv)"
    return data, source, dtype


def _replaced_outputs(
    node: NodeView, view: ModelView, consts: Constants
) -> tuple[tuple[str, ...], str]:
    """First outputs of the nodes to delete (the dense node, a MatMul's bias Add), and the
    value the block must produce in their place."""
    removed = [node.outputs[0]]
    output = node.outputs[0]
    if node.op_type == "MatMul":
        add = bias_add(node, Context(view, consts))
        if add is not None:
            removed.append(add.outputs[0])
            output = add.outputs[0]
    return tuple(removed), output


def _feed(
    finding: Finding,
    view: ModelView,
    source: trace.Source,
    data: str,
    *,
    direct: bool,
    main_outputs: set[str],
) -> tuple[str, bool, tuple[int, ...]]:
    """What the block reads: (value, whether it bypasses a channels-last Transpose, the shape
    to reshape a flattened input back to)."""
    if not direct:
        source_shape = view.shape(source.value) or ()
        return data, False, tuple(int(d) for d in source_shape[1:])  # ints: _walk checked them
    if onx101.detail(finding).layout in CHANNELS_LAST:
        index = view.producer.get(source.value)
        producer = view.nodes[index] if index is not None else None
        perm = _channels_last_perm(len(source.spatial) + 2)
        if producer is not None and producer.op_type == "Transpose":
            got = tuple(int(p) for p in producer.attr("perm", ()) or ())
            if got == perm and producer.inputs[0] in main_outputs | set(view.graph_inputs):
                return producer.inputs[0], True, ()
    return source.value, False, ()
