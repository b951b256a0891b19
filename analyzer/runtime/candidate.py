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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import ModelProto, TensorProto, helper

from analyzer.api import analyze, prepare
from analyzer.core.errors import AuditError, UnsupportedError, UsageError
from analyzer.core.protowalk import iter_tensors
from analyzer.core.results import Finding, Report
from analyzer.count.visitors import Context
from analyzer.count.visitors.linear import bias_add
from analyzer.count.weights import Constants
from analyzer.read import loader
from analyzer.rules import Options, RuleContext, trace
from analyzer.rules import dense_on_spatial as onx101
from analyzer.rules.dense import dense_shape
from analyzer.runtime.reading import load_model_for_reading
from analyzer.runtime.surgery import CHANNELS_FIRST, CHANNELS_LAST, Plan, rewrite
from analyzer.runtime.verify import verify as runtime_verify
from analyzer.view.model import ModelView, NodeView

RETRAIN_NOTE = (
    "the candidate's new conv weights are random (seeded He-normal): it is an architectural "
    "change, not an equivalent rewrite, and must be retrained before use"
)
REPLACEABLE = frozenset({("", "Gemm"), ("", "MatMul")})
PURE_RESHAPES = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16})
"""Element types the block is built in (onnxruntime's CPU provider has no double Conv)."""
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


def _input_shapes(report: Report) -> dict[str, tuple[int, ...]]:
    """The --input-shape fixes a report was made with, for callers that did not keep them."""
    fixed: dict[str, tuple[int, ...]] = {}
    for key, value in report.settings:
        if key.startswith("input_shape:"):
            fixed[key.split(":", 1)[1]] = tuple(int(d) for d in value.split(",") if d)
    return fixed


def _view(
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


def _plan(
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


def _load(
    source: Path, input_shapes: Mapping[str, tuple[int, ...]], sandbox: bool | None
) -> tuple[ModelView, Constants, ModelProto]:
    """The source's view and constants (for planning) and its model (to rewrite)."""
    try:
        view, consts = _view(source, input_shapes, sandbox)
        model = load_model_for_reading(source)
    except AuditError as exc:
        exc.path = exc.path or str(source)
        raise
    return view, consts, model


def _plans(
    source: Path,
    findings: list[Finding],
    view: ModelView,
    consts: Constants,
    report: Report,
    *,
    model: ModelProto,
) -> tuple[list[Plan], list[tuple[str, str]]]:
    """A plan for each replaceable finding, (node, why) for each other; raises if none is."""
    main_outputs = {out_name for node in model.graph.node for out_name in node.output}
    plans: list[Plan] = []
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
    return plans, skipped


def _check_candidate(
    source: Path,
    temp: Path,
    predicted: int,
    kernel: int,
    *,
    input_shapes: Mapping[str, tuple[int, ...]],
    sandbox: bool | None,
) -> Report:
    """The written candidate's report, after onnx.checker and the predicted params agree."""
    try:
        onnx.checker.check_model(str(temp), full_check=True)
    except Exception as exc:  # onnx raises ValidationError and others
        raise UnsupportedError(
            str(source), f"the candidate fails onnx.checker: {' '.join(str(exc).split())}"
        ) from None
    actual = analyze(temp, input_shapes=input_shapes, kernel=kernel, sandbox=sandbox)
    if actual.totals.params != predicted:
        raise UnsupportedError(
            str(source),
            f"the candidate has {actual.totals.params:,} params, predicted {predicted:,}",
        )
    return actual


def emit_candidate(
    path: str | os.PathLike[str],
    report: Report,
    out_path: str | os.PathLike[str],
    *,
    force: bool = False,
    seed: int = 0,
    run_check: bool = True,
    sandbox: bool | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> CandidateResult:
    """Write `out_path`: the model with every ONX101 dense layer replaced by the drop-in block.

    `report` is analyze(path)'s report (its findings, kernel and --input-shape settings are
    used). Raises UsageError if `out_path` exists (unless force) or there is nothing to
    replace, UnsupportedError if no flagged layer can be replaced or the candidate fails its
    checks (nothing is written then). `run_check` runs original and candidate in onnxruntime;
    `sandbox` and `input_shapes` are analyze()'s (default: the shapes in report.settings).
    """
    source, out = Path(path), Path(out_path)
    _check_target(source, out, force)
    findings = [f for f in report.findings if f.code == onx101.CODE]
    if not findings:
        raise UsageError(str(source), "no ONX101 finding to replace", "nothing to emit")
    if input_shapes is None:
        input_shapes = _input_shapes(report)
    view, consts, model = _load(source, input_shapes, sandbox)
    plans, skipped = _plans(source, findings, view, consts, report, model=model)
    rewrite(model, plans, seed)
    replaced = [plan.finding for plan in plans]
    trades = [onx101.detail(f) for f in replaced]
    predicted = report.totals.params + sum(
        t.conv_weights + t.conv_bias - t.dense_weights - t.dense_bias for t in trades
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
        actual = _check_candidate(
            source, temp, predicted, trades[0].kernel, input_shapes=input_shapes, sandbox=sandbox
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
