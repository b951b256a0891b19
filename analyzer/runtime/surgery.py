"""Graph surgery for `--emit-candidate`: build the drop-in Conv -> GlobalAveragePool -> Flatten
block for one flagged dense layer, splice it in under the dense layer's output name, and remove
the nodes and initializers that only fed the replaced layers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

from analyzer.core.protowalk import subgraphs
from analyzer.core.results import Finding
from analyzer.rules import dense_on_spatial as onx101
from analyzer.runtime.pricing import conv_attrs

PREFIX = "onnx_audit_candidate"
CHANNELS_FIRST = frozenset({"NCHW", "NCL"})
CHANNELS_LAST = frozenset({"NHWC", "NLC"})


@dataclass(frozen=True, slots=True)
class Plan:
    """How one flagged dense layer is replaced: what goes, what the block reads and writes."""

    finding: Finding
    removed: tuple[str, ...]
    """First outputs of the nodes to delete (the dense node, its bias Add)."""
    output: str
    """Value the block's Flatten produces: the dense layer's final output."""
    feed: str
    """Value the block reads: the spatial source, or the flattened input to reshape back."""
    reshape_to: tuple[int, ...]
    """Non-empty: Reshape `feed` to [-1, *reshape_to] first (elementwise ops kept upstream)."""
    bypass: bool
    """`feed` is already channels-first (a channels-last Transpose was skipped)."""
    dtype: int


def _opset(model: ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


class _Names:
    """Fresh value/node names that say they are new and never collide."""

    def __init__(self, model: ModelProto) -> None:
        self.taken: set[str] = set()
        for graph in [model.graph]:
            self.taken.update(t.name for t in graph.initializer)
            self.taken.update(v.name for v in graph.input)
            for node in graph.node:
                self.taken.update(node.output)
                self.taken.add(node.name)

    def __call__(self, node: str, what: str) -> str:
        base = f"{PREFIX}/{node}/{what}"
        name, count = base, 1
        while name in self.taken:
            count += 1
            name = f"{base}#{count}"
        self.taken.add(name)
        return name


def _block(
    plan: Plan, opset: int, names: _Names, rng: np.random.Generator
) -> tuple[list[NodeProto], list[TensorProto]]:
    """The nodes and initializers of one drop-in block."""
    finding = onx101.detail(plan.finding)
    node, layout = plan.finding.node, finding.layout
    rank = len(finding.spatial)
    np_type = helper.tensor_dtype_to_np_dtype(plan.dtype)
    nodes: list[NodeProto] = []
    inits: list[TensorProto] = []
    value = plan.feed
    if plan.reshape_to:
        shape_name = names(node, "unflatten.shape")
        target = np.array([-1, *plan.reshape_to], dtype=np.int64)
        inits.append(numpy_helper.from_array(target, shape_name))
        out = names(node, "unflatten")
        nodes.append(
            helper.make_node("Reshape", [value, shape_name], [out], name=names(node, "Reshape"))
        )
        value = out
    if layout in CHANNELS_LAST and not plan.bypass:
        out = names(node, "channels_first")
        perm = [0, rank + 1, *range(1, rank + 1)]
        nodes.append(
            helper.make_node("Transpose", [value], [out], name=names(node, "Transpose"), perm=perm)
        )
        value = out
    elif layout == "image":
        out = names(node, "channels_first")
        if opset >= 13:
            axes = names(node, "unsqueeze.axes")
            inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), axes))
            unsqueeze = helper.make_node(
                "Unsqueeze", [value, axes], [out], name=names(node, "Unsqueeze")
            )
        else:
            unsqueeze = helper.make_node(
                "Unsqueeze", [value], [out], name=names(node, "Unsqueeze"), axes=[1]
            )
        nodes.append(unsqueeze)
        value = out
    kernel, units, channels = finding.kernel, finding.units, finding.channels
    fan_in = channels * kernel**rank
    weight = rng.standard_normal((units, channels, *([kernel] * rank))) * np.sqrt(2.0 / fan_in)
    weight_name, bias_name = names(node, "conv.weight"), names(node, "conv.bias")
    inits.append(numpy_helper.from_array(weight.astype(np_type), weight_name))
    inits.append(numpy_helper.from_array(np.zeros(units, dtype=np_type), bias_name))
    attrs = conv_attrs(kernel, rank)
    conv_out, pool_out = names(node, "conv"), names(node, "pool")
    nodes.append(
        helper.make_node(
            "Conv", [value, weight_name, bias_name], [conv_out], name=names(node, "Conv"), **attrs
        )
    )
    nodes.append(
        helper.make_node(
            "GlobalAveragePool", [conv_out], [pool_out], name=names(node, "GlobalAveragePool")
        )
    )
    nodes.append(
        helper.make_node("Flatten", [pool_out], [plan.output], name=names(node, "Flatten"), axis=1)
    )
    return nodes, inits


def _used_names(graph: GraphProto) -> set[str]:
    """Every value the graph's nodes (and their subgraphs, conservatively) read or output."""
    used = {value.name for value in graph.output}
    stack: list[NodeProto] = list(graph.node)
    while stack:
        node = stack.pop()
        used.update(name for name in node.input if name)
        for sub in subgraphs(node):
            stack.extend(sub.node)
            used.update(value.name for value in sub.output)
    return used


