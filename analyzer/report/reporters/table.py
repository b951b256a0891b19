"""The terminal report: a Keras-style summary table, totals, then each finding in words."""

from __future__ import annotations

import re

from tabulate import tabulate

from analyzer.core.errors import escape_controls
from analyzer.core.results import Finding, Report, Shape
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import add_reporter
from analyzer.report.reporters.aliases import poly_text
from analyzer.report.reporters.expressions import TIMES
from analyzer.report.reporters.layout import current, paint_part, wrap_lines
from analyzer.report.reporters.tableview import LayerBlock, layer_block
from analyzer.report.reporters.weightview import weight_lines


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{count} B"


def shape_text(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(str(d) for d in shape) + ")"


GROUP_AT = 3
"""A rule with this many findings or more is shown as one block (JSON and SARIF keep them all)."""
LARGEST = 5


def heading(finding: Finding) -> str:
    """`node (op, summary)`: the finding's node and what its rule says about it in brief."""
    summary = finding.detail.summary() if finding.detail is not None else ""
    return f"{finding.node} ({finding.op_type}{', ' + summary if summary else ''})"


def finding_lines(finding: Finding) -> list[str]:
    """A finding in plain words: its heading, then the detail lines its rule gives."""
    lines = [f"{finding.code} {finding.rule}: {heading(finding)}, confidence {finding.confidence}"]
    if finding.detail is not None:
        lines += [f"  {label:<10} {text}" for label, text in finding.detail.lines()]
    else:
        lines.append(f"  {finding.message}")
    return [*lines, *pricing_lines(finding)]


def groups(findings: tuple[Finding, ...]) -> list[tuple[str, list[Finding]]]:
    """Findings by rule code, in order of first appearance."""
    by_code: dict[str, list[Finding]] = {}
    for finding in findings:
        by_code.setdefault(finding.code, []).append(finding)
    return list(by_code.items())


def largest(findings: list[Finding]) -> list[Finding]:
    """The findings that save the most parameters, largest first (ties in graph order)."""
    return sorted(findings, key=lambda f: -f.params_saved)[:LARGEST]


def saving_text(findings: list[Finding]) -> str:
    """`N findings, P fewer params in total, MACs +/-M` for a rule's block (the parts that are
    not zero)."""
    saved = sum(f.params_saved for f in findings)
    parts = [f"{len(findings)} findings"]
    if saved:
        parts.append(f"{saved:,} fewer params in total")
    if Poly.total(f.macs_delta for f in findings) != Poly():
        parts.append(f"MACs {macs_change(findings)}")
    return ", ".join(parts)


def macs_change(findings: list[Finding]) -> str:
    """The summed MAC change, signed once and factored: `-batch·(1,172,736·u12 + ...)`, the
    onnx-made dims shortened as in the table's legend (`u12` for `unk__12`)."""
    macs = Poly.total(f.macs_delta for f in findings)
    negative = bool(macs.terms) and all(coeff < 0 for _, coeff in macs.terms)
    if negative:
        macs = Poly(tuple((symbols, -coeff) for symbols, coeff in macs.terms))
    text = re.sub(r"\bunk__(\d+)", r"u\1", poly_text(macs, factor=True))
    if len(macs.terms) > 1 and not text.endswith(")"):
        text = f"({text})"
    return ("-" if negative else "+") + text


def group_lines(findings: list[Finding]) -> list[str]:
    """A rule with many findings as one block: count, total saving, the five largest."""
    first = findings[0]
    lines = [f"{first.code} {first.rule}: {saving_text(findings)}"]
    for finding in largest(findings):
        saved = f": {finding.params_saved:,} fewer params" if finding.params_saved else ""
        lines.append(f"  {heading(finding)}{saved}")
    if len(findings) > LARGEST:
        lines.append(f"  ... {len(findings) - LARGEST} more (every one in --format json or sarif)")
    return lines


def findings_lines(findings: tuple[Finding, ...]) -> list[str]:
    """Each rule's findings: one by one, or one block when the rule has many."""
    lines: list[str] = []
    for _, found in groups(findings):
        if len(found) >= GROUP_AT:
            lines.extend(group_lines(found))
        else:
            for finding in found:
                lines.extend(finding_lines(finding))
    return lines


def pricing_lines(finding: Finding) -> list[str]:
    price = finding.pricing
    if price is None:
        return []
    return [
        f"  measured   batch 1: dense {price.dense_ms:.3f} ms vs conv {price.conv_ms:.3f} ms; "
        f"batch {price.batch}: dense {price.dense_ms_batch:.3f} ms "
        f"vs conv {price.conv_ms_batch:.3f} ms",
        f"             ({price.runtime} on {price.machine})",
    ]


def verification_lines(report: Report) -> list[str]:
    check = report.verification
    if check is None:
        return []
    if not check.ok:
        return [f"onnxruntime: FAILED ({check.runtime}): {check.error}"]
    lines = [f"onnxruntime: ran once on seeded random inputs ({check.runtime})"]
    for out in check.outputs:
        verdict = "matches" if out.matches else f"expected {shape_text(out.expected)}"
        bad = f", {out.nan} NaN, {out.inf} Inf" if out.nan or out.inf else ""
        lines.append(f"  {out.name}: {shape_text(out.shape)} {out.dtype}, {verdict}{bad}")
    return lines


def simple_table(rows: list[list[str]], headers: list[str], align: tuple[str, ...]) -> str:
    """tabulate's "simple" format, written directly when every cell is plain printable text.

    tabulate spends about 30 µs a row (1.5 s for a 50,000-layer model); plain cells need only
    widths and padding. Cells with line breaks, escape codes or other than ASCII and "·" go to
    tabulate, which knows how to measure them, and so does an empty table.
    """
    cells = [[cell.strip() for cell in row] for row in rows]
    text = "".join(cell for row in cells for cell in row)
    if not rows or not (text.replace("·", "").isascii() and text.isprintable()):
        return tabulate(
            rows, headers=headers, tablefmt="simple", disable_numparse=True, colalign=align
        )
    widths = [len(header) + 2 for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(row: list[str]) -> str:
        padded = (
            cell.ljust(width) if side == "left" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, cells)])


