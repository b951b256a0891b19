"""The terminal report: a Keras-style summary table, totals, then each finding in words."""

from __future__ import annotations

from tabulate import tabulate

from analyzer.core.errors import escape_controls
from analyzer.core.results import Finding, Report, Shape
from analyzer.report.reporters import add_reporter
from analyzer.report.reporters.layout import current, paint_part, wrap_lines
from analyzer.report.reporters.tableview import layer_block
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


def finding_lines(finding: Finding) -> list[str]:
    """A finding in plain words, both sides of the trade."""
    window = "x".join([str(finding.kernel)] * len(finding.spatial))
    spatial = "x".join(str(d) for d in finding.spatial)
    ratio_macs = finding.conv_macs / finding.dense_macs if finding.dense_macs else 0.0
    return [
        f"{finding.code} {finding.rule}: {finding.node} ({finding.op_type}, "
        f"{finding.in_features:,} -> {finding.units:,}), confidence {finding.confidence}",
        f"  input      flattened {finding.channels} channel{'s' if finding.channels != 1 else ''} "
        f"x {spatial} positions "
        f"({finding.layout})",
        f"  dense      {finding.dense_weights:,} weights + {finding.dense_bias:,} bias"
        f"   {finding.dense_macs:,} MACs",
        f"  conv {window:<5} {finding.conv_weights:,} weights + {finding.conv_bias:,} bias"
        f"   {finding.conv_macs:,} MACs ({finding.units:,} filters)",
        f"  trade      {finding.ratio:.1f}x fewer weights for {ratio_macs:.1f}x the MACs "
        "(per sample)",
        f"  drop-in    {finding.replacement}",
        *pricing_lines(finding),
        "  note       an architectural change: the replacement must be retrained",
    ]


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


@add_reporter("table", "terminal summary, like Keras' model.summary() (default)")
def render_table(report: Report) -> str:
    info = report.model
    opsets = ", ".join(f"{d} {v}" for d, v in info.opsets)
    head = [f"Model: {report.path}"]
    head.append(f"  ir {info.ir_version}, opsets: {opsets}, producer: {info.producer or '?'}")
    head.append(f"  {info.nodes:,} nodes, {len(report.layers):,} layers with weights or MACs")
    view = current()
    block = layer_block(report, view)
    if block.depth_note:
        head.append(block.depth_note)
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
    parts = [_block(head), "\n".join(block.table)]
    if block.legend:
        parts.append(_block(block.legend))
    parts.append(_block(totals))
    if report.verification is not None:
        parts.append(_block(verification_lines(report)))
    if report.weights is not None:
        parts.append(_block(weight_lines(report)))
    if report.findings:
        lines = [f"Findings ({len(report.findings)}):"]
        for finding in report.findings:
            lines.extend(finding_lines(finding))
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
    if view.color:
        parts = [paint_part(part) for part in parts]
    return "\n\n".join(parts) + "\n"


def _block(lines: list[str]) -> str:
    """Lines that quote names from the file: escape codes and line breaks in them are shown
    escaped, never sent to the terminal (a hostile name could clear the screen). Prose is
    wrapped to the view's width."""
    limit = current().width
    return "\n".join(wrap_lines([escape_controls(line) for line in lines], limit))
