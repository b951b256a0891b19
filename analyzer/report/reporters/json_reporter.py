"""`--format json`: the versioned schema in docs/json-report.md; round-trips via serialize."""

from __future__ import annotations

import json
from collections.abc import Sequence

from analyzer.core.results import Report
from analyzer.report.reporters import add_reporter
from analyzer.report.serialize import dumps, encode, to_data


def merge_json(reports: Sequence[Report]) -> str:
    """Several models: a JSON array of their reports."""
    data = [to_data(report) for report in reports]
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@add_reporter("json", "versioned JSON report (docs/json-report.md)", merge=merge_json)
def render_json(report: Report) -> str:
    """The report's fields, then `modules`: the module tree derived from the layer names
    (analyzer.report.reporters.modtree), which report_from_data() skips as it re-derives."""
    from analyzer.report.reporters.modtree import module_records  # noqa: PLC0415  (json only)

    text = dumps(report)
    modules = ",\n    ".join(map(encode, module_records(report)))
    return f'{text[:-2]},\n  "modules": [\n    {modules}\n  ]\n}}\n'
