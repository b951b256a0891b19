"""Run a batch of analyses in sandboxed children, several at once, under a time limit.

Each job runs in its own child (analyzer.core.sandbox) capped at --max-memory; outcomes come
back in the order of the inputs, whatever order the children finish in.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from analyzer.core.errors import AuditError, LimitExceededError
from analyzer.core.sandbox import Child, Message, memory_cap, run_here, spawn, wait_any

T = TypeVar("T")
DEFAULT_MAX_MEMORY = 4 * 1024**3
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_memory: int | None = DEFAULT_MAX_MEMORY
    timeout: float | None = DEFAULT_TIMEOUT
    isolate: bool = True
    """False runs in-process (no fork available, or the caller asked)."""


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """One job's result: a value, or the error that stopped it, plus debug notes."""

    label: str
    value: T | None
    error: AuditError | None
    debug: tuple[str, ...] = ()
    trace: str = ""


def _decode(label: str, message: Message, limits: Limits, forked: bool = True) -> Outcome[Any]:
    status, payload, notes, trace = message
    if status == "ok":
        return Outcome(label, payload, None, tuple(notes))
    if status == "error":
        return Outcome(label, None, payload, tuple(notes), trace)
    if status == "memory":
        what = f"memory over {_cap_text(limits.max_memory)}" if forked else "out of memory"
        limit = LimitExceededError(label, f"resource limit exceeded: {what}")
        return Outcome(label, None, limit, tuple(notes), trace)
    hint = "rerun with --debug; please report it" if forked else "rerun with --debug"
    error = AuditError(label, f"internal error: {payload}", hint)
    return Outcome(label, None, error, tuple(notes), trace)


def _cap_text(requested: int | None) -> str:
    cap, source = memory_cap(requested)
    return f"{(cap or 0) / 1024**3:.1f} GiB ({source})"


@dataclass(frozen=True, slots=True)
class _Running:
    index: int
    label: str
    child: Child
    deadline: float | None


def run_jobs(
    jobs: Sequence[tuple[str, Callable[[list[str]], T]]],
    limits: Limits,
    workers: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
) -> Iterator[Outcome[T]]:
    """Run (label, job) pairs, at most `workers` at once; yield outcomes in input order."""
    if not limits.isolate or not hasattr(os, "fork"):
        yield from _run_in_process(jobs, limits, progress)
        return

    def cap() -> int | None:  # runs in the child: the limit it inherited
        return memory_cap(limits.max_memory)[0]

    pending = list(enumerate(jobs))
    pending.reverse()
    running: list[_Running] = []
    finished: dict[int, Outcome[T]] = {}
    next_out = done = 0
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                index, (label, job) = pending.pop()
                deadline = time.monotonic() + limits.timeout if limits.timeout else None
                running.append(_Running(index, label, spawn(job, cap), deadline))
            ready = _wait(running)
            now = time.monotonic()
            for item in list(running):
                outcome: Outcome[T] | None = _outcome(item, ready, now, limits)
                if outcome is None:
                    continue
                running.remove(item)
                item.child.close(kill=False)
                finished[item.index] = outcome
                done += 1
                if progress:
                    progress(done, len(jobs), item.label)
            while next_out in finished:
                yield finished.pop(next_out)
                next_out += 1
    finally:  # interrupted or abandoned: no child outlives the run
        for item in running:
            item.child.close()


def _run_in_process(
    jobs: Sequence[tuple[str, Callable[[list[str]], T]]],
    limits: Limits,
    progress: Callable[[int, int, str], None] | None,
) -> Iterator[Outcome[T]]:
    """Each job in this process, one after another (no sandbox)."""
    for done, (label, job) in enumerate(jobs, start=1):
        yield _decode(label, run_here(job), limits, forked=False)
        if progress:
            progress(done, len(jobs), label)


def _wait(running: list[_Running]) -> set[int]:
    """The running children's readers that have something, waiting until the first deadline."""
    deadlines = [r.deadline for r in running if r.deadline is not None]
    wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
    return wait_any([r.child.reader for r in running], wait_for)


def _outcome(item: _Running, ready: set[int], now: float, limits: Limits) -> Outcome[Any] | None:
    """The child's outcome when it has answered, died or run out of time; else None."""
    if item.child.reader in ready:
        try:
            return _decode(item.label, item.child.receive(), limits)
        except (EOFError, OSError):
            return _died(item.label, item.child.join(), limits)
    if item.deadline is not None and now >= item.deadline:
        item.child.kill()
        error = LimitExceededError(
            item.label, f"resource limit exceeded: over {limits.timeout:g} s"
        )
        return Outcome(item.label, None, error)
    return None


def _died(label: str, exitcode: int | None, limits: Limits) -> Outcome[Any]:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        if number in (signal.SIGSEGV, signal.SIGKILL, signal.SIGBUS):
            cap = _cap_text(limits.max_memory)
            what = f"resource limit exceeded: the parser died with {name} (memory cap {cap})"
            return Outcome(label, None, LimitExceededError(label, what))
        what = f"the analysis crashed with {name} inside onnx or protobuf"
        return Outcome(label, None, AuditError(label, what, "rerun with --debug; please report it"))
    cap = _cap_text(limits.max_memory)
    error = AuditError(
        label,
        f"the analysis process exited with {exitcode} without a result",
        f"most likely out of memory under the {cap} cap (--max-memory); else rerun with --debug",
    )
    return Outcome(label, None, error)
