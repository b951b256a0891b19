"""run.py's tables: medians and ratios to onnx.load, ratios per round to onnx-audit, and the
issue-17 markdown table (seconds / peak MB per model and tool) that RESULTS.md keeps."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from tabulate import tabulate  # a dependency of onnx-audit itself

BASELINE = "onnx.load"
SUBJECT = "onnx-audit"
# What a user runs today to count parameters: the rows onnx-audit has to beat. skeleton and
# floor are pieces of onnx-audit's own cost, onnx-audit-before an earlier onnx-audit.
PEERS = ("onnx.load", "onnx.infer", "onnx-opcounter", "polygraphy", "onnx-ir", "onnx-tool")
LABELS = {
    "onnx.load": "onnx.load + count",
    "onnx.infer": "load + infer_shapes",
}


@dataclass
class Cell:
    """Every run of one tool on one model; a run that failed ends the cell."""

    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    failure: str = ""
    found: object = None

    def wall_in(self, rep: int) -> float | None:
        return self.walls[self.rounds.index(rep)] if rep in self.rounds else None


def mb(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def render(headers: list[str], rows: list[list[str]]) -> str:
    return tabulate(rows, headers=headers, stralign="right", disable_numparse=True)


def count_note(tool: str, cell: Cell, info: dict[str, object]) -> str:
    """'' when the tool's count is the model's (MODEL.json), else the count it gave."""
    expected = info.get("params" if tool.startswith(SUBJECT) else "initializer_elements")
    if cell.found in (None, expected):
        return ""
    found = f"{cell.found:,}" if isinstance(cell.found, int) else str(cell.found)
    return f" (count {found}!)"


def failure_text(cell: Cell, limit: int = 40) -> str:
    text = cell.failure or "failed"
    return text if len(text) < limit else text[: limit - 3] + "..."


def size_gb(info: dict[str, object]) -> float:
    return (int(str(info["file_bytes"])) + int(str(info.get("external_data_bytes", 0)))) / 1e9


def medians_table(cells: dict[tuple[str, str], Cell], meta: dict, tools: list[str]) -> str:
    """One row per model and tool: median wall and RSS, and both as ratios to onnx.load."""
    headers = ["model", "size GB", "tool", "wall s", "peak RSS MB", "time/load", "RSS/load"]
    rows: list[list[str]] = []
    for name, info in meta.items():
        base = cells.get((name, BASELINE))
        for tool in tools:
            cell = cells[name, tool]
            label = [name, f"{size_gb(info):.2f}", tool]
            if cell.failure or not cell.walls:
                rows.append([*label, failure_text(cell), "", "", ""])
                continue
            med_wall, med_rss = statistics.median(cell.walls), statistics.median(cell.rss)
            ratios = ["", ""]
            if base is not None and base.walls and not base.failure:
                ratios = [
                    f"{med_wall / statistics.median(base.walls):.2f}",
                    f"{med_rss / statistics.median(base.rss):.2f}",
                ]
            wall = f"{med_wall:.2f}{count_note(tool, cell, info)}"
            rows.append([*label, wall, mb(med_rss), *ratios])
    return render(headers, rows)


def round_ratios(
    cells: dict[tuple[str, str], Cell], name: str, tool: str, repeat: int
) -> list[float]:
    """tool's wall / onnx-audit's wall in each round both ran in (> 1: onnx-audit faster).
    tool "fastest peer" takes, per round, the fastest of PEERS that ran."""
    audit = cells.get((name, SUBJECT))
    if audit is None:
        return []
    ratios = []
    for rep in range(repeat):
        mine = audit.wall_in(rep)
        if tool == "fastest peer":
            walls = [
                cells[name, peer].wall_in(rep)
                for peer in PEERS
                if (name, peer) in cells and not cells[name, peer].failure
            ]
            theirs = min((w for w in walls if w is not None), default=None)
        else:
            theirs = cells[name, tool].wall_in(rep)
        if mine is not None and theirs is not None:
            ratios.append(theirs / mine)
    return ratios


def ratio_text(ratios: list[float]) -> str:
    if not ratios:
        return ""
    per_round = ", ".join(f"{r:.2f}" for r in ratios)
    return f"{statistics.median(ratios):.2f} ({per_round})"


def ratios_table(
    cells: dict[tuple[str, str], Cell], meta: dict, tools: list[str], repeat: int
) -> str:
    """Per model: each other tool's time over onnx-audit's, median (per round)."""
    others = [t for t in tools if t != SUBJECT]
    if (SUBJECT not in tools) or not others:
        return ""
    columns = [*others, *(["fastest peer"] if any(t in PEERS for t in tools) else [])]
    rows = [
        [name, *(ratio_text(round_ratios(cells, name, tool, repeat)) for tool in columns)]
        for name in meta
    ]
    return render(["x onnx-audit's time", *columns], rows)


def markdown(cells: dict[tuple[str, str], Cell], meta: dict, tools: list[str], repeat: int) -> str:
    """The issue-17 table: one row per model, `seconds / peak MB` per tool (medians), then
    every tool's time over onnx-audit's, median and per round."""
    head = ["model", *(LABELS.get(t, t) for t in tools)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(tools),
    ]
    for name, info in meta.items():
        row = [f"{name} ({size_gb(info):.2f} GB)"]
        for tool in tools:
            cell = cells[name, tool]
            if cell.failure or not cell.walls:
                done = f" after {len(cell.walls)} runs" if cell.walls else ""
                row.append(failure_text(cell, 60) + done)
                continue
            wall, rss = statistics.median(cell.walls), statistics.median(cell.rss)
            row.append(f"{wall:.2f} / {mb(rss)}{count_note(tool, cell, info)}")
        lines.append("| " + " | ".join(row) + " |")
    others = [t for t in tools if t != SUBJECT]
    if SUBJECT in tools and others:
        columns = [*others, "fastest peer"]
        lines += [
            "",
            f"Time over onnx-audit's, median ({repeat} rounds each); above 1: onnx-audit faster.",
            "",
            "| model | " + " | ".join(LABELS.get(t, t) for t in columns) + " |",
            "|---|" + "---:|" * len(columns),
        ]
        for name in meta:
            row = [ratio_text(round_ratios(cells, name, tool, repeat)) for tool in columns]
            lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
