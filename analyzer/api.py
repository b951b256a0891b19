"""`analyze(path) -> Report`: the whole pipeline, one direction, no printing.

`analyze_with_debug` returns the rules' debug trail beside the report."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import NamedTuple

from analyzer.core.errors import AuditError
from analyzer.core.onnxproto import ModelProto
from analyzer.core.results import LayerTally, ModelInfo, Report
from analyzer.core.tensorstats import TensorStats
from analyzer.count.accounting import account
from analyzer.count.notes import exporter_notes, head_candidates, output_heads
from analyzer.count.visitors import Context, fallback, lookup
from analyzer.count.visitors.base import Visitor
from analyzer.count.weights import Constants
from analyzer.read import loader
from analyzer.read.functions import inline_local_functions
from analyzer.read.order import sort_graphs
from analyzer.read.values.audit import Inspection, inspect_values
from analyzer.read.values.spectrum import energy_reader
from analyzer.rules import Options, Rule, RuleContext, run
from analyzer.view import shapes
from analyzer.view.graph import build
from analyzer.view.inputshapes import apply_input_shapes
from analyzer.view.model import ModelView


class Traced(NamedTuple):
    """A report and the rules' debug trail: why nodes were not flagged (`--debug` prints it)."""

    report: Report
    debug: tuple[str, ...]


def analyze(
    path: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    kernel: int = 3,
    min_ratio: float = 2.0,
    separable_min_channels: int = 32,
    rank: int | None = None,
    strict: bool = False,
    rule_filter: Callable[[Rule], bool] | None = None,
    debug: list[str] | None = None,
    reader: str = "auto",
    sandbox: bool | None = None,
    inspect_weights: bool = False,
) -> Report:
    """Analyse one model file. Raises AuditError (with the path filled in) when it cannot.

    `reader` picks how the file is read ("plain", "skeleton", or "auto" by size); the Report
    is the same either way. `sandbox` False runs shape inference in this process (default:
    forked, unless ONNX_AUDIT_NO_SANDBOX=1), for debugging. `inspect_weights` also reads every
    stored tensor's values, streamed (external data after the safety checks of
    `read.external.checked_files`), into `Report.weights`, before the rules run: the weight
    rules (ONX201-ONX205) judge them, ONX103 and ONX104 use them. Without it no weight byte is
    read. `debug`, a list, is extended with the debug trail (kept for existing callers; see
    `analyze_with_debug`, which returns it).
    """
    report, trail = analyze_with_debug(
        path,
        input_shapes=input_shapes,
        kernel=kernel,
        min_ratio=min_ratio,
        separable_min_channels=separable_min_channels,
        rank=rank,
        strict=strict,
        rule_filter=rule_filter,
        reader=reader,
        sandbox=sandbox,
        inspect_weights=inspect_weights,
    )
    if debug is not None:
        debug.extend(trail)
    return report


def analyze_with_debug(
    path: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    kernel: int = 3,
    min_ratio: float = 2.0,
    separable_min_channels: int = 32,
    rank: int | None = None,
    strict: bool = False,
    rule_filter: Callable[[Rule], bool] | None = None,
    reader: str = "auto",
    sandbox: bool | None = None,
    inspect_weights: bool = False,
) -> Traced:
    """`analyze`, returning the report with its debug trail: `report, trail = ...`."""
    notes: list[str] = []
    try:
        with paused_gc():
            model = loader.load(path, reader)
            model, view, warnings = prepare(model, input_shapes or {}, sandbox)
            inspection = inspect_values(path, model) if inspect_weights else None
            report = _analyze(
                path,
                model,
                view,
                warnings,
                input_shapes or {},
                Options(
                    kernel=kernel,
                    min_ratio=min_ratio,
                    separable_min_channels=separable_min_channels,
                    rank=rank,
                ),
                strict,
                rule_filter,
                notes,
                inspection,
            )
    except AuditError as exc:
        if not exc.path:
            exc.path = str(path)
        raise
    return Traced(report, tuple(notes))


def with_weights(
    report: Report, inspection: Inspection, weights: tuple[TensorStats, ...]
) -> Report:
    """The report with every stored tensor's value statistics (`weights`, tied to their
    layers); tensors that could not be read become warnings."""
    unread = [f"weights: tensor {t.name!r} not read: {t.reason}" for t in inspection.unread]
    return replace(
        report,
        weights=weights,
        unread_weights=inspection.unread,
        warnings=tuple(dict.fromkeys((*report.warnings, *unread))),
        settings=(*report.settings, ("inspect_weights", "true")),
    )


