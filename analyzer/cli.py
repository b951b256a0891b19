"""The command line: a thin shell around analyze() that owns output files and exit codes.

Exit codes: 0 analysed, nothing violated; 1 a policy violated; 2 usage error or a model that
could not be analysed (one line on stderr, a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from analyzer import __version__
from analyzer.api import analyze
from analyzer.errors import AuditError, UsageError
from analyzer.reporters import render, reporters
from analyzer.results import Report
from analyzer.rules import all_rules
from analyzer.serialize import to_data
from analyzer.shapes import parse_input_shape

EXIT_OK, EXIT_POLICY, EXIT_ERROR = 0, 1, 2
PROG = "onnx-audit"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Count every parameter of an ONNX model and flag dense layers a "
        "convolution could replace. Subcommands: `onnx-audit rules`, `onnx-audit explain CODE`.",
    )
    parser.add_argument("paths", nargs="+", metavar="MODEL", help="ONNX model file(s)")
    parser.add_argument(
        "--format",
        default="table",
        choices=sorted(reporters()),
        help="output format (default: table)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE ('-' = stdout)"
    )
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D1,D2,...",
        help="fix the dims of a dynamic input, e.g. input=1,3,224,224 (repeatable)",
    )
    parser.add_argument(
        "--kernel", type=int, default=3, help="kernel size k of the suggested conv (default 3)"
    )
    parser.add_argument(
        "--min-ratio",
        type=float,
        default=2.0,
        help="flag only when dense/conv weights >= this (default 2)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="tracebacks and why candidates were rejected"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def write_output(text: str, output: str | None) -> None:
    """Write atomically: a temp file renamed into place, so a failure leaves no half file."""
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _render_all(reports: list[Report], fmt: str) -> str:
    if fmt == "json" and len(reports) > 1:
        import json  # noqa: PLC0415  (only for batch JSON)

        return json.dumps([to_data(r) for r in reports], indent=2, ensure_ascii=False) + "\n"
    return "\n".join(render(report, fmt) for report in reports)


def _subcommand(argv: list[str]) -> int | None:
    if not argv or argv[0] not in ("rules", "explain"):
        return None
    if argv[0] == "rules":
        for rule in all_rules():
            flag = " (preview)" if rule.preview else ""
            print(f"{rule.code}  {rule.name}{flag}  {rule.summary}")
        return EXIT_OK
    wanted = argv[1:]
    if len(wanted) != 1:
        _error("usage: onnx-audit explain CODE")
        return EXIT_ERROR
    for rule in all_rules():
        if wanted[0].upper() == rule.code or wanted[0] == rule.name:
            print(rule.doc(), end="")
            return EXIT_OK
    _error(f"unknown rule {wanted[0]!r} (see `onnx-audit rules`)")
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    handled = _subcommand(args_list)
    if handled is not None:
        return handled
    args = build_parser().parse_args(args_list)
    try:
        shapes = dict(parse_input_shape(text) for text in args.input_shape)
        if args.kernel < 1:
            raise UsageError("", "--kernel must be a positive integer")
    except AuditError as exc:
        _error(exc.line())
        return EXIT_ERROR
    reports: list[Report] = []
    failed = False
    for path in args.paths:
        debug: list[str] = []
        try:
            reports.append(
                analyze(
                    path,
                    input_shapes=shapes,
                    kernel=args.kernel,
                    min_ratio=args.min_ratio,
                    debug=debug,
                )
            )
        except AuditError as exc:
            if args.debug:
                traceback.print_exc()
            _error(exc.line())
            failed = True
        except (Exception, RecursionError, MemoryError) as exc:  # never a bare traceback
            if args.debug:
                traceback.print_exc()
            what = f"internal error: {type(exc).__name__}: {exc}"
            _error(f"{path}: {what} (rerun with --debug; please report it)")
            failed = True
        if args.debug:
            for line in debug:
                print(f"{PROG}: debug: {line}", file=sys.stderr)
    if reports:
        try:
            write_output(_render_all(reports, args.format), args.output)
        except OSError as exc:
            _error(f"{args.output}: cannot write report: {exc.strerror}")
            return EXIT_ERROR
    return EXIT_ERROR if failed else EXIT_OK
