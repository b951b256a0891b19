"""`--format json`: the versioned schema in docs/json-report.md; round-trips via serialize."""

from __future__ import annotations

import json

from analyzer.reporters import add_reporter
from analyzer.results import Report
from analyzer.serialize import to_data


@add_reporter("json", "versioned JSON report (docs/json-report.md)")
def render_json(report: Report) -> str:
    return json.dumps(to_data(report), indent=2, ensure_ascii=False) + "\n"
