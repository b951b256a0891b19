"""Reporters: pure functions Report -> text, behind one registry.

Reporters never open files, never print and never pick exit codes; the CLI does that.
A reporter's module is imported the first time its format is asked for: `names()` answers
from the table below, so the command line knows every format without importing any of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.core.results import Report


@dataclass(frozen=True, slots=True)
class Reporter:
    name: str
    description: str
    render: Callable[[Report], str]


MODULES: dict[str, str] = {
    "csv": "analyzer.report.reporters.csv_reporter",
    "github": "analyzer.report.reporters.github",
    "json": "analyzer.report.reporters.json_reporter",
    "jsonl": "analyzer.report.reporters.jsonl",
    "markdown": "analyzer.report.reporters.markdown",
    "netron": "analyzer.report.reporters.netron",
    "sarif": "analyzer.report.reporters.sarif",
    "table": "analyzer.report.reporters.table",
}
"""Format name -> the module whose @add_reporter registers it (imported on first use)."""

_REPORTERS: dict[str, Reporter] = {}


def add_reporter(
    name: str, description: str
) -> Callable[[Callable[[Report], str]], Callable[[Report], str]]:
    def decorate(func: Callable[[Report], str]) -> Callable[[Report], str]:
        if name in _REPORTERS:
            raise ValueError(f"reporter {name!r} registered twice")
        _REPORTERS[name] = Reporter(name, description, func)
        return func

    return decorate


def names() -> list[str]:
    """Every format name, sorted, without importing a reporter."""
    return sorted(MODULES.keys() | _REPORTERS.keys())


def reporter(fmt: str) -> Reporter:
    """The reporter of one format, importing its module on first use (KeyError if unknown)."""
    if fmt not in _REPORTERS and fmt in MODULES:
        importlib.import_module(MODULES[fmt])
    return _REPORTERS[fmt]


def reporters() -> dict[str, Reporter]:
    """Every reporter (imports them all)."""
    for module in MODULES.values():
        importlib.import_module(module)
    return dict(_REPORTERS)


def render(report: Report, fmt: str) -> str:
    return reporter(fmt).render(report)


__all__ = ["MODULES", "Reporter", "add_reporter", "names", "render", "reporter", "reporters"]
