"""Where one `onnx-audit MODEL --format json` run spends its time, stage by stage, in every
process (the CLI, its sandboxed analysis child, the shape-inference child).

    python benchmarks/timeline.py ~/.cache/onnx-audit-bench/chain-50k.onnx

Wraps the pipeline's stage functions with timestamps written straight to a file descriptor
(a child's stderr is /dev/null), runs the CLI's main() as `onnx-audit` does, and prints one
line per stage: start and end (seconds since the interpreter was up) and the process. The
wrappers cost a few microseconds per call, on functions called once per run (Child.receive:
twice, the inference answer and the report). The package timed is this repository's.
"""

# ruff: noqa: PLC0415  (the CLI is imported after the clock starts, as a user's run imports it)

from __future__ import annotations

import functools
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's analyzer
STAGES = [  # (module, attribute): functions called once per run, in pipeline order
    ("analyzer.read.loader", "load"),
    ("analyzer.api", "sort_graphs"),
    ("analyzer.api", "build"),
    ("analyzer.view.graph", "_visit_graphs"),
    ("analyzer.view.shapes", "stand_in"),
    ("analyzer.view.shapes", "_run"),
    ("analyzer.view.shapes", "_propagates"),
    ("analyzer.view.shapes", "fold_reshapes"),
    ("analyzer.view.shapes", "shape_table"),
    ("analyzer.view.graph", "_links"),
    ("analyzer.api", "Constants"),
    ("analyzer.api", "_tallies"),
    ("analyzer.api", "account"),
    ("analyzer.api", "run"),
    ("analyzer.api", "exporter_notes"),
    ("analyzer.api", "analyze_with_debug"),
    ("analyzer.core.sandbox", "_send"),
    ("analyzer.core.sandbox", "Child.receive"),
    ("analyzer.cli.app", "_document"),  # renders the report (JSON here)
]


def _wrap(log: int, module: str, attribute: str) -> None:
    owner: Any = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    func: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            end = time.perf_counter()
            took = end - start
            line = f"{start - T0:.3f} {end - T0:.3f} {took:.3f} pid {os.getpid()} {attribute}\n"
            os.write(log, line.encode())

    setattr(owner, name, timed)


def _roles(lines: list[str]) -> dict[str, str]:
    """pid -> which process it is, from the stages it ran."""
    roles = {str(os.getpid()): "CLI"}
    for line in lines:
        pid, stage = line.split()[4], line.split()[-1]
        if stage == "_run":
            roles[pid] = "inference"
        elif stage == "analyze_with_debug":
            roles.setdefault(pid, "analysis")
    return roles


def main() -> int:
    with tempfile.NamedTemporaryFile("r", suffix=".log") as record:
        log = os.open(record.name, os.O_WRONLY | os.O_APPEND)
        from analyzer.cli import app

        for module, attribute in STAGES:
            _wrap(log, module, attribute)
        imported = time.perf_counter() - T0
        sys.argv = ["onnx-audit", *sys.argv[1:], "--format", "json"]
        stdout = sys.stdout
        with open(os.devnull, "w", encoding="utf-8") as sys.stdout:
            code = app.main()
        sys.stdout = stdout
        done = time.perf_counter() - T0
        lines = sorted(record.read().splitlines(), key=lambda line: float(line.split()[0]))
    roles = _roles(lines)
    print(f"{'start':>7} {'end':>7} {'took':>6}  {'process':<10} stage")
    print(f"{0:7.3f} {imported:7.3f} {imported:6.3f}  {'CLI':<10} imports (CLI and pipeline)")
    for line in lines:
        start, end, took, _, pid, stage = line.split()
        print(f"{start:>7} {end:>7} {took:>6}  {roles.get(pid, pid):<10} {stage}")
    print(f"{0:7.3f} {done:7.3f} {done:6.3f}  {'CLI':<10} whole run (exit code {code})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
