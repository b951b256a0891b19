"""The command line: a thin shell around analyze() that owns files, processes and exit codes.

Exit codes: 0 analysed, nothing violated; 1 a policy violated; 2 usage error or a model that
could not be analysed (one line on stderr each, a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from analyzer import __version__
from analyzer.api import analyze
from analyzer.config import config_values, find_pyproject, read_config
from analyzer.diff import diff
from analyzer.errors import AuditError
from analyzer.policy import Policy, evaluate, parse_percent, parse_size
from analyzer.reporters import render, reporters
from analyzer.reporters.diffs import render_diff
from analyzer.results import Report, Violation
from analyzer.rules import Rule, all_rules
from analyzer.runner import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT, Limits, Outcome, run_jobs
from analyzer.shapes import parse_input_shape

EXIT_OK, EXIT_POLICY, EXIT_ERROR = 0, 1, 2
PROG = "onnx-audit"
PROGRESS_MIN_MODELS = 4
DEFAULTS: dict[str, Any] = {
    "format": "table",
    "input_shape": [],
    "kernel": 3,
    "min_ratio": 2.0,
    "select": [],
    "ignore": [],
    "fail_on": [],
    "jobs": 1,
    "max_memory": DEFAULT_MAX_MEMORY,
    "timeout": DEFAULT_TIMEOUT,
    "price_batch": 32,
}


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of `check` (default) or `diff`; option defaults are None so config can fill in."""
    usage = {
        "check": "onnx-audit [options] MODEL|DIR [MODEL|DIR ...]",
        "diff": "onnx-audit diff [options] OLD.onnx NEW.onnx",
        "verify": "onnx-audit verify [options] MODEL [MODEL ...]",
    }[command]
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=usage,
        description="Count every parameter of an ONNX model and flag dense layers a convolution "
        "could replace. Other commands: `onnx-audit diff OLD NEW`, `onnx-audit rules`, "
        "`onnx-audit explain CODE`.",
    )
    if command == "verify":
        parser.set_defaults(verify=True)
    if command == "diff":
        parser.add_argument("old", metavar="OLD.onnx")
        parser.add_argument("new", metavar="NEW.onnx")
        parser.add_argument(
            "--max-growth", type=parse_percent, help="fail (exit 1) when params grew more, e.g. 5%%"
        )
    else:
        parser.add_argument(
            "paths", nargs="+", metavar="MODEL", help="model files or folders (searched for *.onnx)"
        )
    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=sorted(reporters()), help="output format (default: table)")
    out.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE (default: stdout)"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    analysis = parser.add_argument_group("analysis")
    analysis.add_argument(
        "--input-shape",
        action="append",
        type=parse_input_shape,
        metavar="NAME=D1,D2,...",
        help="fix the dims of a dynamic input, e.g. input=1,3,224,224 (repeatable)",
    )
    analysis.add_argument(
        "--kernel", type=_positive_int, help="kernel size k of the suggested conv (default 3)"
    )
    analysis.add_argument(
        "--min-ratio", type=_positive_float, help="flag when dense/conv weights >= this (default 2)"
    )
    analysis.add_argument(
        "--select",
        action="append",
        type=_comma_list,
        metavar="CODES",
        help="only these rules (codes, prefixes, names)",
    )
    analysis.add_argument(
        "--ignore", action="append", type=_comma_list, metavar="CODES", help="skip these rules"
    )
    analysis.add_argument("--preview", action="store_true", help="also run rules still in preview")
    policy = parser.add_argument_group("policies (exit 1 when violated)")
    policy.add_argument(
        "--max-params", type=parse_size, metavar="N", help="total parameters, e.g. 25M"
    )
    policy.add_argument(
        "--max-weight-bytes",
        type=parse_size,
        metavar="SIZE",
        help="stored weight bytes, e.g. 100MB, 2GiB",
    )
    policy.add_argument(
        "--max-layer-params",
        type=parse_size,
        metavar="N",
        help="parameters of any one layer, e.g. 300k",
    )
    policy.add_argument(
        "--fail-on",
        action="append",
        type=_comma_list,
        metavar="CODES",
        help="rule codes or names that fail the run",
    )
    ort = parser.add_argument_group("onnxruntime (never imported without these)")
    ort.add_argument(
        "--verify",
        action="store_true",
        help="run the model once in onnxruntime and price each finding",
    )
    ort.add_argument(
        "--price-batch",
        type=_positive_int,
        metavar="N",
        help="larger batch used to price findings (default 32)",
    )
    ort.add_argument(
        "--emit-candidate",
        metavar="OUT.onnx",
        help="write the model with every flagged layer replaced",
    )
    ort.add_argument("--force", action="store_true", help="let --emit-candidate overwrite OUT.onnx")
    run = parser.add_argument_group("running")
    run.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: [tool.onnx-audit] in the nearest pyproject.toml)",
    )
    run.add_argument(
        "--jobs", "-j", type=_positive_int, help="models analysed in parallel (default 1)"
    )
    run.add_argument(
        "--max-memory", type=parse_size, metavar="SIZE", help="memory cap per model (default 4GiB)"
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="time limit per model (default 300)",
    )
    run.add_argument(
        "--debug", action="store_true", help="tracebacks and why candidates were rejected"
    )
    run.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


