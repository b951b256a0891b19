"""Text that fits a terminal: display widths, middle ellipses, tables shrunk to a width, colour.

Also the view settings of human-facing reporters (width, --depth, --color), which the command
line sets around a render: reporters stay functions of the Report, and read these as a context.
"""

from __future__ import annotations

import os
import shutil
import textwrap
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

ELLIPSIS = ".."
"""ASCII, like everything the table prints: CI logs, pagers and `awk length` count bytes."""
MIN_WIDTH = 40
"""Narrower terminals get this width: a table cannot be read in less."""


@dataclass(frozen=True, slots=True)
class View:
    """How a person's report is laid out; reporters for machines ignore it."""

    width: int = 80
    depth: int | None = None
    """--depth: None picks the depth that keeps the table short, 0 lists every node."""
    color: bool = False


_VIEW: ContextVar[View] = ContextVar("onnx_audit_view", default=View())  # noqa: B039


def current() -> View:
    return _VIEW.get()


@contextmanager
def viewing(view: View) -> Iterator[View]:
    token = _VIEW.set(view)
    try:
        yield view
    finally:
        _VIEW.reset(token)


def terminal_width() -> int:
    """COLUMNS when set, else the terminal's width, else 80 (shutil's rules), at least 40."""
    return max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)


def use_color(choice: str, stream_is_tty: bool) -> bool:
    """--color auto|always|never; auto means a terminal and no NO_COLOR (no-color.org)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    return stream_is_tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


# --- widths --------------------------------------------------------------------------------


def char_width(char: str) -> int:
    if char.isascii():
        return 1
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns the text takes on a terminal (wide CJK characters take two)."""
    if text.isascii():
        return len(text)
    return sum(map(char_width, text))


def ellipsize(text: str, limit: int, keep_suffix: bool = False) -> str:
    """The text in at most `limit` columns: its start and end kept, the middle an ellipsis.
    With keep_suffix, a trailing ` (Op)` stays whole while it leaves room for 8 columns, and a
    name's last part that only repeats the op (`/blocks.0/ln1/LayerNormalization`) goes first."""
    if width(text) <= limit:
        return text
    if keep_suffix and text.endswith(")") and " (" in text:
        name, _, op = text.rpartition(" (")
        suffix = f" ({op}"
        parent, _, last = name.rpartition("/")
        if parent and last.split("_")[0] == op[:-1]:  # torch's `/blocks.0/ln1/LayerNormalization`
            return ellipsize(f"{parent}{suffix}", limit, keep_suffix)
        if limit - width(suffix) >= 8:
            return ellipsize(name, limit - width(suffix)) + suffix
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    keep = limit - len(ELLIPSIS)
    tail_budget = keep // 2
    head_budget = keep - tail_budget
    head: list[str] = []
    used = 0
    for char in text:
        w = char_width(char)
        if used + w > head_budget:
            break
        head.append(char)
        used += w
    tail: list[str] = []
    used = 0
    for char in reversed(text):
        w = char_width(char)
        if used + w > tail_budget:
            break
        tail.append(char)
        used += w
    return "".join(head) + ELLIPSIS + "".join(reversed(tail))


def pad(text: str, size: int, side: str) -> str:
    gap = " " * max(0, size - width(text))
    return text + gap if side == "left" else gap + text


def wrap(line: str, limit: int) -> list[str]:
    """A line of prose wrapped to `limit` columns; continuation lines keep its indent + 2."""
    if width(line) <= limit:
        return [line]
    indent = " " * (len(line) - len(line.lstrip(" ")))
    return textwrap.wrap(
        line,
        width=limit,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        drop_whitespace=True,
    ) or [line[:limit]]


def wrap_lines(lines: Sequence[str], limit: int) -> list[str]:
    return [piece for line in lines for piece in wrap(line, limit)]


def fit_table(
    rows: Sequence[Sequence[str]],
    headers: Sequence[str],
    align: Sequence[str],
    limit: int,
    *,
    shrink: Sequence[tuple[int, int]] = ((0, 12),),
    suffixed: Sequence[int] = (0,),
) -> list[str]:
    """A plain table (two spaces between columns, dashes under the headers) at most `limit`
    columns wide: the (column, least width) pairs in `shrink` give way first, in that order,
    by shortening their cells in the middle (keeping a ` (Op)` suffix in the columns
    `suffixed`); then the widest column, as a last resort."""
    gap = 2
    natural = [width(h) for h in headers]
    for row in rows:
        natural = [max(n, width(c)) for n, c in zip(natural, row, strict=True)]
    sizes = list(natural)
    excess = sum(sizes) + gap * (len(sizes) - 1) - limit
    for column, floor in shrink:
        if excess <= 0:
            break
        room = sizes[column] - max(floor, width(headers[column]))
        take = min(room, excess)
        if take > 0:
            sizes[column] -= take
            excess -= take
    while excess > 0:  # still too wide: shrink the widest column, one column at a time
        widest = max(range(len(sizes)), key=lambda i: sizes[i])
        if sizes[widest] <= 4:
            break
        take = min(excess, sizes[widest] - 4)
        sizes[widest] -= take
        excess -= take

    def line(cells: Sequence[str]) -> str:
        out = [
            pad(ellipsize(cell, size, i in suffixed), size, side)
            for i, (cell, size, side) in enumerate(zip(cells, sizes, align, strict=True))
        ]
        return (" " * gap).join(out).rstrip()

    rule = (" " * gap).join("-" * s for s in sizes)
    return [line(headers), rule, *map(line, rows)]


# --- colour --------------------------------------------------------------------------------

BOLD, DIM, RED, YELLOW, GREEN, CYAN, RESET = (
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[32m",
    "\x1b[36m",
    "\x1b[0m",
)


def paint(text: str, code: str, on: bool) -> str:
    return f"{code}{text}{RESET}" if on and text else text


_LINE_COLORS = (
    ("Layer (op)", BOLD),
    ("Total params:", BOLD),
    ("MACs", BOLD),
    ("Findings (", YELLOW + BOLD),
    ("ONX", YELLOW),
    ("  trade", YELLOW),
    ("Policy violations", RED + BOLD),
    ("  - ", ""),
    ("Warnings:", YELLOW),
    ("Dims:", CYAN),
    ("onnxruntime: FAILED", RED),
)


def paint_part(part: str) -> str:
    """Colour for one block of the terminal report, by what its lines start with (the text
    is already escaped, so these are the only escape codes in it)."""
    out = []
    red = part.startswith("Policy violations")
    for line in part.split("\n"):
        code = RED if red and line.startswith("  - ") else ""
        for prefix, color in _LINE_COLORS:
            if not code and color and line.startswith(prefix):
                code = color
                break
        out.append(paint(line, code, bool(code)))
    return "\n".join(out)


__all__ = [
    "View",
    "current",
    "ellipsize",
    "fit_table",
    "paint",
    "paint_part",
    "terminal_width",
    "use_color",
    "viewing",
    "width",
    "wrap",
    "wrap_lines",
]
