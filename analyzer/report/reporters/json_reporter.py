"""`--format json`: the versioned schema in docs/json-report.md; round-trips via serialize."""

from __future__ import annotations

from analyzer.core.results import Report
from analyzer.report.reporters import add_reporter
from analyzer.report.serialize import dumps


@add_reporter("json", "versioned JSON report (docs/json-report.md)")
def render_json(report: Report) -> str:
    return dumps(report) + "\n"
