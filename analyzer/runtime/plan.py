"""Where a flagged dense layer sits in the graph and how the candidate writer replaces it:
the chain back to its spatial source (the one ONX101 walked, carried by its finding), what is
refused and why, the new feed. Split from
`candidate`, which saves and checks the written model."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from onnx import TensorProto, helper

from analyzer.api import prepare
from analyzer.core import ops
from analyzer.core.results import Finding, Report
from analyzer.read import loader
from analyzer.rules import dense_on_spatial as onx101
from analyzer.runtime.surgery import CHANNELS_FIRST, CHANNELS_LAST, Plan
from analyzer.view.model import ModelView, NodeView

REPLACEABLE = frozenset(
    key
    for key, entry in ops.DENSE_LAYERS.items()
    if key[0] == "" and not entry.quant and not entry.size_attrs[0]
)
"""Float dense ops of the onnx domain (Gemm, MatMul), from the op catalogue: fused and quantized
forms are refused."""
PURE_RESHAPES = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16})
"""Element types the block is built in (onnxruntime's CPU provider has no double Conv)."""


def rule_view(
    path: Path, input_shapes: Mapping[str, tuple[int, ...]], sandbox: bool | None
) -> ModelView:
    """The same view analyze() builds: skeleton, local functions inlined, shapes inferred."""
    _, view, _ = prepare(loader.load(path), input_shapes, sandbox)
    return view


def _channels_last_perm(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank), 1)


def replacement_plan(
    finding: Finding,
    view: ModelView,
    report: Report,
    main_outputs: set[str],
) -> Plan | str:
    """How to replace one finding, or why it cannot be: from the chain of values the rule
    walked (the finding carries it), checked against the model, never walked again."""
    node = {n.name: n for n in view.nodes}.get(finding.node)
    if node is None:
        return "node not found in the model"
    refused = _refused(finding, node, report, main_outputs)
    if refused is not None:
        return refused
    matched = _matched(finding, node, view)
    if isinstance(matched, str):
        return matched
    chain, dtype = matched
    detail = onx101.detail(finding)
    data, source = detail.chain[0], detail.chain[-1]
    removed, output = _replaced_outputs(node, detail.bias_add_output)
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


def _matched(finding: Finding, node: NodeView, view: ModelView) -> tuple[list[NodeView], int] | str:
    """The nodes of the finding's chain (dense side first) and the input's dtype, when the
    model still reads as the report describes it."""
    detail = onx101.detail(finding)
    if len(detail.chain) < 2:
        return "the finding carries no chain (re-run the analysis)"
    data, source = detail.chain[0], detail.chain[-1]
    entry = ops.DENSE_LAYERS.get((node.domain, node.op_type))
    if entry is None or entry.data is None or node.input(entry.data) != data:
        return "the model no longer matches the report (re-run the analysis)"
    chain: list[NodeView] = []
    for value, nxt in zip(detail.chain, detail.chain[1:], strict=False):
        index = view.producer.get(value)
        if index is None or nxt not in view.nodes[index].inputs:
            return "the model no longer matches the report (re-run the analysis)"
        chain.append(view.nodes[index])
    weight = view.shape(node.input(entry.weight)) if entry.weight is not None else None
    dense = (detail.in_features, detail.units)
    dims = _source_dims(detail)
    if dims != tuple(view.shape(source) or ())[1:] or math.prod(dims) != detail.in_features:
        return "the model no longer matches the report (re-run the analysis)"
    if weight is None or tuple(weight) not in (dense, dense[::-1]):
        return "the model no longer matches the report (re-run the analysis)"
    if detail.conv_weights != detail.units * detail.channels * detail.kernel ** len(detail.spatial):
        return "conv weights in the report do not match a k x k conv"
    dtype = view.elem_types.get(data, 0)
    if dtype not in FLOAT_TYPES:
        name = helper.tensor_dtype_to_string(dtype).removeprefix("TensorProto.").lower()
        return f"input type {name} is not float or float16 (onnxruntime runs no other Conv)"
    return chain, dtype


def _source_dims(detail: onx101.DenseOnSpatial) -> tuple[int, ...]:
    """The spatial tensor's dims after the batch, as the report describes them."""
    if detail.layout in CHANNELS_LAST:
        return (*detail.spatial, detail.channels)
    if detail.layout == "image":
        return detail.spatial
    return (detail.channels, *detail.spatial)


def _replaced_outputs(node: NodeView, bias_add_output: str) -> tuple[tuple[str, ...], str]:
    """First outputs of the nodes to delete (the dense node, its bias Add), and the value the
    block must produce in their place."""
    if bias_add_output:
        return (node.outputs[0], bias_add_output), bias_add_output
    return (node.outputs[0],), node.outputs[0]


def _feed(
    finding: Finding,
    view: ModelView,
    source: str,
    data: str,
    *,
    direct: bool,
    main_outputs: set[str],
) -> tuple[str, bool, tuple[int, ...]]:
    """What the block reads: (value, whether it bypasses a channels-last Transpose, the shape
    to reshape a flattened input back to)."""
    if not direct:
        source_shape = view.shape(source) or ()
        return data, False, tuple(int(d) for d in source_shape[1:])  # ints: _walk checked them
    if onx101.detail(finding).layout in CHANNELS_LAST:
        index = view.producer.get(source)
        producer = view.nodes[index] if index is not None else None
        perm = _channels_last_perm(len(onx101.detail(finding).spatial) + 2)
        if producer is not None and producer.op_type == "Transpose":
            got = tuple(int(p) for p in producer.attr("perm", ()) or ())
            if got == perm and producer.inputs[0] in main_outputs | set(view.graph_inputs):
                return producer.inputs[0], True, ()
    return source, False, ()