def tied_to_layers(
    tensors: tuple[TensorStats, ...], layers: tuple[LayerTally, ...]
) -> tuple[TensorStats, ...]:
    """Each tensor's statistics with the names of the layers that use it."""
    users: dict[str, list[str]] = {}
    for layer in layers:
        for weight in layer.weights:
            names = users.setdefault(weight.tensor, [])
            if layer.name not in names:
                names.append(layer.name)
    return tuple(replace(stats, layers=tuple(users.get(stats.name, ()))) for stats in tensors)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector off for a stretch that builds many objects.

    A 50,000-node graph makes hundreds of thousands of records and protobuf wrappers, none in
    reference cycles; the collector's repeated passes over all of them cost seconds. Reference
    counting still frees everything; the previous state is restored after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def prepare(
    model: ModelProto, input_shapes: Mapping[str, tuple[int, ...]], sandbox: bool | None = None
) -> tuple[ModelProto, ModelView, list[str]]:
    """Skeleton -> the model and its view: functions inlined, nodes sorted, shapes inferred.

    Modifies `model` in place; the one place this sequence is written (analyze, the candidate
    writer). Shape inference runs in a child while the view's nodes are built.
    """
    inline_local_functions(model)
    unsorted = sort_graphs(model)
    apply_input_shapes(model, input_shapes)
    inference = shapes.Inference(model, sandbox)
    try:
        view = build(model, lambda: inference.result()[0])
    finally:
        inference.close()
    warnings = list(inference.result()[1])
    if unsorted:
        warnings.insert(
            0,
            f"nodes of {unsorted} graph(s) were not in topological order: sorted, keeping the "
            "file's order wherever it was valid",
        )
    return model, view, warnings


def _analyze(  # noqa: PLR0917  (private; analyze() is the keyword-only front)
    path: str | os.PathLike[str],
    model: ModelProto,
    view: ModelView,
    warnings: list[str],
    input_shapes: Mapping[str, tuple[int, ...]],
    options: Options,
    strict: bool,
    rule_filter: Callable[[Rule], bool] | None,
    notes: list[str],
    inspection: Inspection | None = None,
) -> Report:
    consts = Constants(view)
    ctx = Context(view, consts, strict, list(warnings) + list(view.warnings))
    layers, totals = account(view, _tallies(view, consts, ctx))
    by_name = {layer.name: layer for layer in layers}
    weights = tied_to_layers(inspection.tensors, layers) if inspection is not None else None
    rule_ctx = RuleContext(
        view,
        consts,
        by_name,
        options,
        notes,
        totals.params,
        weights=None if weights is None else {t.name: t for t in weights},
        energy=None if inspection is None else energy_reader(path, model),
    )
    findings = run(rule_ctx, rule_filter)
    report = Report(
        path=str(path),
        model=_model_info(model, view),
        layers=layers,
        findings=findings,
        totals=totals,
        warnings=tuple(dict.fromkeys(ctx.warnings)),
        notes=exporter_notes(layers, output_heads(view, head_candidates(layers))),
        settings=_settings(options, input_shapes),
    )
    if inspection is None or weights is None:
        return report
    return with_weights(report, inspection, weights)


def _tallies(view: ModelView, consts: Constants, ctx: Context) -> list[LayerTally]:
    """Every node's visitor, in order; constant and shape-computing nodes hold no layer."""
    tallies: list[LayerTally] = []
    held = consts.const | consts.shape_like  # a node writing one of these is no layer
    held.discard("")
    visitors: dict[tuple[str, str], Visitor] = {}  # the registry's answer, per op
    for node in view.nodes:
        if node.op_type == "Constant" or not held.isdisjoint(node.outputs):
            continue
        key = (node.domain, node.op_type)
        visitor = visitors.get(key)
        if visitor is None:
            visitor = visitors[key] = lookup(node.domain, node.op_type) or fallback
        tallies.extend(visitor(node, ctx))
    return tallies


def _settings(
    options: Options, input_shapes: Mapping[str, tuple[int, ...]]
) -> tuple[tuple[str, str], ...]:
    """The settings the report was made with, as `Report.settings` records them."""
    settings: tuple[tuple[str, str], ...] = (
        ("kernel", str(options.kernel)),
        ("min_ratio", str(options.min_ratio)),
        ("separable_min_channels", str(options.separable_min_channels)),
        ("rank", "auto" if options.rank is None else str(options.rank)),
    )
    return settings + tuple(
        (f"input_shape:{n}", ",".join(map(str, d))) for n, d in input_shapes.items()
    )


def _model_info(model: ModelProto, view: ModelView) -> ModelInfo:
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    opsets = tuple(sorted((o.domain or "ai.onnx", o.version) for o in model.opset_import))
    return ModelInfo(
        ir_version=model.ir_version,
        producer=producer,
        opsets=opsets,
        graph_name=model.graph.name,
        nodes=len(view.nodes),
        inputs=tuple((name, view.shape(name)) for name in view.graph_inputs),
        outputs=tuple((name, view.shape(name)) for name in view.graph_outputs),
    )
