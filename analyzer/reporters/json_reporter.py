"""`--format json`: the versioned schema in docs/json-report.md; round-trips via serialize."""

from __future__ import annotations

from analyzer.reporters import add_reporter
from analyzer.results import Report
from analyzer.serialize import dumps, encode


@add_reporter("json", "versioned JSON report (docs/json-report.md)")
def render_json(report: Report) -> str:
    """The report's fields, then `modules`: the module tree derived from the layer names
    (analyzer.reporters.modtree), which report_from_data() skips as it re-derives."""
    from analyzer.reporters.modtree import module_records  # noqa: PLC0415  (json only)

    text = dumps(report)
    modules = ",\n    ".join(map(encode, module_records(report)))
    return f'{text[:-2]},\n  "modules": [\n    {modules}\n  ]\n}}\n'
