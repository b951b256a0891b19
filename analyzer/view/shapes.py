"""Shape inference on the skeleton (the user's fixes for dynamic input dims: `inputshapes`).

Large weights arrive as typed external-marked tensors, so onnx infers from dims and types
alone; the skeleton is small, so inference stays fast even for multi-GB models.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from analyzer.core.errors import quote
from analyzer.core.onnxproto import GraphProto, ModelProto, ValueInfoProto
from analyzer.core.protowalk import iter_graphs
from analyzer.core.sandbox import Child, Message, run_here, spawn
from analyzer.core.sandbox import enabled as sandbox_enabled
from analyzer.view import engine as engines
from analyzer.view.engine import Engine
from analyzer.view.gendims import clear_generated_dims
from analyzer.view.opcheck import unknown_op_warnings
from analyzer.view.shapefold import declare_ranges, fold_reshapes
from analyzer.view.shapetable import ShapeTable, shape_table
from analyzer.view.standins import stand_in

Inferred = tuple[ShapeTable | None, list[str]]
"""The shape table of the inferred model (None when inference failed) and the warnings."""


def version_warnings(model: ModelProto, engine: Engine) -> list[str]:
    """An IR version or standard opset this onnx does not know degrades to a warning.

    Counting reads dims and types, which every IR version stores alike; only shape inference
    depends on the schemas, and onnx applies its newest ones to a future opset. So the analysis
    goes on, and the report says why shapes (and MACs) may be missing or approximate. Asked
    in the inference child, where onnx's code is loaded.
    """
    warnings: list[str] = []
    version = engine.version
    if model.ir_version > engine.ir_version:
        warnings.append(
            f"IR version {model.ir_version} is newer than onnx {version} knows "
            f"({engine.ir_version}): fields it added are ignored"
        )
    known = engine.opsets
    imported: dict[str, int] = {}
    for opset in model.opset_import:
        domain = "" if opset.domain in ("", "ai.onnx") else opset.domain
        imported[domain] = opset.version
        label = domain or "ai.onnx"
        if opset.version < 1:
            warnings.append(f"opset_import {label} {opset.version} is not a valid version")
        elif domain in known and opset.version > known[domain]:
            warnings.append(
                f"opset {label} {opset.version} is newer than onnx {version} knows "
                f"({known[domain]}): shapes follow opset {known[domain]} rules"
            )
    if "" not in imported and any(n.domain in ("", "ai.onnx") for n in model.graph.node):
        warnings.append("the model imports no ai.onnx opset: shapes cannot be inferred")
    return warnings


MAX_SHAPE_VECTOR = 1_000_000
"""Longest 1-D tensor onnx's data propagation may see. Cast, Squeeze, Unsqueeze, Concat and
Size keep one proto dim per element of a 1-D input, whatever its type or values (about 70 MB
per op for 10**6 elements, std::bad_alloc for 10**8); shape vectors have one element per dim."""


def _long_vectors(model: ModelProto, declared_only: bool) -> Iterator[tuple[ValueInfoProto, int]]:
    """1-D values longer than MAX_SHAPE_VECTOR, and their length."""
    for graph in iter_graphs(model):
        values = [*graph.value_info, *graph.output]
        if not declared_only:
            values += graph.input
        for value in values:
            tensor_type = value.type.tensor_type
            if not tensor_type.HasField("shape"):
                continue
            dims = tensor_type.shape.dim
            if len(dims) == 1 and dims[0].dim_value > MAX_SHAPE_VECTOR:
                yield value, dims[0].dim_value


def defuse_declared_shapes(model: ModelProto) -> list[str]:
    """Forget declared lengths of 1-D tensors over MAX_SHAPE_VECTOR, in place.

    A file that declares Shape's output as [2**31 - 1] makes data propagation allocate by that
    length (std::bad_alloc after gigabytes); inference derives the real length anyway.
    """
    warnings: list[str] = []
    for value, length in list(_long_vectors(model, declared_only=True)):
        value.type.tensor_type.shape.dim[0].Clear()
        warnings.append(
            f"declared length {length:,} of 1-D tensor {quote(value.name)} ignored by shape "
            "inference"
        )
    return warnings


def _run(model: ModelProto, data_prop: bool, engine: Engine) -> tuple[ModelProto, list[str], bool]:
    """onnx shape inference, strict first; on failure retry leniently and say so.

    Returns the model (inferred, or as given when inference failed outright), the warnings,
    and whether inference ran at all.
    """
    warnings: list[str] = []
    try:
        inferred = engine.infer_shapes(model, strict_mode=True, data_prop=data_prop)
        return inferred, warnings, True
    except Exception as exc:  # onnx raises several unrelated types here
        warnings.append(f"shape inference (strict) failed: {_first_line(exc, 300)}")
    try:
        inferred = engine.infer_shapes(model, strict_mode=False, data_prop=data_prop)
        return inferred, warnings, True
    except Exception as exc:
        what = _first_line(exc, 200)
        warnings.append(f"shape inference failed; shapes and MACs are partial: {what}")
        return model, warnings, False


def _first_line(exc: BaseException, limit: int) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def import_missing_domains(model: ModelProto) -> list[str]:
    """Give every custom op domain without an opset_import version 1, in place.

    onnx aborts shape inference for the whole model (even leniently) on one node whose domain
    is not imported; imported, an op it has no schema for only loses its own shapes.
    """
    imported = {o.domain for o in model.opset_import}
    if "ai.onnx" in imported:
        imported.add("")
    used: dict[str, None] = {}
    for graph in iter_graphs(model):
        for node in graph.node:
            used.setdefault(node.domain)
    for fn in model.functions:
        for node in fn.node:
            used.setdefault(node.domain)
    missing = [d for d in used if d not in imported and d not in ("", "ai.onnx")]
    for domain in missing:
        model.opset_import.add(domain=domain, version=1)
    if not missing:
        return []
    names = ", ".join(quote(d, 40) for d in missing[:5])
    more = f" and {len(missing) - 5:,} more" if len(missing) > 5 else ""
    return [f"op domain(s) {names}{more} not in opset_import: imported as version 1"]


def clear_negative_dims(model: ModelProto) -> list[str]:
    """Turn declared negative dims (inputs, outputs, value_info) into unknown ones, in place.

    onnx's libstdc++ is built with assertions: a negative declared dim reaching Slice's
    std::clamp aborts the whole process (SIGABRT), not a catchable error.
    """
    cleared: list[str] = []
    for graph in iter_graphs(model):
        for value in [*graph.input, *graph.output, *graph.value_info]:
            types = [value.type]
            while types:
                kind = types.pop()
                for holder in (kind.tensor_type, kind.sparse_tensor_type):
                    for dim in holder.shape.dim:
                        if dim.HasField("dim_value") and dim.dim_value < 0:
                            dim.Clear()
                            cleared.append(value.name)
                if kind.HasField("sequence_type"):
                    types.append(kind.sequence_type.elem_type)
                if kind.HasField("optional_type"):
                    types.append(kind.optional_type.elem_type)
                if kind.HasField("map_type"):
                    types.append(kind.map_type.value_type)
    if not cleared:
        return []
    names = ", ".join(quote(n, 40) for n in dict.fromkeys(cleared[:5]))
    return [f"negative declared dims of {names} treated as unknown"]


_DATA_SOURCES = frozenset({"Shape", "Size"})


def _propagates(model: ModelProto) -> bool:
    """Whether data propagation could learn anything that plain inference does not.

    Its values start at Shape or Size, or at a node computed from constants alone (Cast or
    Concat of constants, say); constants read directly (initializers, Constant nodes) plain
    inference reads too. It only carries 0-D and 1-D values, so a node on a weight matrix (the
    Transpose of a tied embedding) starts nothing. A graph with neither, like a long chain of
    Add and Mul on weights, is spared the second full pass, as slow as the first.
    """
    graphs = list(iter_graphs(model))
    constants = _constant_names(graphs)
    nodes = [node for graph in graphs for node in graph.node]
    nodes += [node for fn in model.functions for node in fn.node]
    for node in nodes:
        if node.op_type in _DATA_SOURCES:
            return True
        if node.op_type != "Constant" and node.input and constants.issuperset(node.input):
            return True
    return False


def _constant_names(graphs: list[GraphProto]) -> set[str]:
    """Values plain inference reads as constants: 0-D and 1-D initializers, Constant nodes."""
    constants = {""}  # an omitted optional input is no computed value
    for graph in graphs:
        constants.update(t.name for t in graph.initializer if len(t.dims) <= 1)
        constants.update(s.values.name for s in graph.sparse_initializer)
        constants.update(n.output[0] for n in graph.node if n.op_type == "Constant" and n.output)
    return constants


def _infer_here(model: ModelProto, engine: Engine) -> tuple[ModelProto, list[str]]:
    """Shape inference with data propagation, when that is safe.

    A first pass without data propagation (no values, so no allocation by length) finds 1-D
    tensors too long for data propagation to hold; if there are any, or if that pass fails
    outright (the second would fail alike, after allocating), its result is kept and the
    report says why shapes computed from shapes may be missing. A model where data propagation
    has nothing to start from keeps the first pass's result.
    """
    plain, warnings, ran = _run(model, False, engine)
    if not ran or not _propagates(model):
        return _refold(model, plain, warnings, False, engine)
    long = next(_long_vectors(plain, declared_only=False), None)
    if long is not None:
        value, length = long
        warnings.append(
            f"shape data propagation skipped: {quote(value.name)} is a 1-D tensor of "
            f"{length:,} elements (over {MAX_SHAPE_VECTOR:,})"
        )
        return plain, warnings
    inferred, more, _ = _run(model, True, engine)
    return _refold(model, inferred, more, True, engine)


def _refold(
    model: ModelProto, inferred: ModelProto, warnings: list[str], data_prop: bool, engine: Engine
) -> tuple[ModelProto, list[str]]:
    """One more pass when Reshape targets computed from shapes could be folded (see
    shapefold); the first result stands if that pass fails."""
    if not fold_reshapes(model, inferred):
        return inferred, warnings
    again, more, ran = _run(model, data_prop, engine)
    return (again, more) if ran and not more else (inferred, warnings)


SHAPE_TIMEOUT = 60.0
"""Seconds onnx shape inference may take before the analysis goes on without its shapes. On
payload-free skeletons real models infer in seconds (GPT-2 XL: 0.3 s); onnx's own inference
grows faster than linearly in If nodes (15,000 of them: 26 s), which hostile files exploit."""
SHAPE_MEMORY = 2 * 1024**3
"""Address space shape inference may add to the process before it fails (std::bad_alloc)."""


def _address_space() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _shape_cap() -> int | None:
    """In the child: its address space now plus SHAPE_MEMORY, never above its soft limit."""
    size = _address_space()
    if size is None:
        return None
    import resource  # noqa: PLC0415  (POSIX only, like fork)

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + SHAPE_MEMORY
    return cap if soft == resource.RLIM_INFINITY else min(cap, soft)


Answer = tuple[ShapeTable | None, list[str], list[str]]
"""What the inference job sends: the table, the version warnings, the inference warnings."""


def _stand_in_and_infer(model: ModelProto, light: bool) -> Answer:
    """Contrib ops block onnx's inference: stand-ins replace them in `model` (a child's own
    copy, or a copy made for in-process inference), then the table is inferred. `light`: onnx's
    C++ extension alone (in the child), else `import onnx`."""
    engine = engines.load(light)
    versions = version_warnings(model, engine) + unknown_op_warnings(model, engine)
    stand_in(model)
    declare_ranges(model)
    inferred, warnings = _infer_here(model, engine)
    return (None if inferred is model else shape_table(inferred)), versions, warnings


class Inference:
    """onnx shape inference on the skeleton, fenced off from what hostile files do to it.

    The model is first cleaned (in place) of what makes onnx abort or allocate by a declared
    length, then inferred in a forked child where fork exists, so onnx's C++ cannot take the
    analysis down: an assertion (SIGABRT), a segfault, a runaway allocation or a hang there
    becomes a warning and the analysis goes on without inferred shapes. The caller works on
    meanwhile (on the second core) and calls result() when it needs the shapes.
    """

    def __init__(self, model: ModelProto, sandbox: bool | None = None) -> None:
        self.warnings = import_missing_domains(model)
        self.warnings += defuse_declared_shapes(model) + clear_negative_dims(model)
        clear_generated_dims(model)
        self.child: Child | None = None
        self.done: Answer | None = None
        if not sandbox_enabled(sandbox):  # in this process, on a copy: stand_in edits it
            copy = ModelProto()
            copy.CopyFrom(model)
            message = run_here(lambda _: _stand_in_and_infer(copy, light=False))
            self.done = _decode(message, 0 if message[0] == "ok" else 1, timed_out=False)
            return
        job = lambda _: _stand_in_and_infer(model, light=True)  # noqa: E731
        self.child = spawn(job, _shape_cap, SHAPE_TIMEOUT)
        self.deadline = time.monotonic() + SHAPE_TIMEOUT

    def result(self) -> Inferred:
        """The shape table (None when inference failed or was cut short) and all warnings."""
        if self.done is None and self.child is not None:
            child, message, timed_out = self.child, None, True
            try:
                timed_out = not child.ready(self.deadline - time.monotonic())
                if not timed_out:
                    with contextlib.suppress(EOFError, OSError):
                        message = child.receive()
            finally:
                self.child = None
                exitcode = child.close(kill=timed_out)
            self.done = _decode(message, exitcode, timed_out)
        table, versions, warnings = self.done or (None, [], [])
        return table, versions + self.warnings + warnings

    def close(self) -> None:
        """Kill and reap the child; a later result() has no shapes to give."""
        if self.child is not None:
            self.child.close()
            self.child = None
        if self.done is None:
            self.done = None, [], []


def _decode(message: Message | None, exitcode: int, timed_out: bool) -> Answer:
    """The job's answer; a timeout or crash is a warning (and the version warnings are lost)."""
    if timed_out:
        return (
            None,
            [],
            [f"shape inference took over {SHAPE_TIMEOUT:g} s; shapes and MACs are partial"],
        )
    if message is None or message[0] != "ok" or exitcode != 0:
        if exitcode < 0 and -exitcode in signal.valid_signals():
            how = signal.Signals(-exitcode).name
        else:
            how = f"exit status {exitcode}"
        return None, [], [f"shape inference crashed ({how}); shapes and MACs are partial"]
    answer: Answer = message[1]
    return answer


def infer(model: ModelProto) -> Inferred:
    """Inference(model).result(): for callers with nothing to do meanwhile."""
    return Inference(model).result()
