"""The table's weight summary (--inspect-weights): a few short lines, the details in JSON."""

from __future__ import annotations

from collections import Counter

from analyzer.core.results import Report
from analyzer.rules.weight_checks import UNDERFLOW_SHARE

MAX_ISSUES = 20
"""Weight check lines shown in the table; the JSON report has all of them."""


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{count} B"


def weight_lines(report: Report) -> list[str]:
    """Nothing when weights were not inspected; else totals, then each check's verdict."""
    tensors = report.weights
    if tensors is None:
        return []
    stored = sum(t.nbytes for t in tensors)
    nans = sum(t.nans for t in tensors)
    infs = sum(t.infs for t in tensors)
    bad = sum(1 for t in tensors if t.nans or t.infs)
    zero = sum(1 for t in tensors if t.elements and t.zeros == t.elements)
    unsafe = sum(
        1
        for t in tensors
        if t.dtype == "float"
        and (t.fp16_overflow or t.fp16_underflow >= UNDERFLOW_SHARE * max(1, t.elements))
    )
    lines = [
        f"Weights: {len(tensors):,} tensors read, {_size(stored)}",
        f"  NaN {nans:,}, Inf {infs:,} (in {bad:,} tensors); all-zero tensors: {zero:,}",
        f"  fp16-unsafe float32 tensors: {unsafe:,}",
    ]
    if report.unread_weights:
        reasons = Counter(u.reason.split(":")[0] for u in report.unread_weights)
        top = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(2))
        lines.append(f"  not read: {len(report.unread_weights):,} ({top}; see warnings)")
    issues = report.weight_issues
    if issues:
        lines.append(f"  weight checks ({len(issues):,}):")
        lines += [f"  {i.code} {i.rule}: {i.message}" for i in issues[:MAX_ISSUES]]
        if len(issues) > MAX_ISSUES:
            lines.append(f"  ... {len(issues) - MAX_ISSUES:,} more in --format json")
    else:
        lines.append("  weight checks: none")
    return lines


__all__ = ["weight_lines"]
