"""Run analyses in forked child processes under a memory cap and a time limit.

protobuf can grow a small hostile file into gigabytes, and an allocation failure inside it may
be a SIGSEGV rather than a MemoryError: only a separate process with RLIMIT_AS contains that.
Results come back pickled; the order of results follows the order of the inputs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from analyzer.errors import AuditError, LimitExceededError

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


def _child(conn: Connection, job: Callable[[list[str]], Any], max_memory: int | None) -> None:
    notes: list[str] = []
    try:
        _silence_stderr()
        if max_memory:
            import resource  # noqa: PLC0415  (POSIX only; the child exists only where fork does)

            resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
        conn.send(("ok", job(notes), notes, ""))
    except AuditError as exc:
        conn.send(("error", exc, notes, traceback.format_exc()))
    except MemoryError:
        conn.send(("memory", None, notes, traceback.format_exc()))
    except BaseException as exc:  # report, never die silently
        conn.send(("crash", f"{type(exc).__name__}: {exc}", notes, traceback.format_exc()))
    finally:
        conn.close()


def _silence_stderr() -> None:
    """C++ asserts and warnings in onnx/protobuf write to fd 2: keep the CLI's one-line promise."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _decode(label: str, message: tuple[str, Any, list[str], str], limits: Limits) -> Outcome[Any]:
    status, payload, notes, trace = message
    if status == "ok":
        return Outcome(label, payload, None, tuple(notes))
    if status == "error":
        return Outcome(label, None, payload, tuple(notes), trace)
    if status == "memory":
        cap = f"{(limits.max_memory or 0) / 1024**3:.1f} GiB"
        limit = LimitExceededError(label, f"resource limit exceeded: memory over {cap}")
        return Outcome(label, None, limit, tuple(notes), trace)
    error = AuditError(label, f"internal error: {payload}", "rerun with --debug; please report it")
    return Outcome(label, None, error, tuple(notes), trace)


def _in_process(label: str, job: Callable[[list[str]], Any]) -> Outcome[Any]:
    notes: list[str] = []
    try:
        return Outcome(label, job(notes), None, tuple(notes))
    except AuditError as exc:
        return Outcome(label, None, exc, tuple(notes), traceback.format_exc())
    except MemoryError:
        limit = LimitExceededError(label, "resource limit exceeded: out of memory")
        return Outcome(label, None, limit, tuple(notes), traceback.format_exc())
    except Exception as exc:
        error = AuditError(
            label, f"internal error: {type(exc).__name__}: {exc}", "rerun with --debug"
        )
        return Outcome(label, None, error, tuple(notes), traceback.format_exc())


@dataclass
class _Running:
    index: int
    label: str
    proc: Any
    conn: Connection
    deadline: float | None


def run_jobs(
    jobs: Sequence[tuple[str, Callable[[list[str]], Any]]],
    limits: Limits,
    workers: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
) -> Iterator[Outcome[Any]]:
    """Run (label, job) pairs, at most `workers` at once; yield outcomes in input order."""
    if not limits.isolate or not hasattr(os, "fork"):
        for done, (label, job) in enumerate(jobs, start=1):
            yield _in_process(label, job)
            if progress:
                progress(done, len(jobs), label)
        return
    context = multiprocessing.get_context("fork")
    pending = list(enumerate(jobs))
    pending.reverse()
    running: list[_Running] = []
    finished: dict[int, Outcome[Any]] = {}
    next_out = done = 0
    while pending or running:
        while pending and len(running) < max(1, workers):
            index, (label, job) = pending.pop()
            reader, writer = context.Pipe(duplex=False)
            proc = context.Process(
                target=_child, args=(writer, job, limits.max_memory), daemon=True
            )
            proc.start()
            writer.close()
            deadline = time.monotonic() + limits.timeout if limits.timeout else None
            running.append(_Running(index, label, proc, reader, deadline))
        deadlines = [r.deadline for r in running if r.deadline is not None]
        wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        ready = wait([r.conn for r in running], timeout=wait_for)
        now = time.monotonic()
        for item in list(running):
            outcome: Outcome[Any] | None = None
            if item.conn in ready:
                try:
                    outcome = _decode(item.label, item.conn.recv(), limits)
                except (EOFError, OSError):
                    item.proc.join()
                    outcome = _died(item.label, item.proc.exitcode, limits)
            elif item.deadline is not None and now >= item.deadline:
                item.proc.kill()
                error = LimitExceededError(
                    item.label, f"resource limit exceeded: over {limits.timeout:g} s"
                )
                outcome = Outcome(item.label, None, error)
            if outcome is None:
                continue
            item.conn.close()
            item.proc.join()
            running.remove(item)
            finished[item.index] = outcome
            done += 1
            if progress:
                progress(done, len(jobs), item.label)
        while next_out in finished:
            yield finished.pop(next_out)
            next_out += 1


def _died(label: str, exitcode: int | None, limits: Limits) -> Outcome[Any]:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        if number in (signal.SIGSEGV, signal.SIGKILL, signal.SIGBUS):
            cap = f"{(limits.max_memory or 0) / 1024**3:.1f} GiB"
            what = f"resource limit exceeded: the parser died with {name} (memory cap {cap})"
            return Outcome(label, None, LimitExceededError(label, what))
        what = f"the analysis crashed with {name} inside onnx or protobuf"
        return Outcome(label, None, AuditError(label, what, "rerun with --debug; please report it"))
    error = AuditError(label, f"internal error: the analysis process exited with {exitcode}")
    return Outcome(label, None, error)
