"""The command line: a thin shell around analyze() that owns files, processes and exit codes.

Exit codes: 0 analysed, nothing violated; 1 a policy violated; 2 usage error or a model that
could not be analysed (one line on stderr each, a traceback only with --debug).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from analyzer.cli.batch import Limits, Outcome, run_jobs
from analyzer.cli.options import PROG, Settings, parse_settings, rule_filter
from analyzer.cli.policy import Policy, evaluate
from analyzer.core.errors import AuditError
from analyzer.core.sandbox import memory_cap
from analyzer.report.reporters import Reporter, reporter
from analyzer.report.reporters.layout import View, terminal_width, use_color, viewing

if TYPE_CHECKING:
    from analyzer.core.results import Report, Violation

EXIT_OK, EXIT_POLICY, EXIT_ERROR = 0, 1, 2
PROGRESS_MIN_MODELS = 4


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class Output:
    """The report's destination: stdout, or a temp file renamed into place only on success."""

    def __init__(self, target: str | None) -> None:
        self.target = None if target is None or target == "-" else Path(target)
        self.tmp: Path | None = None
        self.handle: IO[str] = sys.stdout
        if self.target is not None:
            import tempfile  # noqa: PLC0415  (only with -o FILE)

            folder = self.target.parent
            fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=folder)
            self.tmp = Path(tmp)
            # backslashreplace: a path that is not UTF-8 becomes a valid JSON escape (\udcff)
            self.handle = os.fdopen(
                fd, "w", encoding="utf-8", errors="backslashreplace", newline=""
            )

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
    """Files as given; folders searched recursively for *.onnx, sorted, symlinks not followed.
    A folder without any is passed on as it is, to be reported like any unreadable model."""
    for raw in paths:
        path = Path(raw)
        found = []
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.onnx") if p.is_file() and not p.is_symlink())
        if found:
            yield from (str(p) for p in found)
        else:  # a file, or a folder without models: the loader says what is wrong with it
            yield raw


def _progress(done: int, total: int, label: str) -> None:
    sys.stderr.write(f"\r\x1b[2K[{done}/{total}] {label}"[:200])
    if done == total:
        sys.stderr.write("\r\x1b[2K")
    sys.stderr.flush()


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_memory=settings.max_memory, timeout=settings.timeout, isolate=not settings.no_sandbox
    )


def _report_job(path: str, settings: Settings) -> Callable[[list[str]], Report]:
    from analyzer.api import analyze_with_debug  # noqa: PLC0415  (onnx: after parsing, before the fork)

    policy = Policy(
        max_params=settings.max_params,
        max_weight_bytes=settings.max_weight_bytes,
        max_layer_params=settings.max_layer_params,
        fail_on=tuple(settings.fail_on),
    )
    enabled = rule_filter(settings)
    cap, source = memory_cap(settings.max_memory)  # read here: the child's limit is the cap
    in_force = ("memory_cap", f"{cap} bytes ({source})" if cap else "none")
    if settings.no_sandbox:
        in_force = ("memory_cap", "none (--no-sandbox)")
    sandboxed = not settings.no_sandbox

    def job(notes: list[str]) -> Report:
        report, trail = analyze_with_debug(
            path,
            input_shapes=settings.input_shape,
            kernel=settings.kernel,
            min_ratio=settings.min_ratio,
            separable_min_channels=settings.separable_min_channels,
            rank=settings.rank,
            rule_filter=enabled,
            sandbox=sandboxed,
            inspect_weights=settings.inspect_weights,
        )
        notes.extend(trail)  # the sandbox hands a job a list for its debug notes
        report = replace(
            report,
            violations=evaluate(report, policy),
            settings=(*report.settings, in_force),
        )
        if settings.verify:
            report = _verify(path, report, settings)
        if settings.emit_candidate:
            from analyzer.runtime.candidate import emit_candidate  # noqa: PLC0415  (reads weights; opt-in)

            result = emit_candidate(
                path,
                report,
                settings.emit_candidate,
                force=settings.force,
                sandbox=sandboxed,
                input_shapes=settings.input_shape,
            )
            report = replace(report, notes=(*report.notes, result.summary()))
        return report

    return job


def _view(settings: Settings) -> View:
    """Width, depth and colour of the human-facing formats, read here in the parent."""
    to_terminal = settings.output in (None, "-") and sys.stdout.isatty()
    return View(
        width=terminal_width(),
        depth=settings.depth,
        color=use_color(settings.color, to_terminal),
    )


