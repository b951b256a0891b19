"""onnxruntime in the audit: does the model run, and what does each suggested replacement cost?

Nothing here runs on the default static path: the CLI imports this module only for `verify`,
`--verify`, `--emit-candidate`. onnxruntime itself is imported lazily by `import_onnxruntime()`,
which first forces `ORT_DISABLE_TELEMETRY=1`: onnxruntime (1.32, Linux) otherwise starts a
telemetry client that writes under ~/.cache and can reach a remote host. The value is forced,
not defaulted: a user's `ORT_DISABLE_TELEMETRY=0` would re-enable it, and an audit tool never
phones home.

Only the CPU execution provider is used and no custom-op library is ever registered; external
data is checked first (runtime/reading.py).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
from onnx import helper

from analyzer.core import dtypes
from analyzer.core.errors import (
    UsageError,
)
from analyzer.core.results import OutputCheck, Report, Shape, Verification
from analyzer.read import loader
from analyzer.runtime.reading import (
    DEFAULT_MAX_EXTERNAL_BYTES,
    check_external_data_for_reading,
)

INSTALL_HINT = "pip install 'onnx-audit[runtime]'"
MAX_INPUT_ELEMENTS = 2**28
"""Largest random input verify() allocates (1 GiB of float32); larger is refused."""
QUIET = 4
"""onnxruntime log severity: fatal only."""


# --------------------------------------------------------------------------- import


def import_onnxruntime() -> ModuleType:
    """Import onnxruntime with telemetry off; a missing install is a UsageError with a hint."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # forced: "0" from the user would turn it back on
    try:
        import onnxruntime  # noqa: PLC0415  (lazy on purpose: never on the static path)
    except ImportError as exc:
        raise UsageError(
            "", f"onnxruntime is not installed ({exc.msg})", f"install it: {INSTALL_HINT}"
        ) from None
    module: ModuleType = onnxruntime
    return module


def runtime_name() -> str:
    """`onnxruntime 1.32.0 (CPUExecutionProvider)`."""
    ort = import_onnxruntime()
    return f"onnxruntime {ort.__version__} (CPUExecutionProvider)"


def machine_name() -> str:
    """CPU model, architecture, CPU count and OS of this machine, for Pricing.machine."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpu = cpu or platform.processor() or "unknown CPU"
    return f"{cpu} ({platform.machine()}, {os.cpu_count() or '?'} CPUs, {platform.system()})"


def open_session(ort: ModuleType, model: str | bytes) -> Any:
    """A CPU-only session: default graph optimizations, no custom ops, quiet logs.

    Failures are reported in one line by the caller, so onnxruntime's own log is silenced
    (severity 4 = fatal only) instead of printing a second, coloured copy on stderr.
    """
    options = ort.SessionOptions()
    options.log_severity_level = QUIET
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def one_line(exc: BaseException) -> str:
    """onnxruntime's reason as one line (its messages can span several)."""
    text = " ".join(str(exc).split())
    text = text or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


# --------------------------------------------------------------------------- verify

_NUMPY_TYPES: Mapping[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.str_,
}


