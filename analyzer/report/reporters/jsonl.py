"""`--format jsonl`: one compact JSON report per line, streamed one model at a time."""

from __future__ import annotations

import json

from analyzer.core.results import Report
from analyzer.report.reporters import add_reporter
from analyzer.report.serialize import encode


def failure_jsonl(path: str, kind: str, message: str) -> str:
    """A model that could not be analysed still gets its line, so the stream has one per input."""
    record = {"path": path, "error": {"kind": kind, "message": message}}
    return json.dumps(record, ensure_ascii=False) + "\n"


@add_reporter(
    "jsonl",
    "one compact JSON report per line (batch runs stream)",
    streams=True,
    failure=failure_jsonl,
)
def render_jsonl(report: Report) -> str:
    return encode(report) + "\n"
