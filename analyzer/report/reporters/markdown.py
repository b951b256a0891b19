"""`--format markdown`: a report for pull-request comments and GitHub job summaries.

Layout: a heading naming the model, the policy violations first when there are any, a totals
table, the per-layer table, then each finding with both sides of the trade (and the measured
latencies when the finding was priced). Names from the model are escaped so a `|`, `*`, `<` or
newline in a node name cannot break the table or inject markup.
"""

from __future__ import annotations

import math
import re

from analyzer.core.results import Finding, LayerTally, Pricing, Report, Violation
from analyzer.report.reporters import add_reporter
from analyzer.report.reporters.table import (
    GROUP_AT,
    LARGEST,
    groups,
    human_bytes,
    largest,
    saving_text,
    shape_text,
)

_ESCAPED = re.compile(r"([\\`*_\[\]|~])")
_BLOCK_START = re.compile(r"^([#+=-]|\d{1,9}[.)](?=\s|$))")


def escape(text: str) -> str:
    """Text safe inside a paragraph, a list item or a table cell (GitHub-flavoured markdown).

    Line breaks become spaces; `&`, `<`, `>` become entities (no raw HTML); the inline markers
    (backslash, backtick, `*`, `_`, brackets, `~`) and `|` are backslash-escaped, so a name can
    neither format text nor split a table row; a leading block marker (`#`, `-`, `+`, `=`, the
    `.` of `1.`) is escaped too, and outer whitespace dropped, so it stays text in a list item.
    """
    flat = " ".join(text.splitlines()).strip() if text else ""
    flat = _ESCAPED.sub(r"\\\1", flat)
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BLOCK_START.sub(lambda m: f"{m.group(0)[:-1]}\\{m.group(0)[-1]}", flat, count=1)