def _input_dims(name: str, declared: Any, fixed: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Concrete dims of one input: --input-shape when given, else declared ints, else 1."""
    dims = list(declared or [])
    given = fixed.get(name)
    if given is not None:
        if dims and len(dims) != len(given):
            raise UsageError(
                "", f"--input-shape: {name!r} has rank {len(dims)}, got {len(given)} dims"
            )
        return tuple(int(d) for d in given)
    return tuple(d if isinstance(d, int) and d >= 0 else 1 for d in dims)


def random_input(type_name: str, dims: tuple[int, ...], rng: np.random.Generator) -> Any:
    """Seeded input: floats standard normal, integers zero (always a valid index), bools False."""
    kind = _NUMPY_TYPES.get(type_name)
    if kind is None:
        raise ValueError(f"cannot make a {type_name} input")
    elements = loader.element_count(dims)
    if elements > MAX_INPUT_ELEMENTS:
        raise ValueError(f"input of {elements:,} elements is over the {MAX_INPUT_ELEMENTS:,} cap")
    if np.issubdtype(kind, np.floating):
        return rng.standard_normal(dims).astype(kind)
    if kind is np.str_:
        return np.full(dims, "", dtype=object)
    return np.zeros(dims, dtype=kind)


def _dtype_name(value: Any) -> str:
    try:
        return dtypes.dtype_name(helper.np_dtype_to_tensor_dtype(value.dtype))
    except (KeyError, TypeError, ValueError):
        return str(value.dtype)


def shape_matches(actual: tuple[int, ...], expected: Shape | None) -> bool:
    """True when every static int dim agrees; a named or unknown dim matches anything."""
    if expected is None:
        return True
    if len(actual) != len(expected):
        return False
    return all(not isinstance(e, int) or e == a for a, e in zip(actual, expected, strict=True))


def _output_check(name: str, value: Any, expected: Shape | None) -> OutputCheck:
    if not isinstance(value, np.ndarray):
        kind = "sequence" if isinstance(value, list) else type(value).__name__
        seq_shape: tuple[int, ...] = (len(value),) if isinstance(value, list) else ()
        return OutputCheck(
            name=name, shape=seq_shape, dtype=kind, expected=expected, matches=expected is None,
            nan=0, inf=0,
        )  # fmt: skip
    shape = tuple(int(d) for d in value.shape)
    nan = inf = 0
    if np.issubdtype(value.dtype, np.floating):
        nan = int(np.count_nonzero(np.isnan(value)))
        inf = int(np.count_nonzero(np.isinf(value)))
    return OutputCheck(
        name=name,
        shape=shape,
        dtype=_dtype_name(value),
        expected=expected,
        matches=shape_matches(shape, expected),
        nan=nan,
        inf=inf,
    )


def verify(
    path: str | os.PathLike[str],
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    report: Report | None = None,
    *,
    seed: int = 0,
    max_external_bytes: int = DEFAULT_MAX_EXTERNAL_BYTES,
) -> Verification:
    """Run the model once in onnxruntime (CPU) on seeded random inputs.

    Dynamic dims come from `input_shapes`, else 1. Each output is compared with the static
    shape in `report.model.outputs` (when a report is given). A model onnxruntime cannot load
    or run gives Verification(ok=False, error=<onnxruntime's reason, one line>); a file that
    is not a model or has unsafe external data raises AuditError as analyze() does.
    """
    ort = import_onnxruntime()
    runtime = f"onnxruntime {ort.__version__} (CPUExecutionProvider)"
    check_external_data_for_reading(path, max_bytes=max_external_bytes)
    try:
        session = open_session(ort, str(path))
    except Exception as exc:  # onnxruntime raises its own unrelated types
        return Verification(ok=False, error=f"load failed: {one_line(exc)}", runtime=runtime)
    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    fixed = dict(input_shapes or {})
    declared = [value.name for value in session.get_inputs()]
    unknown = sorted(set(fixed) - set(declared))
    if unknown:
        raise UsageError(
            str(path),
            f"--input-shape: no graph input {unknown[0]!r}",
            f"inputs: {', '.join(declared)}",
        )
    try:
        for value in session.get_inputs():
            dims = _input_dims(value.name, value.shape, fixed)
            feeds[value.name] = random_input(value.type, dims, rng)
    except ValueError as exc:
        return Verification(ok=False, error=f"input {value.name!r}: {exc}", runtime=runtime)
    names = [value.name for value in session.get_outputs()]
    run_options = ort.RunOptions()
    run_options.log_severity_level = QUIET
    try:
        results = session.run(names, feeds, run_options)
    except Exception as exc:
        return Verification(ok=False, error=f"run failed: {one_line(exc)}", runtime=runtime)
    expected: dict[str, Shape | None] = dict(report.model.outputs) if report is not None else {}
    checks = tuple(
        _output_check(name, value, expected.get(name))
        for name, value in zip(names, results, strict=True)
    )
    return Verification(ok=True, error="", runtime=runtime, outputs=checks)


__all__ = [
    "INSTALL_HINT",
    "import_onnxruntime",
    "machine_name",
    "one_line",
    "open_session",
    "runtime_name",
    "shape_matches",
    "verify",
]
