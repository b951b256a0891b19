"""The table's weight summary (--inspect-weights): a few short lines, the details in JSON; what
the weight rules make of them is in the findings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from analyzer.core.results import Report
from analyzer.core.tensorstats import TensorStats
from analyzer.rules.fp16_unsafe import UNDERFLOW_SHARE


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _is_fp16_unsafe(t: TensorStats) -> bool:
    """A float32 tensor with values fp16 overflows, or a share that underflows to zero."""
    return t.dtype == "float" and bool(
        t.fp16_overflow or t.fp16_underflow >= UNDERFLOW_SHARE * max(1, t.elements)
    )


def _summary_lines(tensors: Sequence[TensorStats]) -> list[str]:
    """Totals, non-finite values, all-zero and fp16-unsafe tensors."""
    stored = sum(t.nbytes for t in tensors)
    nans = sum(t.nans for t in tensors)
    infs = sum(t.infs for t in tensors)
    bad = sum(1 for t in tensors if t.nans or t.infs)
    zero = sum(1 for t in tensors if t.elements and t.zeros == t.elements)
    unsafe = [t for t in tensors if _is_fp16_unsafe(t)]
    loose = sum(1 for t in unsafe if not t.layers)  # eps scalars, elementwise constants
    apart = f" ({loose:,} of them no layer's weight)" if loose else ""
    return [
        f"Weights: {len(tensors):,} tensors read, {_size(stored)}",
        f"  NaN {nans:,}, Inf {infs:,} (in {bad:,} tensors); all-zero tensors: {zero:,}",
        f"  fp16-unsafe float32 tensors: {len(unsafe):,}{apart}",
    ]


def weight_lines(report: Report) -> list[str]:
    """Nothing when weights were not inspected; else totals, non-finite, zero, fp16-unsafe and
    copied tensors (the findings name them)."""
    tensors = report.weights
    if tensors is None:
        return []
    lines = _summary_lines(tensors)
    if report.unread_weights:
        reasons = Counter(u.reason.split(":")[0] for u in report.unread_weights)
        top = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(2))
        lines.append(f"  not read: {len(report.unread_weights):,} ({top}; see warnings)")
    copies = [t for t in tensors if t.duplicate_of or t.transpose_of]
    if copies:
        copied = _size(sum(t.nbytes for t in copies))
        lines.append(f"  copies of another tensor: {len(copies):,} ({copied})")
    return lines


__all__ = ["weight_lines"]
