"""`--format json`: the versioned schema in docs/json-report.md; round-trips via serialize."""

from __future__ import annotations

import json
from collections.abc import Sequence

from analyzer.core.results import Report
from analyzer.report.reporters import add_reporter
from analyzer.report.serialize import dumps, to_data


def merge_json(reports: Sequence[Report]) -> str:
    """Several models: a JSON array of their reports."""
    data = [to_data(report) for report in reports]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@add_reporter("json", "versioned JSON report (docs/json-report.md)", merge=merge_json)
def render_json(report: Report) -> str:
    return dumps(report) + "\n"
