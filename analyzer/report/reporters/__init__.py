"""Reporters: pure functions Report -> text, behind one registry for reports and diffs.

Reporters never open files, never print and never pick exit codes; the CLI does that.
A reporter's module is imported the first time its format is asked for: `names()` answers
from the table below, so the command line knows every format without importing any of them.
A reporter declares what it can do (merge a batch, stream, describe one model only, show the
policy violations itself); the CLI asks the reporter, never tests its name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.core.results import DiffReport, Report

Failure = Callable[[str, str, str], str]
"""(path, error kind, message) -> the record a stream writes for a model that failed."""


@dataclass(frozen=True, slots=True)
class Reporter:
    name: str
    description: str
    render: Callable[[Report], str]
    merge: Callable[[Sequence[Report]], str] | None = None
    """Renders several models as one document (a JSON array, one SARIF log, one CSV header);
    without it, a batch is each model's rendering, separated by a blank line."""
    streams: bool = False
    """Each rendering is a complete record: written as soon as its model is done."""
    failure: Failure | None = None
    """The record a stream writes for a model that could not be analysed."""
    one_model: bool = False
    """The format describes a single model (a Netron attachment): a batch is refused."""
    shows_violations: bool = False
    """Written to the terminal, the rendering shows the policy violations itself, so the CLI
    does not echo them on stderr too."""


MODULES: dict[str, str] = {
    "csv": "analyzer.report.reporters.csv_reporter",
    "github": "analyzer.report.reporters.github",
    "html": "analyzer.report.reporters.html",
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
    name: str,
    description: str,
    *,
    merge: Callable[[Sequence[Report]], str] | None = None,
    streams: bool = False,
    failure: Failure | None = None,
    one_model: bool = False,
    shows_violations: bool = False,
) -> Callable[[Callable[[Report], str]], Callable[[Report], str]]:
    def decorate(func: Callable[[Report], str]) -> Callable[[Report], str]:
        if name in _REPORTERS:
            raise ValueError(f"reporter {name!r} registered twice")
        _REPORTERS[name] = Reporter(
            name, description, func, merge, streams, failure, one_model, shows_violations
        )
        return func

    return decorate


DIFF_MODULE = "analyzer.report.reporters.diffs"
"""The module whose @add_diff_view registers the formats with a diff view of their own."""
_DIFF_VIEWS: dict[str, Callable[[DiffReport], str]] = {}


def add_diff_view(
    name: str,
) -> Callable[[Callable[[DiffReport], str]], Callable[[DiffReport], str]]:
    def decorate(func: Callable[[DiffReport], str]) -> Callable[[DiffReport], str]:
        _DIFF_VIEWS[name] = func
        return func

    return decorate


def render_diff(diff: DiffReport, fmt: str) -> str:
    """`onnx-audit diff` in `fmt`: the format's own diff view, or else the new model's report
    holding only the new findings and the violations."""
    importlib.import_module(DIFF_MODULE)
    view = _DIFF_VIEWS.get(fmt)
    if view is not None:
        return view(diff)
    return render(replace(diff.new, findings=diff.new_findings, violations=diff.violations), fmt)


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


__all__ = [
    "MODULES",
    "Reporter",
    "add_diff_view",
    "add_reporter",
    "names",
    "render",
    "render_diff",
    "reporter",
    "reporters",
]