def _head(report: Report, block: LayerBlock) -> list[str]:
    """The model's name, versions and size, and the layer table's depth note."""
    info = report.model
    opsets = ", ".join(f"{d} {v}" for d, v in info.opsets)
    head = [f"Model: {report.path}"]
    head.append(f"  ir {info.ir_version}, opsets: {opsets}, producer: {info.producer or '?'}")
    head.append(f"  {info.nodes:,} nodes, {len(report.layers):,} layers with weights or MACs")
    if block.depth_note:
        head.append(block.depth_note)
    return head


def _totals(report: Report, block: LayerBlock) -> list[str]:
    """The totals under the layer table: params, constants, stored tensors, MACs."""
    t = report.totals
    totals = [
        f"Total params: {t.params:,} ({human_bytes(t.param_bytes)})",
        f"Trainable params: {t.trainable:,}",
        f"Non-trainable params: {t.non_trainable:,}",
    ]
    if t.quantization_constants:
        quant = f"{t.quantization_constants:,} ({human_bytes(t.quantization_bytes)})"
        totals.append(f"Quantization constants: {quant}")
    totals.append(f"Other constants: {t.other_constants:,} ({human_bytes(t.other_bytes)})")
    if t.unknown_weights:
        totals.append(f"Unknown weights (graph inputs): {t.unknown_weights:,}")
    totals.append(
        f"Stored: {t.stored_tensors:,} tensors, {t.stored_elements:,} elements, "
        f"{human_bytes(t.stored_bytes)}"
    )
    totals.extend(block.macs)
    if any(layer.shared for layer in report.layers):
        totals.append("Shared tensors are counted once in the totals, on every row that uses them.")
    return totals


def _closing_parts(report: Report) -> list[str]:
    """The findings, notes, warnings and policy violations, one part each when present."""
    parts = []
    if report.findings:
        lines = [f"Findings ({len(report.findings)}):", *findings_lines(report.findings)]
        parts.append(_block(lines))
    else:
        parts.append("Findings: none")
    if report.notes:
        parts.append(_block(["Notes:", *(f"  - {n}" for n in report.notes)]))
    if report.warnings:
        parts.append(_block(["Warnings:", *(f"  - {w}" for w in report.warnings)]))
    if report.violations:
        lines = [f"Policy violations ({len(report.violations)}):"]
        lines += [f"  - {v.policy}: {v.message}" for v in report.violations]
        parts.append(_block(lines))
    return parts


@add_reporter(
    "table", "terminal summary, like Keras' model.summary() (default)", shows_violations=True
)
def render_table(report: Report) -> str:
    view = current()
    block = layer_block(report, view)
    parts = [_block(_head(report, block)), "\n".join(block.table)]
    if block.legend:
        parts.append(_block(block.legend))
    parts.append(_block(_totals(report, block)))
    if report.verification is not None:
        parts.append(_block(verification_lines(report)))
    if report.weights is not None:
        parts.append(_block(weight_lines(report)))
    parts.extend(_closing_parts(report))
    if view.color:
        parts = [paint_part(part) for part in parts]
    return "\n\n".join(parts) + "\n"


def _block(lines: list[str]) -> str:
    """Lines that quote names from the file: escape codes and line breaks in them are shown
    escaped, never sent to the terminal (a hostile name could clear the screen). Prose is
    wrapped to the view's width."""
    limit = current().width
    plain = [escape_controls(line).replace("·", TIMES) for line in lines]  # rules' formulas
    return "\n".join(wrap_lines(plain, limit))