@dataclass(frozen=True, slots=True)
class Settings:
    """Options after merging defaults, config file and command line (in that order)."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _flatten(value: Any) -> list[str]:
    out: list[str] = []
    for item in value or []:
        out.extend(item if isinstance(item, list) else [item])
    return out


def parse_settings(command: str, argv: list[str]) -> Settings:
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.config:
        config_path: Path | None = Path(args.config)
        section = read_config(Path(args.config), explicit=True)
    else:
        config_path = find_pyproject(Path.cwd())
        section = read_config(config_path, explicit=False) if config_path else {}
    from_config = config_values(parser, section, str(config_path)) if section else {}
    values: dict[str, Any] = {}
    for key, value in vars(args).items():
        given = value not in (None, False, [])
        values[key] = value if given else from_config.get(key, DEFAULTS.get(key, value))
    for key in ("select", "ignore", "fail_on"):
        values[key] = _flatten(values[key])
    values["input_shape"] = dict(values["input_shape"] or [])
    return Settings(values)


def rule_filter(settings: Settings) -> Callable[[Rule], bool]:
    def selected(selectors: list[str], rule: Rule) -> bool:
        return any(
            s.upper() == "ALL" or rule.code.startswith(s.upper()) or rule.name == s
            for s in selectors
        )

    def enabled(rule: Rule) -> bool:
        if rule.preview and not settings.preview and not selected(settings.select, rule):
            return False
        if settings.select and not selected(settings.select, rule):
            return False
        return not selected(settings.ignore, rule)

    return enabled


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class Output:
    """The report's destination: stdout, or a temp file renamed into place only on success."""

    def __init__(self, target: str | None) -> None:
        self.target = None if target is None or target == "-" else Path(target)
        self.tmp: Path | None = None
        self.handle: IO[str] = sys.stdout
        if self.target is not None:
            folder = self.target.parent
            fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=folder)
            self.tmp = Path(tmp)
            self.handle = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def write(self, text: str) -> None:
        self.handle.write(text)
        self.handle.flush()

    def finish(self, ok: bool) -> None:
        if self.tmp is None or self.target is None:
            return
        self.handle.close()
        if ok:
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)


