"""Diff views of their own for table, JSON, JSON Lines, Markdown and CSV; the registry gives
the other formats the new model's report holding only the new findings and the violations."""

from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

from analyzer.core.results import DiffReport, LayerDelta
from analyzer.report.reporters import add_diff_view
from analyzer.report.reporters.table import findings_lines
from analyzer.report.serialize import to_data


def _signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def _changed(diff: DiffReport) -> list[LayerDelta]:
    return [d for d in diff.layers if d.status != "same"]


def _totals_rows(diff: DiffReport) -> list[list[str]]:
    old, new = diff.old.totals, diff.new.totals
    rows = []
    for label, a, b in (
        ("params", old.params, new.params),
        ("trainable", old.trainable, new.trainable),
        ("non-trainable", old.non_trainable, new.non_trainable),
        ("stored bytes", old.stored_bytes, new.stored_bytes),
    ):
        rows.append([label, f"{a:,}", f"{b:,}", _signed(b - a)])
    rows.append(["MACs", str(old.macs), str(new.macs), ""])
    return rows


def _layer_rows(diff: DiffReport) -> list[list[str]]:
    return [
        [d.status, d.old_name or "-", d.new_name or "-", d.op_type, f"{d.old_params:,}",
         f"{d.new_params:,}", _signed(d.delta), d.matched_by]
        for d in _changed(diff)
    ]  # fmt: skip


LAYER_HEADERS = [
    "status",
    "old layer",
    "new layer",
    "op",
    "old params",
    "new params",
    "delta",
    "matched by",
]


@add_diff_view("table")
def _table(diff: DiffReport) -> str:
    growth = diff.growth
    parts = [
        f"Diff: {diff.old.path} -> {diff.new.path}"
        + (f"  (params {growth:+.2%})" if growth is not None else ""),
        tabulate(_totals_rows(diff), headers=["", "old", "new", "delta"], disable_numparse=True),
    ]
    rows = _layer_rows(diff)
    parts.append(
        tabulate(rows, headers=LAYER_HEADERS, disable_numparse=True)
        if rows
        else "Layers: no change"
    )
    for title, findings in (
        ("New findings", diff.new_findings),
        ("Fixed findings", diff.fixed_findings),
    ):
        lines = [f"{title} ({len(findings)}):"] if findings else [f"{title}: none"]
        lines.extend(findings_lines(findings))
        parts.append("\n".join(lines))
    if diff.violations:
        parts.append(
            "\n".join(["Policy violations:", *(f"  - {v.message}" for v in diff.violations)])
        )
    return "\n\n".join(parts) + "\n"


@add_diff_view("markdown")
def _markdown(diff: DiffReport) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"## onnx-audit diff: `{diff.old.path}` → `{diff.new.path}`", ""]
    for violation in diff.violations:
        out.append(f"- :x: **{violation.policy}**: {violation.message}")
    if diff.violations:
        out.append("")
    out += [row(["", "old", "new", "delta"]), row(["---"] * 4)]
    out += [row(r) for r in _totals_rows(diff)]
    rows = _layer_rows(diff)
    if rows:
        out += ["", row(LAYER_HEADERS), row(["---"] * len(LAYER_HEADERS)), *(row(r) for r in rows)]
    for title, findings in (
        ("New findings", diff.new_findings),
        ("Fixed findings", diff.fixed_findings),
    ):
        out += ["", f"**{title}: {len(findings)}**"]
        out += [f"- `{f.code}` {f.node}: {f.message}" for f in findings]
    return "\n".join(out) + "\n"


@add_diff_view("csv")
def _csv(diff: DiffReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "status",
            "old_layer",
            "new_layer",
            "op_type",
            "old_params",
            "new_params",
            "delta",
            "matched_by",
        ]
    )
    for d in diff.layers:
        writer.writerow(
            [
                d.status,
                d.old_name,
                d.new_name,
                d.op_type,
                d.old_params,
                d.new_params,
                d.delta,
                d.matched_by,
            ]
        )
    return buffer.getvalue()


def _data(diff: DiffReport) -> dict[str, object]:
    return {
        "format_version": diff.format_version,
        "kind": "diff",
        "old": diff.old.path,
        "new": diff.new.path,
        "growth": diff.growth,
        "totals": {"old": to_data(diff.old.totals), "new": to_data(diff.new.totals)},
        "layers": [to_data(d) | {"delta": d.delta} for d in diff.layers],
        "new_findings": to_data(diff.new_findings),
        "fixed_findings": to_data(diff.fixed_findings),
        "violations": to_data(diff.violations),
    }


@add_diff_view("json")
def _json(diff: DiffReport) -> str:
    return json.dumps(_data(diff), indent=2, ensure_ascii=False) + "\n"


@add_diff_view("jsonl")
def _jsonl(diff: DiffReport) -> str:
    return json.dumps(_data(diff), ensure_ascii=False) + "\n"


@add_diff_view("html")
def _html(diff: DiffReport) -> str:
    from analyzer.report.reporters.html import render_html_diff  # noqa: PLC0415  (html only)

    return render_html_diff(diff)
