"""`--emit-candidate`: a copy of the model with every flagged dense layer replaced.

Each ONX101 dense layer (a Gemm, or a MatMul plus its bias Add) becomes the drop-in block
Conv(k, F, same) -> GlobalAveragePool -> Flatten, fed from the spatial tensor the dense layer
flattened. The block's output keeps the dense layer's output name, so every consumer (and a
graph output) reads it unchanged. New weights are seeded He-normal (bias zero) and named
`onnx_audit_candidate/<node>/conv.weight`; every other weight is carried over byte for byte.

The candidate is an architectural change: its new weights are random and it must be retrained.
It is written only after it passes `onnx.checker.check_model(full_check=True)`, counts the
parameters the report predicted, and (by default) runs in onnxruntime with the original's
output shapes. This is the one code path that reads weight bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import GraphProto, ModelProto, NodeProto, TensorProto, helper, numpy_helper

from analyzer import loader
from analyzer.api import analyze, prepare
from analyzer.errors import AuditError, UnsupportedError, UsageError
from analyzer.graph import ModelView, NodeView
from analyzer.pricing import conv_attrs
from analyzer.protowalk import iter_tensors, subgraphs
from analyzer.results import Finding, Report
from analyzer.rules import Options, RuleContext
from analyzer.rules import dense_on_spatial as onx101
from analyzer.runtime import load_model_for_reading
from analyzer.runtime import verify as runtime_verify
from analyzer.visitors import Context
from analyzer.visitors.linear import bias_add
from analyzer.weights import Constants

PREFIX = "onnx_audit_candidate"
RETRAIN_NOTE = (
    "the candidate's new conv weights are random (seeded He-normal): it is an architectural "
    "change, not an equivalent rewrite, and must be retrained before use"
)
REPLACEABLE = frozenset({("", "Gemm"), ("", "MatMul")})
PURE_RESHAPES = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16})
"""Element types the block is built in (onnxruntime's CPU provider has no double Conv)."""
CHANNELS_FIRST = frozenset({"NCHW", "NCL"})
CHANNELS_LAST = frozenset({"NHWC", "NLC"})
EXTERNAL_THRESHOLD = 2**31 - 64 * 2**20
"""Tensor bytes above which the candidate is saved with external data (protobuf's 2 GiB)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CandidateResult:
    """What emit_candidate wrote and how its parameter count compares with the prediction."""

    path: str
    predicted_params: int
    actual_params: int
    original_params: int
    replaced: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """(node, reason) of flagged layers left as they are."""
    external_data: str = ""
    """File name of the external data written next to the candidate, if any."""
    notes: tuple[str, ...] = field(default=(RETRAIN_NOTE,))

    def summary(self) -> str:
        """One line for the terminal, ending with the retraining warning."""
        layers = len(self.replaced)
        return (
            f"wrote {self.path}: {layers} dense layer{'s' if layers != 1 else ''} replaced by "
            f"Conv -> GlobalAveragePool -> Flatten, params {self.original_params:,} -> "
            f"{self.actual_params:,} (predicted {self.predicted_params:,}); {RETRAIN_NOTE}"
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    finding: Finding
    dense_out: str
    """First output of the dense node: finds it in the full model."""
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


def _input_shapes(report: Report) -> dict[str, tuple[int, ...]]:
    fixed: dict[str, tuple[int, ...]] = {}
    for key, value in report.settings:
        if key.startswith("input_shape:"):
            fixed[key.split(":", 1)[1]] = tuple(int(d) for d in value.split(",") if d)
    return fixed


def _view(path: Path, input_shapes: Mapping[str, tuple[int, ...]]) -> tuple[ModelView, Constants]:
    """The same view analyze() builds: skeleton, local functions inlined, shapes inferred."""
    _, view, _ = prepare(loader.load(path), input_shapes)
    return view, Constants(view)


def _chain(view: ModelView, ctx: RuleContext, data: str, source: str) -> list[NodeView] | None:
    """Nodes from the flattened spatial `source` down to the dense input `data` (rule's walk)."""
    nodes: list[NodeView] = []
    value = data
    for _ in range(onx101.MAX_STEPS):
        if value == source:
            return nodes
        index = view.producer.get(value)
        if index is None:
            return None
        node = view.nodes[index]
        nodes.append(node)
        if node.op_type in onx101.RESHAPING:
            value = node.inputs[0]
        elif node.op_type in onx101.ELEMENTWISE:
            nxt = onx101.data_input(node, ctx)
            if nxt is None:
                return None
            value = nxt
        else:
            return None
    return None


def _channels_last_perm(rank: int) -> tuple[int, ...]:
    return (0, *range(2, rank), 1)


def _plan(
    finding: Finding,
    view: ModelView,
    consts: Constants,
    report: Report,
    main_outputs: set[str],
) -> _Plan | str:
    """How to replace one finding, or why it cannot be."""
    by_name = {node.name: node for node in view.nodes}
    node = by_name.get(finding.node)
    if node is None:
        return "node not found in the model"
    if node.scope:
        return "inside a subgraph (If/Loop/Scan body)"
    if not node.outputs or node.outputs[0] not in main_outputs:
        return "inside a model-local function"
    if (node.domain, node.op_type) not in REPLACEABLE:
        op = f"{node.domain}::{node.op_type}" if node.domain else node.op_type
        return f"{op} is fused or quantized: emit the candidate from the float model"
    if finding.layout not in CHANNELS_FIRST | CHANNELS_LAST | {"image"}:
        return f"layout {finding.layout} not supported"
    layer = next((entry for entry in report.layers if entry.name == finding.node), None)
    if layer is not None and layer.shared:
        return "its weights are shared with another layer"
    ctx = RuleContext(view, consts, {}, Options(kernel=finding.kernel), [])
    dense = onx101.dense_shape(node, ctx)
    if dense is None:
        return "not a dense layer with a constant 2-D weight"
    data, k, units = dense
    source = onx101.flattened_source(node, data, k, ctx)
    if isinstance(source, str):
        return source
    if (source.channels, source.spatial, source.layout) != (
        finding.channels,
        finding.spatial,
        finding.layout,
    ) or (k, units) != (finding.in_features, finding.units):
        return "the model no longer matches the report (re-run the analysis)"
    rank = len(source.spatial)
    if finding.conv_weights != units * source.channels * finding.kernel**rank:
        return "conv weights in the report do not match a k x k conv"
    dtype = view.elem_types.get(data, 0)
    if dtype not in FLOAT_TYPES:
        name = helper.tensor_dtype_to_string(dtype).removeprefix("TensorProto.").lower()
        return f"input type {name} is not float or float16 (onnxruntime runs no other Conv)"
    chain = _chain(view, ctx, data, source.value)
    if chain is None:
        return "cannot follow the flatten chain"
    removed = [node.outputs[0]]
    output = node.outputs[0]
    if node.op_type == "MatMul":
        add = bias_add(node, Context(view, consts))
        if add is not None:
            removed.append(add.outputs[0])
            output = add.outputs[0]
    direct = all(step.op_type in PURE_RESHAPES for step in chain)
    source_shape = view.shape(source.value) or ()
    reshape_to: tuple[int, ...] = ()
    if direct:
        feed, bypass = source.value, False
        if finding.layout in CHANNELS_LAST:
            index = view.producer.get(source.value)
            producer = view.nodes[index] if index is not None else None
            perm = _channels_last_perm(rank + 2)
            if producer is not None and producer.op_type == "Transpose":
                got = tuple(int(p) for p in producer.attr("perm", ()) or ())
                if got == perm and producer.inputs[0] in main_outputs | set(view.graph_inputs):
                    feed, bypass = producer.inputs[0], True
    else:
        feed, bypass = data, False
        reshape_to = tuple(int(d) for d in source_shape[1:])  # ints: _walk checked them
    if feed not in main_outputs and feed not in view.graph_inputs:
        return f"its input {feed!r} is computed inside a model-local function"
    return _Plan(finding, node.outputs[0], tuple(removed), output, feed, reshape_to, bypass, dtype)


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
    plan: _Plan, opset: int, names: _Names, rng: np.random.Generator
) -> tuple[list[NodeProto], list[TensorProto]]:
    """The nodes and initializers of one drop-in block."""
    finding = plan.finding
    node, layout = finding.node, finding.layout
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


def _remove_dead(graph: GraphProto, seeds: Iterable[str]) -> None:
    """Delete nodes and initializers that only fed the removed layers (never anything else)."""
    cone = set(seeds)
    while True:
        used = _used_names(graph)
        dead = [
            index
            for index, node in enumerate(graph.node)
            if any(out in cone for out in node.output)
            and not any(out in used for out in node.output if out)
        ]
        if not dead:
            break
        for index in reversed(dead):
            cone.update(name for name in graph.node[index].input if name)
            del graph.node[index]
    used = _used_names(graph)
    drop = {t.name for t in graph.initializer if t.name in cone and t.name not in used}
    kept = [t for t in graph.initializer if t.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [v for v in graph.input if v.name not in drop]
    del graph.input[:]
    graph.input.extend(inputs)
    defined = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    for node in graph.node:
        defined.update(node.output)
    infos = [v for v in graph.value_info if v.name in defined]
    del graph.value_info[:]
    graph.value_info.extend(infos)


def _rewrite(model: ModelProto, plans: list[_Plan], seed: int) -> None:
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


def _tensor_bytes(model: ModelProto) -> int:
    total = 0
    for tensor in iter_tensors(model):
        total += len(tensor.raw_data) + 8 * (
            len(tensor.float_data) + len(tensor.int32_data) + len(tensor.int64_data)
            + len(tensor.double_data) + len(tensor.uint64_data)
        )  # fmt: skip
    return total


def _save(model: ModelProto, path: Path) -> str:
    """Save embedded, or with one external data file next to it when over protobuf's limit."""
    if _tensor_bytes(model) < EXTERNAL_THRESHOLD:
        onnx.save_model(model, str(path))
        return ""
    data = f"{path.name}.data"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data,
        size_threshold=1024,
    )
    return data


def _check_target(source: Path, out: Path, force: bool) -> None:
    if out.exists() or out.is_symlink():
        if not force:
            raise UsageError(str(out), "already exists", "pass --force to overwrite it")
        if out.is_dir():
            raise UsageError(str(out), "is a folder", "pass a file name ending in .onnx")
        try:
            if out.resolve() == source.resolve() or os.path.samefile(out, source):
                raise UsageError(str(out), "is the input model", "write the candidate elsewhere")
        except OSError:
            pass
    if not out.parent.is_dir():
        raise UsageError(str(out), "its folder does not exist", "create the folder first")


def _verify_shapes(
    source: Path, candidate: Path, input_shapes: Mapping[str, tuple[int, ...]]
) -> str:
    """Run both models in onnxruntime; raise if the candidate does not match. Returns a note."""
    original = runtime_verify(source, input_shapes)
    new = runtime_verify(candidate, input_shapes)
    if not new.ok:
        if not original.ok:
            return f"onnxruntime runs neither the original nor the candidate: {new.error}"
        raise UnsupportedError(str(source), f"the candidate does not run: {new.error}")
    if not original.ok:
        return f"the original does not run in onnxruntime ({original.error}); candidate runs"
    before = {o.name: o.shape for o in original.outputs}
    after = {o.name: o.shape for o in new.outputs}
    if before != after:
        raise UnsupportedError(
            str(source), f"candidate outputs {after} differ from the original's {before}"
        )
    return f"runs in {new.runtime} with the original's output shapes"


def emit_candidate(
    path: str | os.PathLike[str],
    report: Report,
    out_path: str | os.PathLike[str],
    *,
    force: bool = False,
    seed: int = 0,
    run_check: bool = True,
) -> CandidateResult:
    """Write `out_path`: the model with every ONX101 dense layer replaced by the drop-in block.

    `report` is analyze(path)'s report (its findings, kernel and --input-shape settings are
    used). Raises UsageError if `out_path` exists (unless force) or there is nothing to
    replace, UnsupportedError if no flagged layer can be replaced or the candidate fails its
    checks (nothing is written then). `run_check` runs original and candidate in onnxruntime.
    """
    source, out = Path(path), Path(out_path)
    _check_target(source, out, force)
    findings = [f for f in report.findings if f.code == onx101.DENSE_ON_SPATIAL.code]
    if not findings:
        raise UsageError(str(source), "no ONX101 finding to replace", "nothing to emit")
    input_shapes = _input_shapes(report)
    try:
        view, consts = _view(source, input_shapes)
        model = load_model_for_reading(source)
    except AuditError as exc:
        exc.path = exc.path or str(source)
        raise
    main_outputs = {out_name for node in model.graph.node for out_name in node.output}
    plans: list[_Plan] = []
    skipped: list[tuple[str, str]] = []
    for finding in findings:
        plan = _plan(finding, view, consts, report, main_outputs)
        if isinstance(plan, str):
            skipped.append((finding.node, plan))
        else:
            plans.append(plan)
    if not plans:
        node, why = skipped[0]
        raise UnsupportedError(str(source), f"cannot replace {node!r}: {why}")
    _rewrite(model, plans, seed)
    replaced = [plan.finding for plan in plans]
    predicted = report.totals.params + sum(
        f.conv_weights + f.conv_bias - f.dense_weights - f.dense_bias for f in replaced
    )
    notes = [RETRAIN_NOTE]
    if skipped:
        notes.append(f"{len(skipped)} flagged layer(s) left as they are")
    work = Path(tempfile.mkdtemp(prefix=".onnx-audit-candidate-", dir=out.parent))
    try:
        temp = work / out.name
        data = _save(model, temp)
        del model
        if data and (out.parent / data).exists() and not force:
            raise UsageError(str(out.parent / data), "already exists", "pass --force")
        try:
            onnx.checker.check_model(str(temp), full_check=True)
        except Exception as exc:  # onnx raises ValidationError and others
            raise UnsupportedError(
                str(source), f"the candidate fails onnx.checker: {' '.join(str(exc).split())}"
            ) from None
        actual = analyze(temp, input_shapes=input_shapes, kernel=replaced[0].kernel)
        if actual.totals.params != predicted:
            raise UnsupportedError(
                str(source),
                f"the candidate has {actual.totals.params:,} params, predicted {predicted:,}",
            )
        if run_check:
            notes.append(_verify_shapes(source, temp, input_shapes))
        if data:
            os.replace(work / data, out.parent / data)
        os.replace(temp, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CandidateResult(
        path=str(out),
        predicted_params=predicted,
        actual_params=actual.totals.params,
        original_params=report.totals.params,
        replaced=tuple(f.node for f in replaced),
        skipped=tuple(skipped),
        external_data=data,
        notes=tuple(notes),
    )


__all__ = ["RETRAIN_NOTE", "CandidateResult", "emit_candidate"]