def _verify(path: str, report: Report, settings: Settings) -> Report:
    """Run the model in onnxruntime and price each finding; a failed run is a violation."""
    from analyzer.core.results import Violation  # noqa: PLC0415  (with pricing and runtime)
    from analyzer.runtime import pricing  # noqa: PLC0415  (onnxruntime off the static path)
    from analyzer.runtime import verify as runtime  # noqa: PLC0415  (with pricing)

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


def _document(reports: list[Report], fmt: Reporter, batch: bool) -> str:
    """The reports as one document: merged by the format when it can, else one after another."""
    if batch and fmt.merge is not None and reports:
        return fmt.merge(reports)
    return "\n".join(fmt.render(report) for report in reports)


def _echo_violations(
    fmt: Reporter, settings: Settings, violations: Sequence[Violation], label: str = ""
) -> None:
    """Violations go to stderr too, unless the rendering on the terminal shows them itself."""
    if fmt.shows_violations and settings.output in (None, "-"):
        return
    where = f"{label}: " if label else ""
    for violation in violations:
        print(f"{PROG}: violation: {where}{violation.message}", file=sys.stderr)


def _progress_bar(settings: Settings, paths: list[str]) -> Callable[[int, int, str], None] | None:
    """The progress line on a terminal, for a batch big enough to wait for."""
    show = sys.stderr.isatty() and len(paths) >= PROGRESS_MIN_MODELS and not settings.no_progress
    return _progress if show else None


def _refused(settings: Settings, fmt: Reporter, paths: list[str]) -> bool:
    """A batch of models where only one is allowed: said on stderr."""
    if settings.emit_candidate and len(paths) > 1:
        _error("--emit-candidate takes one model")
        return True
    if fmt.one_model and len(paths) > 1:
        _error(f"--format {fmt.name} writes one attachment per model: pass one model")
        return True
    return False


def _failed(outcome: Outcome[Report], fmt: Reporter, settings: Settings, output: Output) -> None:
    """A model that could not be analysed: on stderr, and as a record in a stream."""
    _show_failure(outcome, settings.debug)
    if fmt.streams and fmt.failure is not None and outcome.error is not None:
        error = outcome.error
        output.write(fmt.failure(outcome.label, error.kind, error.line()))


def check(settings: Settings) -> int:
    paths = list(expand_paths(settings.paths))
    fmt = reporter(settings.format)
    if _refused(settings, fmt, paths):
        return EXIT_ERROR
    jobs = [(path, _report_job(path, settings)) for path in paths]
    output = Output(settings.output)
    failed = violated = False
    reports: list[Report] = []
    view = _view(settings)
    try:
        for outcome in run_jobs(
            jobs, _limits(settings), settings.jobs, _progress_bar(settings, paths)
        ):
            _show_debug(outcome, settings.debug)
            if outcome.error is not None:
                _failed(outcome, fmt, settings, output)
                failed = True
                continue
            report = outcome.value
            assert report is not None
            violated = violated or bool(report.violations)
            _echo_violations(fmt, settings, report.violations, outcome.label)
            if fmt.streams:
                with viewing(view):
                    output.write(fmt.render(report))
            else:
                reports.append(report)
        if reports:
            with viewing(view):
                output.write(_document(reports, fmt, batch=len(paths) > 1))
    except BaseException:
        output.finish(ok=False)
        raise
    output.finish(ok=bool(reports) or fmt.streams)
    return EXIT_ERROR if failed else EXIT_POLICY if violated else EXIT_OK


def diff_command(settings: Settings) -> int:
    from analyzer.report.diff import diff  # noqa: PLC0415  (only for `onnx-audit diff`)
    from analyzer.report.reporters import render_diff  # noqa: PLC0415  (only for `diff`)

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
        with viewing(_view(settings)):
            output.write(render_diff(result, settings.format))
    except BaseException:
        output.finish(ok=False)
        raise
    output.finish(ok=True)
    _echo_violations(reporter(settings.format), settings, result.violations)
    return EXIT_POLICY if result.violations else EXIT_OK


def info_command(argv: list[str]) -> int:
    from analyzer.rules import all_rules  # noqa: PLC0415  (imports the analysis: onnx)

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
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:  # a file name that is not UTF-8, a stdout that is not UTF-8
        reconfigure(errors="backslashreplace")
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


def entry() -> None:
    """The `onnx-audit` command: main(), then exit at once.

    By then the report is written and flushed and nothing waits to run at exit, so the
    interpreter's teardown of onnx, numpy and protobuf (50-80 ms, a sixth of a big model's
    audit) is skipped. Tests call main(), which returns.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away: nothing more can be said
        code = code or EXIT_ERROR
    os._exit(code)


__all__ = ["entry", "main"]