def expand_paths(paths: Sequence[str]) -> Iterator[str]:
    """Files as given; folders searched recursively for *.onnx, sorted, symlinks not followed."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.onnx") if p.is_file() and not p.is_symlink())
            yield from (str(p) for p in found)
        else:
            yield raw


def _progress(done: int, total: int, label: str) -> None:
    sys.stderr.write(f"\r\x1b[2K[{done}/{total}] {label}"[:200])
    if done == total:
        sys.stderr.write("\r\x1b[2K")
    sys.stderr.flush()


def _limits(settings: Settings) -> Limits:
    return Limits(max_memory=settings.max_memory, timeout=settings.timeout)


def _report_job(path: str, settings: Settings) -> Callable[[list[str]], Report]:
    policy = Policy(
        max_params=settings.max_params,
        max_weight_bytes=settings.max_weight_bytes,
        max_layer_params=settings.max_layer_params,
        fail_on=tuple(settings.fail_on),
    )
    enabled = rule_filter(settings)

    def job(notes: list[str]) -> Report:
        report = analyze(
            path,
            input_shapes=settings.input_shape,
            kernel=settings.kernel,
            min_ratio=settings.min_ratio,
            rule_filter=enabled,
            debug=notes,
        )
        report = replace(report, violations=evaluate(report, policy))
        if settings.verify:
            report = _verify(path, report, settings)
        if settings.emit_candidate:
            from analyzer.candidate import emit_candidate  # noqa: PLC0415  (reads weights; opt-in)

            result = emit_candidate(path, report, settings.emit_candidate, force=settings.force)
            report = replace(report, notes=(*report.notes, result.summary()))
        return report

    return job


def _rendered_job(path: str, settings: Settings) -> Callable[[list[str]], tuple[str, list[str]]]:
    """Analyse and render in the child: a rendered text crosses the process boundary faster
    than a pickled 100,000-layer Report."""
    analyse = _report_job(path, settings)

    def job(notes: list[str]) -> tuple[str, list[str]]:
        report = analyse(notes)
        return render(report, settings.format), [v.message for v in report.violations]

    return job


def _verify(path: str, report: Report, settings: Settings) -> Report:
    """Run the model in onnxruntime and price each finding; a failed run is a violation."""
    from analyzer import pricing, runtime  # noqa: PLC0415  (onnxruntime stays off the static path)

    verification = runtime.verify(path, settings.input_shape, report)
    report = pricing.price_findings(
        replace(report, verification=verification), batch=settings.price_batch
    )
    if verification.ok:
        return report
    failed = Violation(
        policy="verify",
        limit="runs in onnxruntime",
        measured="failed",
        message=f"onnxruntime cannot run the model: {verification.error}",
    )
    return replace(report, violations=(*report.violations, failed))


def _show_failure(outcome: Outcome[Any], debug: bool) -> None:
    if debug and outcome.trace:
        sys.stderr.write(outcome.trace)
    assert outcome.error is not None
    _error(outcome.error.line())


def _show_debug(outcome: Outcome[Any], debug: bool) -> None:
    if debug:
        for line in outcome.debug:
            print(f"{PROG}: debug: {outcome.label}: {line}", file=sys.stderr)


def _merge(texts: list[str], fmt: str, single: bool) -> str:
    """Join several models' outputs into one document of the format."""
    if single or not texts:
        return "".join(texts)
    if fmt == "json":
        return json.dumps([json.loads(t) for t in texts], indent=2, ensure_ascii=False) + "\n"
    if fmt == "sarif":
        logs = [json.loads(t) for t in texts]
        merged = logs[0]
        for log in logs[1:]:
            merged["runs"].extend(log["runs"])
        return json.dumps(merged, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return texts[0] + "".join(t.split("\n", 1)[1] if "\n" in t else "" for t in texts[1:])
    return "\n".join(texts)


def check(settings: Settings) -> int:
    paths = list(expand_paths(settings.paths))
    if not paths:
        _error("no .onnx files found in " + ", ".join(settings.paths))
        return EXIT_ERROR
    fmt = settings.format
    if settings.emit_candidate and len(paths) > 1:
        _error("--emit-candidate takes one model")
        return EXIT_ERROR
    if fmt == "netron" and len(paths) > 1:
        _error("--format netron writes one attachment per model: pass one model")
        return EXIT_ERROR
    show = sys.stderr.isatty() and len(paths) >= PROGRESS_MIN_MODELS and not settings.no_progress
    jobs = [(path, _rendered_job(path, settings)) for path in paths]
    output = Output(settings.output)
    failed = violated = False
    texts: list[str] = []
    try:
        for outcome in run_jobs(
            jobs, _limits(settings), settings.jobs, _progress if show else None
        ):
            _show_debug(outcome, settings.debug)
            if outcome.error is not None:
                _show_failure(outcome, settings.debug)
                failed = True
                if fmt == "jsonl":
                    record = {
                        "path": outcome.label,
                        "error": {"kind": outcome.error.kind, "message": outcome.error.line()},
                    }
                    output.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
            assert outcome.value is not None
            text, lines = outcome.value
            violated = violated or bool(lines)
            if settings.format != "table" or settings.output not in (None, "-"):
                for line in lines:  # the table already shows them on the terminal
                    print(f"{PROG}: violation: {outcome.label}: {line}", file=sys.stderr)
            if fmt == "jsonl":
                output.write(text)
            else:
                texts.append(text)
        if fmt != "jsonl" and texts:
            output.write(_merge(texts, fmt, single=len(paths) == 1))
    except BaseException:
        output.finish(ok=False)
        raise
    output.finish(ok=bool(texts) or fmt == "jsonl")
    return EXIT_ERROR if failed else EXIT_POLICY if violated else EXIT_OK


def diff_command(settings: Settings) -> int:
    jobs = [
        (settings.old, _report_job(settings.old, settings)),
        (settings.new, _report_job(settings.new, settings)),
    ]
    outcomes = list(run_jobs(jobs, _limits(settings), min(2, settings.jobs)))
    for outcome in outcomes:
        _show_debug(outcome, settings.debug)
        if outcome.error is not None:
            _show_failure(outcome, settings.debug)
    if any(o.error is not None for o in outcomes):
        return EXIT_ERROR
    old, new = outcomes[0].value, outcomes[1].value
    assert old is not None and new is not None
    result = diff(old, new, settings.max_growth)
    new_violations = [*result.new.violations]
    result = replace(result, violations=(*result.violations, *new_violations))
    output = Output(settings.output)
    try:
        output.write(render_diff(result, settings.format))
    except BaseException:
        output.finish(ok=False)
        raise
    output.finish(ok=True)
    if settings.format != "table" or settings.output not in (None, "-"):
        for violation in result.violations:
            print(f"{PROG}: violation: {violation.message}", file=sys.stderr)
    return EXIT_POLICY if result.violations else EXIT_OK


def info_command(argv: list[str]) -> int:
    if argv[0] == "rules":
        for rule in all_rules():
            flag = " (preview)" if rule.preview else ""
            print(f"{rule.code}  {rule.name}{flag}  {rule.summary}")
        return EXIT_OK
    if len(argv) != 2:
        _error("usage: onnx-audit explain CODE")
        return EXIT_ERROR
    for rule in all_rules():
        if argv[1].upper() == rule.code or argv[1] == rule.name:
            print(rule.doc(), end="")
            return EXIT_OK
    _error(f"unknown rule {argv[1]!r} (see `onnx-audit rules`)")
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("rules", "explain"):
        return info_command(args)
    command = "check"
    if args and args[0] in ("check", "diff", "verify"):
        command, args = args[0], args[1:]
    try:
        settings = parse_settings(command, args)
        return diff_command(settings) if command == "diff" else check(settings)
    except AuditError as exc:
        _error(exc.line())
        return EXIT_ERROR
    except OSError as exc:
        _error(f"{exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_ERROR


__all__ = ["build_parser", "main"]
