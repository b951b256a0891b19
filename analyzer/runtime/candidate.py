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
from onnx import ModelProto

from analyzer.api import analyze
from analyzer.core.errors import AuditError, UnsupportedError, UsageError
from analyzer.core.protowalk import iter_tensors
from analyzer.core.results import Finding, Report
from analyzer.rules import dense_on_spatial as onx101
from analyzer.runtime.plan import (
    replacement_plan,
    rule_view,
)
from analyzer.runtime.reading import load_model_for_reading
from analyzer.runtime.surgery import Plan, rewrite
from analyzer.runtime.verify import verify as runtime_verify
from analyzer.view.model import ModelView

RETRAIN_NOTE = (
    "the candidate's new conv weights are random (seeded He-normal): it is an architectural "
    "change, not an equivalent rewrite, and must be retrained before use"
)
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
) -> tuple[ModelView, ModelProto]:
    """The source's view (for planning) and its model (to rewrite)."""
    try:
        view = rule_view(source, input_shapes, sandbox)
        model = load_model_for_reading(source)
    except AuditError as exc:
        exc.path = exc.path or str(source)
        raise
    return view, model


def _plans(
    source: Path,
    findings: list[Finding],
    view: ModelView,
    report: Report,
    *,
    model: ModelProto,
) -> tuple[list[Plan], list[tuple[str, str]]]:
    """A plan for each replaceable finding, (node, why) for each other; raises if none is."""
    main_outputs = {out_name for node in model.graph.node for out_name in node.output}
    plans: list[Plan] = []
    skipped: list[tuple[str, str]] = []
    for finding in findings:
        plan = replacement_plan(finding, view, report, main_outputs)
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
    view, model = _load(source, input_shapes, sandbox)
    plans, skipped = _plans(source, findings, view, report, model=model)
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
