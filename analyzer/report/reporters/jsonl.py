"""`--format jsonl`: one compact JSON report per line, streamed one model at a time."""

from __future__ import annotations

from analyzer.core.results import Report
from analyzer.report.reporters import add_reporter
from analyzer.report.serialize import encode


@add_reporter("jsonl", "one compact JSON report per line (batch runs stream)")
def render_jsonl(report: Report) -> str:
    return encode(report) + "\n"
