"""Price each ONX101 finding in onnxruntime: the dense layer as it is and the drop-in conv
block, built as two tiny standalone models with random weights, timed side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from analyzer.core.errors import UsageError
from analyzer.core.results import Finding, Pricing, Report
from analyzer.rules import dense_on_spatial as onx101
from analyzer.runtime.verify import import_onnxruntime, machine_name, one_line, open_session

MAX_PRICED_WEIGHTS = 2**28
"""Largest dense weight price_findings() materialises; a larger finding is left unpriced."""
PRICE_OPSET = 17
CODE_DENSE_ON_SPATIAL = onx101.CODE


def _io(name: str, dims: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _finding_input(finding: Finding) -> tuple[list[int], list[int]]:
    """(dense input dims without batch in the finding's layout, channels-first conv dims)."""
    detail = onx101.detail(finding)
    channels, spatial = detail.channels, list(detail.spatial)
    first = [channels, *spatial]
    if detail.layout in ("NHWC", "NLC"):
        return [*spatial, channels], first
    if detail.layout == "image":
        return spatial, first
    return first, first


def _model(nodes: list[onnx.NodeProto], inits: list[TensorProto], inp: Any, out: Any) -> bytes:
    graph = helper.make_graph(nodes, "priced", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", PRICE_OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def dense_model(finding: Finding, seed: int = 0) -> bytes:
    """x[B, <layout dims>] -> Flatten -> Gemm(weight [units, in_features], bias) -> [B, units]."""
    rng = np.random.default_rng(seed)
    dims, _ = _finding_input(finding)
    units, k = onx101.detail(finding).units, onx101.detail(finding).in_features
    weight = (rng.standard_normal((units, k)) / np.sqrt(k)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "dense.weight"),
        numpy_helper.from_array(np.zeros(units, np.float32), "dense.bias"),
    ]
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "dense.weight", "dense.bias"], ["y"], transB=1),
    ]
    return _model(nodes, inits, _io("x", ["B", *dims]), _io("y", ["B", units]))


def conv_attrs(kernel: int, rank: int) -> dict[str, Any]:
    """Same padding: symmetric pads for odd k, SAME_UPPER for even k."""
    attrs: dict[str, Any] = {"kernel_shape": [kernel] * rank}
    if kernel % 2:
        attrs["pads"] = [kernel // 2] * (2 * rank)
    else:
        attrs["auto_pad"] = "SAME_UPPER"
    return attrs


def conv_block_model(finding: Finding, seed: int = 0) -> bytes:
    """The drop-in block on channels-first input: Conv(k, units, same) -> GAP -> Flatten."""
    rng = np.random.default_rng(seed)
    _, dims = _finding_input(finding)
    detail = onx101.detail(finding)
    units, k, rank = detail.units, detail.kernel, len(detail.spatial)
    shape = (units, detail.channels, *([k] * rank))
    fan_in = detail.channels * k**rank
    weight = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "conv.weight"),
        numpy_helper.from_array(np.zeros(units, np.float32), "conv.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], **conv_attrs(k, rank)),
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("Flatten", ["g"], ["y"], axis=1),
    ]
    return _model(nodes, inits, _io("x", ["B", *dims]), _io("y", ["B", units]))


def time_run(run: Callable[[], object], budget_s: float, max_repeats: int = 1000) -> float:
    """Median milliseconds of `run` after warm-up; repeats adapt to fit in about budget_s."""
    start = time.perf_counter()
    run()  # warm-up: first run allocates and may compile kernels
    first = time.perf_counter() - start
    warmups = 1 if first > budget_s / 10 else 3
    for _ in range(warmups - 1):
        run()
    per_run = max(first if warmups == 1 else (time.perf_counter() - start) / warmups, 1e-6)
    repeats = max(3, min(max_repeats, int(budget_s / per_run)))
    samples: list[float] = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000.0)
    return float(statistics.median(samples))


def _runner(session: Any, feed: Mapping[str, Any]) -> Callable[[], object]:
    def run() -> object:
        return session.run(["y"], feed)

    return run


def price_finding(
    finding: Finding, *, batch: int = 32, budget_s: float = 0.25, seed: int = 0
) -> Pricing:
    """Time the dense layer and the drop-in block in onnxruntime at batch 1 and `batch`.

    Raises ValueError when the two models do not both produce [B, units] or the dense weight
    is too large to materialise.
    """
    units = onx101.detail(finding).units
    if units * onx101.detail(finding).in_features > MAX_PRICED_WEIGHTS:
        raise ValueError(f"dense weight over {MAX_PRICED_WEIGHTS:,} elements, not priced")
    ort = import_onnxruntime()
    rng = np.random.default_rng(seed)
    sessions = {
        "dense": (open_session(ort, dense_model(finding, seed)), _finding_input(finding)[0]),
        "conv": (open_session(ort, conv_block_model(finding, seed)), _finding_input(finding)[1]),
    }
    times: dict[tuple[str, int], float] = {}
    for size in (1, batch):
        for side, (session, dims) in sessions.items():
            feed = {"x": rng.standard_normal((size, *dims)).astype(np.float32)}
            (out,) = session.run(["y"], feed)
            if tuple(out.shape) != (size, units):
                raise ValueError(
                    f"{side} model gives {list(out.shape)}, expected [{size}, {units}]"
                )
            times[side, size] = time_run(_runner(session, feed), budget_s)
    return Pricing(
        batch=batch,
        dense_ms=times["dense", 1],
        conv_ms=times["conv", 1],
        dense_ms_batch=times["dense", batch],
        conv_ms_batch=times["conv", batch],
        machine=machine_name(),
        runtime=f"onnxruntime {ort.__version__} (CPUExecutionProvider)",
    )


def price_findings(
    report: Report, *, batch: int = 32, budget_s: float = 0.25, seed: int = 0
) -> Report:
    """The report with every ONX101 finding priced (Finding.pricing); others unchanged.

    Each side is timed for about `budget_s` per batch size (so ~0.5 s per side by default).
    A finding that cannot be priced keeps pricing=None and adds a warning.
    """
    if batch < 1:
        raise UsageError("", f"pricing batch must be >= 1, got {batch}")
    findings: list[Finding] = []
    warnings = list(report.warnings)
    for finding in report.findings:
        if finding.code != CODE_DENSE_ON_SPATIAL:
            findings.append(finding)
            continue
        try:
            pricing = price_finding(finding, batch=batch, budget_s=budget_s, seed=seed)
        except Exception as exc:  # onnxruntime errors have no common base class
            if isinstance(exc, UsageError):
                raise
            warnings.append(f"{finding.code} {finding.node}: not priced: {one_line(exc)}")
            findings.append(finding)
            continue
        findings.append(replace(finding, pricing=pricing))
    return replace(report, findings=tuple(findings), warnings=tuple(dict.fromkeys(warnings)))


__all__ = ["conv_block_model", "dense_model", "price_finding", "price_findings"]
