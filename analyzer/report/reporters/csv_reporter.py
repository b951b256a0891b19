"""`--format csv`: one row per layer, the stable columns documented in docs/csv-columns.md."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Final

from analyzer.core.results import LayerTally, Report
from analyzer.report.reporters import add_reporter
from analyzer.report.reporters.table import shape_text

COLUMNS: Final = (
    "path",
    "layer",
    "op_type",
    "domain",
    "params",
    "trainable",
    "non_trainable",
    "bytes",
    "macs",
    "output_shape",
    "shared",
    "flagged",
)
"""Column order is part of the format: new columns are only ever appended."""


def _row(report: Report, layer: LayerTally, flagged: dict[str, list[str]]) -> list[str]:
    output = layer.output_shapes[0] if layer.output_shapes else None
    return [
        report.path,
        layer.name,
        layer.op_type,
        layer.domain,
        str(layer.params),
        str(layer.trainable),
        str(layer.non_trainable),
        str(layer.nbytes),
        str(layer.macs.to_json()),
        shape_text(output) if output is not None else "",
        "true" if layer.shared else "false",
        ";".join(flagged.get(layer.name, ())),
    ]


def _rows(report: Report) -> list[list[str]]:
    flagged: dict[str, list[str]] = {}
    for finding in report.findings:
        codes = flagged.setdefault(finding.node, [])
        if finding.code not in codes:
            codes.append(finding.code)
    return [_row(report, layer, flagged) for layer in report.layers]


def merge_csv(reports: Sequence[Report]) -> str:
    """Several models: one header, then every model's rows (the path column tells them apart)."""
    rows = [list(COLUMNS)] + [row for report in reports for row in _rows(report)]
    return "".join(_line([_inert(cell) for cell in row]) for row in rows)


@add_reporter("csv", "one CSV row per layer (docs/csv-columns.md)", merge=merge_csv)
def render_csv(report: Report) -> str:
    return merge_csv([report])


FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _inert(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (a hostile file's layer name) gets a
    leading `'`, as OWASP advises; counts never start so."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _line(row: list[str]) -> str:
    """One record ending in `\n`, any `\r` or `\n` inside a field quoted.

    The csv module quotes a field only for the characters of its own line terminator, so it
    writes each record with `\r\n` (both characters trigger quoting) and swaps the end.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(row)
    return buffer.getvalue()[: -len("\r\n")] + "\n"
