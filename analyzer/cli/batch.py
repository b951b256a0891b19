"""Run analyses in forked child processes under a memory cap and a time limit.

protobuf can grow a small hostile file into gigabytes, and an allocation failure inside it may
be a SIGSEGV rather than a MemoryError: only a separate process with RLIMIT_AS contains that.
Results come back pickled over a pipe; the order of results follows the order of the inputs.
Plain os.fork and os.pipe, not multiprocessing: one message per child needs no more, and the
CLI does not pay for importing it.
"""

from __future__ import annotations

import math
import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from analyzer.core.errors import AuditError, LimitExceededError

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


def memory_cap(requested: int | None) -> tuple[int | None, str]:
    """The address-space cap a child runs under, and where it comes from.

    Never above a limit the caller already set (ulimit -v, prlimit, a container): raising a
    hard limit is refused, and raising a soft one would undo what the caller asked for.
    """
    try:
        import resource  # noqa: PLC0415  (POSIX only)
    except ImportError:
        return requested, "--max-memory"
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    inherited = min((v for v in (soft, hard) if v != resource.RLIM_INFINITY), default=None)
    if inherited is not None and (not requested or inherited < requested):
        return inherited, "inherited limit"
    return requested, "--max-memory"


def cap_memory(requested: int | None) -> None:
    """Lower this process's RLIMIT_AS to memory_cap(requested); the hard limit stays."""
    cap, _ = memory_cap(requested)
    if not cap:
        return
    import resource  # noqa: PLC0415  (POSIX only; the child exists only where fork does)

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _child(writer: int, job: Callable[[list[str]], Any], max_memory: int | None) -> None:
    notes: list[str] = []
    try:
        _silence_stderr()
        cap_memory(max_memory)
        _send(writer, ("ok", job(notes), notes, ""))
    except AuditError as exc:
        _send(writer, ("error", exc, notes, traceback.format_exc()))
    except MemoryError:
        _send(writer, ("memory", None, notes, traceback.format_exc()))
    except BaseException as exc:  # report, never die silently
        _send(writer, ("crash", f"{type(exc).__name__}: {exc}", notes, traceback.format_exc()))
    finally:
        os.close(writer)


def _send(writer: int, message: tuple[str, Any, list[str], str]) -> None:
    """One message: its length (8 bytes) and the pickle; pickled whole before a byte is sent."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(writer, view) :]


def _read_exactly(reader: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(reader, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the child closed the pipe mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(reader: int) -> tuple[str, Any, list[str], str]:
    """The child's message; EOFError when it exited without sending one."""
    size = int.from_bytes(_read_exactly(reader, 8), "little")
    message: tuple[str, Any, list[str], str] = pickle.loads(_read_exactly(reader, size))
    return message


def _start(job: Callable[[list[str]], Any], max_memory: int | None) -> tuple[int, int]:
    """Fork a child running `job`; returns (pid, the pipe end to read its message from)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (runs in the child)
        code = 1  # an exception escaping _child: the parent reports the exit code
        try:
            os.close(reader)
            _child(writer, job, max_memory)
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    return pid, reader


def _ready(readers: list[int], timeout: float | None) -> set[int]:
    """The readers with data or a closed pipe, waiting at most `timeout` seconds."""
    poller = select.poll()
    for reader in readers:
        poller.register(reader, select.POLLIN)
    wait_ms = None if timeout is None else math.ceil(timeout * 1000)
    return {fd for fd, _ in poller.poll(wait_ms)}


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
        cap = _cap_text(limits.max_memory)
        limit = LimitExceededError(label, f"resource limit exceeded: memory over {cap}")
        return Outcome(label, None, limit, tuple(notes), trace)
    error = AuditError(label, f"internal error: {payload}", "rerun with --debug; please report it")
    return Outcome(label, None, error, tuple(notes), trace)


def _cap_text(requested: int | None) -> str:
    cap, source = memory_cap(requested)
    return f"{(cap or 0) / 1024**3:.1f} GiB ({source})"


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
    pid: int
    reader: int
    deadline: float | None
    exitcode: int | None = None

    def kill(self) -> None:
        if self.exitcode is None:
            os.kill(self.pid, signal.SIGKILL)

    def join(self) -> int:
        """Wait for the child; its exit code, or -N when signal N ended it."""
        if self.exitcode is None:
            _, status = os.waitpid(self.pid, 0)
            self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode


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
    pending = list(enumerate(jobs))
    pending.reverse()
    running: list[_Running] = []
    finished: dict[int, Outcome[Any]] = {}
    next_out = done = 0
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                index, (label, job) = pending.pop()
                pid, reader = _start(job, limits.max_memory)
                deadline = time.monotonic() + limits.timeout if limits.timeout else None
                running.append(_Running(index, label, pid, reader, deadline))
            deadlines = [r.deadline for r in running if r.deadline is not None]
            wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = _ready([r.reader for r in running], wait_for)
            now = time.monotonic()
            for item in list(running):
                outcome: Outcome[Any] | None = None
                if item.reader in ready:
                    try:
                        outcome = _decode(item.label, _receive(item.reader), limits)
                    except (EOFError, OSError):
                        outcome = _died(item.label, item.join(), limits)
                elif item.deadline is not None and now >= item.deadline:
                    item.kill()
                    error = LimitExceededError(
                        item.label, f"resource limit exceeded: over {limits.timeout:g} s"
                    )
                    outcome = Outcome(item.label, None, error)
                if outcome is None:
                    continue
                running.remove(item)
                os.close(item.reader)
                item.join()
                finished[item.index] = outcome
                done += 1
                if progress:
                    progress(done, len(jobs), item.label)
            while next_out in finished:
                yield finished.pop(next_out)
                next_out += 1
    finally:  # interrupted or abandoned: no child outlives the run
        for item in running:
            item.kill()
            os.close(item.reader)
            item.join()


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