def code_block(text: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside `text`."""
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}\n{text}\n{fence}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(headers: list[str], align: list[str], rows: list[list[str]]) -> str:
    rule = ["---:" if side == "right" else "---" for side in align]
    return "\n".join([_row(headers), _row(rule), *(_row(row) for row in rows)])


def _ms(value: float) -> str:
    return f"{value:,.3f} ms" if math.isfinite(value) else "n/a"


def _times(value: float) -> str:
    return f"{value:,.1f}x" if math.isfinite(value) else "n/a"


def _violations(violations: tuple[Violation, ...]) -> str:
    lines = [f"### Policy violations ({len(violations)})", ""]
    for violation in violations:
        where = f" on {escape(violation.node)}" if violation.node else ""
        lines.append(
            f"- :x: **{escape(violation.policy)}**{where}: measured {escape(violation.measured)}, "
            f"limit {escape(violation.limit)}. {escape(violation.message)}"
        )
    return "\n".join(lines)


def _totals(report: Report) -> str:
    t = report.totals
    rows = [
        ["Total params", f"{t.params:,}"],
        ["Trainable params", f"{t.trainable:,}"],
        ["Non-trainable params", f"{t.non_trainable:,}"],
        ["Weight bytes", f"{t.param_bytes:,} ({escape(human_bytes(t.param_bytes))})"],
        [
            "Quantization constants",
            f"{t.quantization_constants:,} ({escape(human_bytes(t.quantization_bytes))})",
        ],
        ["Other constants", f"{t.other_constants:,} ({escape(human_bytes(t.other_bytes))})"],
    ]
    if t.unknown_weights:
        rows.append(["Unknown weights (graph inputs)", f"{t.unknown_weights:,}"])
    rows.append(
        [
            "Stored",
            f"{t.stored_tensors:,} tensors, {t.stored_elements:,} elements, "
            f"{escape(human_bytes(t.stored_bytes))}",
        ]
    )
    rows.append(["MACs", escape(str(t.macs))])
    lines = ["### Totals", "", _table(["", "count"], ["left", "right"], rows)]
    if any(layer.shared for layer in report.layers):
        lines += ["", "Shared tensors are counted once in the totals, on every row that uses them."]
    return "\n".join(lines)


def _layer_row(layer: LayerTally) -> list[str]:
    output = layer.output_shapes[0] if layer.output_shapes else None
    return [
        escape(layer.name),
        escape(layer.qualified_op),
        escape(shape_text(output)),
        f"{layer.params:,}",
        escape(str(layer.macs)),
        "shared" if layer.shared else "",
    ]


def _layers(layers: tuple[LayerTally, ...]) -> str:
    if not layers:
        return "### Layers\n\nNo layer has weights or MACs."
    table = _table(
        ["Layer", "Op", "Output shape", "Params", "MACs", "Shared"],
        ["left", "left", "left", "right", "right", "left"],
        [_layer_row(layer) for layer in layers],
    )
    return f"### Layers ({len(layers)})\n\n{table}"


def _pricing(pricing: Pricing) -> list[str]:
    rows = [
        ["dense (as is)", _ms(pricing.dense_ms), _ms(pricing.dense_ms_batch)],
        ["conv replacement", _ms(pricing.conv_ms), _ms(pricing.conv_ms_batch)],
    ]
    return [
        "",
        f"Measured latency on {escape(pricing.machine)} with {escape(pricing.runtime)}:",
        "",
        _table(["", "batch 1", f"batch {pricing.batch:,}"], ["left", "right", "right"], rows),
    ]


def _finding(finding: Finding) -> str:
    """A finding as its rule tells it: the trade as a table, then the rule's detail lines."""
    summary = finding.detail.summary() if finding.detail is not None else ""
    lines = [
        f"#### {escape(finding.code)} {escape(finding.rule)}: {escape(finding.node)}",
        "",
        f"{escape(finding.op_type)}{', ' + escape(summary) if summary else ''}; "
        f"confidence {escape(finding.confidence)}.",
        "",
        escape(finding.message),
    ]
    sides = finding.detail.sides() if finding.detail is not None else ()
    if sides:
        rows = [
            [escape(s.label), f"{s.weights:,}", f"{s.bias:,}", escape(str(s.macs))] for s in sides
        ]
        headers = ["", "weights", "bias", "MACs"]
        lines += ["", _table(headers, ["left", "right", "right", "right"], rows)]
    details = finding.detail.lines() if finding.detail is not None else ()
    if details:
        lines.append("")
        lines += [f"- **{escape(label)}**: {escape(text)}" for label, text in details]
    if finding.pricing is not None:
        lines += _pricing(finding.pricing)
    return "\n".join(lines)


def _group(findings: list[Finding]) -> str:
    """A rule with many findings as one block: count, total saving, the five largest."""
    first = findings[0]
    rows = [
        [escape(f.node), escape(f.op_type), escape(f.detail.summary() if f.detail else ""),
         f"{f.params_saved:,}", escape(str(f.macs_delta))]
        for f in largest(findings)
    ]  # fmt: skip
    headers = ["Node", "Op", "Shape", "Params saved", "MACs change"]
    lines = [
        f"#### {escape(first.code)} {escape(first.rule)}",
        "",
        escape(saving_text(findings)) + ". The largest:",
        "",
        _table(headers, ["left", "left", "left", "right", "right"], rows),
    ]
    if len(findings) > LARGEST:
        lines += ["", f"{len(findings) - LARGEST} more in `--format json` or `--format sarif`."]
    return "\n".join(lines)


def _findings(findings: tuple[Finding, ...]) -> list[str]:
    parts: list[str] = []
    for _, found in groups(findings):
        if len(found) >= GROUP_AT:
            parts.append(_group(found))
        else:
            parts.extend(_finding(finding) for finding in found)
    return parts


@add_reporter("markdown", "Markdown for pull-request comments and GitHub job summaries")
def render_markdown(report: Report) -> str:
    info = report.model
    opsets = ", ".join(f"{escape(d)} {v}" for d, v in info.opsets) or "none"
    parts = [
        f"## onnx-audit: {escape(report.path)}",
        f"IR {info.ir_version}, opsets: {opsets}, producer: {escape(info.producer) or '?'}; "
        f"{info.nodes:,} nodes, {len(report.layers):,} layers with weights or MACs.",
    ]
    if report.violations:
        parts.append(_violations(report.violations))
    parts.append(_totals(report))
    parts.append(_layers(report.layers))
    if report.findings:
        parts.append(f"### Findings ({len(report.findings)})")
        parts.extend(_findings(report.findings))
    else:
        parts.append("### Findings\n\nNone.")
    if report.warnings:
        items = "\n".join(f"- {escape(warning)}" for warning in report.warnings)
        summary = f"<summary>Warnings ({len(report.warnings)})</summary>"
        parts.append(f"<details>{summary}\n\n{items}\n\n</details>")
    return "\n\n".join(parts) + "\n"
