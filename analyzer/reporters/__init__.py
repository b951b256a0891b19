"""Reporters: pure functions Report -> text, behind one registry.

Reporters never open files, never print and never pick exit codes; the CLI does that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analyzer.results import Report


@dataclass(frozen=True, slots=True)
class Reporter:
    name: str
    description: str
    render: Callable[[Report], str]


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


def reporters() -> dict[str, Reporter]:
    return dict(_REPORTERS)


def render(report: Report, fmt: str) -> str:
    return _REPORTERS[fmt].render(report)


from analyzer.reporters import (  # noqa: E402, F401  (registers the formats)
    csv_reporter,
    github,
    json_reporter,
    jsonl,
    markdown,
    netron,
    sarif,
    table,
)

__all__ = ["Reporter", "add_reporter", "json_reporter", "jsonl", "render", "reporters", "table"]
