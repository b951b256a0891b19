"""Run a job in a forked child under an address-space cap, its answer pickled over a pipe.

protobuf and onnx's C++ can turn a small hostile file into gigabytes, an abort or a segfault:
only a separate process with RLIMIT_AS contains that. One implementation serves the batch
runner (one child per model) and shape inference (one child beside the analysis). Plain
os.fork and os.pipe, not multiprocessing: one message per child needs no more, and the CLI
does not pay for importing it. `enabled()` is the off switch, for debugging and library use.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import math
import os
import pickle
import select
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analyzer.core.errors import AuditError

ENV_OFF = "ONNX_AUDIT_NO_SANDBOX"
Job = Callable[[list[str]], Any]
"""A job takes a list for its debug notes (returned even when it fails) and returns a value."""
Message = tuple[str, Any, list[str], str]
"""(status, payload, notes, traceback); status "ok", "error" (an AuditError), "memory" or
"crash" (payload: "Type: message")."""


def enabled(requested: bool | None = None) -> bool:
    """Whether to fork: as requested, else unless ONNX_AUDIT_NO_SANDBOX=1; never without fork."""
    if not hasattr(os, "fork"):
        return False
    if requested is None:
        return os.environ.get(ENV_OFF, "") not in ("1", "true", "yes")
    return requested


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


def lower_memory(cap: int | None) -> None:
    """Lower this process's soft RLIMIT_AS to `cap`; the hard limit stays."""
    if not cap:
        return
    import resource  # noqa: PLC0415  (POSIX only; the child exists only where fork does)

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def run_here(job: Job) -> Message:
    """Run `job` in this process and answer as a child would (no cap, stderr intact)."""
    notes: list[str] = []
    try:
        return "ok", job(notes), notes, ""
    except AuditError as exc:
        return "error", exc, notes, traceback.format_exc()
    except MemoryError:
        return "memory", None, notes, traceback.format_exc()
    except Exception as exc:
        return "crash", f"{type(exc).__name__}: {exc}", notes, traceback.format_exc()


@dataclass
class Child:
    """A forked child running one job; read its one message, then join it."""

    pid: int
    reader: int
    exitcode: int | None = None

    def ready(self, timeout: float | None) -> bool:
        """Whether the message (or the end of the pipe) arrived within `timeout` seconds."""
        return bool(wait_any([self.reader], timeout))

    def receive(self) -> Message:
        """The child's message; EOFError when it exited without sending one."""
        size = int.from_bytes(_read_exactly(self.reader, 8), "little")
        data = _read_exactly(self.reader, size)
        was_enabled = gc.isenabled()
        gc.disable()  # a 50,000-layer Report is 150,000 new records: 0.8 s of collector passes
        try:
            message: Message = pickle.loads(data)
        finally:
            if was_enabled:
                gc.enable()
        return message

    def kill(self) -> None:
        if self.exitcode is None:
            with contextlib.suppress(ProcessLookupError):  # gone, not yet reaped
                os.kill(self.pid, signal.SIGKILL)

    def join(self) -> int:
        """Wait for the child; its exit code, or -N when signal N ended it."""
        if self.exitcode is None:
            _, status = os.waitpid(self.pid, 0)
            self.exitcode = os.waitstatus_to_exitcode(status)
        return self.exitcode

    def close(self, kill: bool = True) -> int:
        """Close the pipe, kill the child first when `kill`, reap it; its exit code."""
        os.close(self.reader)
        if kill:
            self.kill()
        return self.join()


def spawn(job: Job, cap: Callable[[], int | None], alarm: float | None = None) -> Child:
    """Fork a child that silences stderr, lowers RLIMIT_AS to cap(), runs `job`, sends one
    Message and exits (1 when the job failed). `alarm` seconds end it even when nobody waits.
    `cap` runs in the child, so it may measure the child itself."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover  (runs in the child)
        code = 1  # an exception escaping: the parent reports the exit code
        try:
            os.close(reader)
            code = _child(writer, job, cap, alarm)
        finally:
            os._exit(code)
    os.close(writer)
    return Child(pid, reader)


def _child(
    writer: int, job: Job, cap: Callable[[], int | None], alarm: float | None
) -> int:  # pragma: no cover  (runs in the child)
    faulthandler.disable()  # it writes to its own copy of stderr
    if alarm is not None:
        signal.alarm(math.ceil(alarm) + 1)
    _silence_stderr()
    # No cyclic garbage collector in a child: it runs one job and exits, and reference counting
    # frees what the job drops. The analysis pauses the collector anyway; turned back on, its
    # first pass scanned every record the analysis had made (0.1 s on a 50,000-node graph),
    # and pickling the Report makes 100,000 more objects (another 0.1 s of passes).
    gc.disable()
    message: Message
    try:
        lower_memory(cap())
        message = run_here(job)
    except MemoryError:
        message = "memory", None, [], traceback.format_exc()
    except BaseException as exc:  # report, never die silently
        message = "crash", f"{type(exc).__name__}: {exc}", [], traceback.format_exc()
    try:
        _send(writer, message)
    finally:
        os.close(writer)
    return 0 if message[0] == "ok" else 1


def _silence_stderr() -> None:
    """C++ asserts and warnings in onnx/protobuf write to fd 2: keep the CLI's one-line promise."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _send(writer: int, message: Message) -> None:
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


def wait_any(readers: list[int], timeout: float | None) -> set[int]:
    """The readers with data or a closed pipe, waiting at most `timeout` seconds."""
    poller = select.poll()
    for reader in readers:
        poller.register(reader, select.POLLIN)
    wait_ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return {fd for fd, _ in poller.poll(wait_ms)}