def _dead_nodes(graph: GraphProto, cone: set[str]) -> list[int]:
    """Indices of nodes that output into the cone and whose outputs nothing reads."""
    used = _used_names(graph)
    return [
        index
        for index, node in enumerate(graph.node)
        if any(out in cone for out in node.output)
        and not any(out in used for out in node.output if out)
    ]


def _drop_initializers(graph: GraphProto, cone: set[str]) -> None:
    """Delete the cone's initializers (and their graph inputs) that nothing reads any more."""
    used = _used_names(graph)
    drop = {t.name for t in graph.initializer if t.name in cone and t.name not in used}
    kept = [t for t in graph.initializer if t.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [v for v in graph.input if v.name not in drop]
    del graph.input[:]
    graph.input.extend(inputs)


def _drop_stale_value_info(graph: GraphProto) -> None:
    """Delete value_info entries for values nothing defines any more."""
    defined = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    for node in graph.node:
        defined.update(node.output)
    infos = [v for v in graph.value_info if v.name in defined]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def _remove_dead(graph: GraphProto, seeds: Iterable[str]) -> None:
    """Delete nodes and initializers that only fed the removed layers (never anything else)."""
    cone = set(seeds)
    while dead := _dead_nodes(graph, cone):
        for index in reversed(dead):
            cone.update(name for name in graph.node[index].input if name)
            del graph.node[index]
    _drop_initializers(graph, cone)
    _drop_stale_value_info(graph)


def rewrite(model: ModelProto, plans: list[Plan], seed: int) -> None:
    """Splice each plan's block in place of its dense layer, then drop what only fed them."""
    graph = model.graph
    opset = _opset(model)
    names = _Names(model)
    rng = np.random.default_rng(seed)
    seeds: set[str] = set()
    for plan in plans:
        position = {out: index for index, n in enumerate(graph.node) for out in n.output if out}
        removed = sorted(position[name] for name in plan.removed)
        for index in removed:
            seeds.update(name for name in graph.node[index].input if name)
        nodes, inits = _block(plan, opset, names, rng)
        first = removed[0]
        kept = [n for index, n in enumerate(graph.node) if index not in removed]
        new_nodes = kept[:first] + nodes + kept[first:]
        del graph.node[:]
        graph.node.extend(new_nodes)
        graph.initializer.extend(inits)
        if model.ir_version < 4:
            graph.input.extend(
                helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits
            )
        # the old output's value_info may carry a now-stale type or shape: drop it
        infos = [v for v in graph.value_info if v.name != plan.output]
        del graph.value_info[:]
        graph.value_info.extend(infos)
    _remove_dead(graph, seeds)
