"""SVG bar charts for the HTML page, written as text so they show even with scripts off."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float], Sequence[str]]],
    chart_id: str,
    per_row: bool = False,
) -> str:
    """Horizontal bars, one group per label; each series scaled to its own largest value, or
    with per_row every bar of a group to the group's largest (one measure, two sides)."""
    label_w, bar_w, bar_h, gap = 260, 360, 12, 6
    group_h = len(series) * bar_h + gap
    height = len(labels) * group_h + 8
    longest = max((len(t) for _, _, _, texts in series for t in texts), default=0)
    total_w = label_w + bar_w + max(90, 7 * longest + 8)  # room for the value after a full bar
    out = [
        f'<svg id="{chart_id}" role="img" width="{total_w}" height="{height}" '
        f'viewBox="0 0 {total_w} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    tops = [max((v for v in values), default=0) or 1 for _, _, values, _ in series]
    for row, label in enumerate(labels):
        y = row * group_h + 4
        shown = label if len(label) <= 40 else label[:18] + "…" + label[-21:]
        out.append(
            f'<text x="{label_w - 6}" y="{y + len(series) * bar_h / 2 + 4:.0f}" '
            f'text-anchor="end"><title>{escape(label)}</title>{escape(shown)}</text>'
        )
        row_top = max(values[row] for _, _, values, _ in series) or 1
        for s, (cls, name, values, texts) in enumerate(series):
            w = bar_w * values[row] / (row_top if per_row else tops[s])
            by = y + s * bar_h
            out.append(
                f'<rect class="{cls} bar" x="{label_w}" y="{by}" width="{max(w, 0.5):.1f}" '
                f'height="{bar_h - 2}"><title>{escape(label)}: {escape(texts[row])} '
                f"{escape(name)}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 3}">{escape(texts[row])}</text>'
            )
    out.append("</svg>")
    return "".join(out)


COLORS = {"p": "#3b6fd8", "m": "#e8833a", "old": "#9aa3b5"}


def legend(items: Sequence[tuple[str, str]]) -> str:
    spans = "".join(
        f'<span><i class="sw" style="background:{COLORS[c]}"></i>{escape(t)}</span>'
        for c, t in items
    )
    return f'<div class="legend">{spans}</div>'
