"""Mutated sample models: a report or one error line, never a crash (bounded, deterministic).

Hypothesis flips, cuts, inserts, deletes and splices the bytes of the bundled sample models.
Through the CLI the result must be exit 0, 1 or 2 with one clean line on error; through
`analyze()` the only exception allowed is AuditError. Longer campaigns: fuzz/README.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import ModelProto

from analyzer import analyze
from analyzer.cli import main
from analyzer.core.errors import AuditError
from analyzer.core.protowalk import all_messages
from tests.conftest import SAMPLES

SEEDS = {path.name: path.read_bytes() for path in sorted(SAMPLES.glob("*.onnx"))}
INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x80",
    b"\x7f",
    b"\xff\xff\xff\xff\x0f",  # a varint of 2**32 - 1: lengths and dims
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # 2**63 as a varint
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # -1 as an int64 varint
    b"\x3a\x00",  # an empty graph field
    b"\x08\x01",  # a varint field 1
)
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
QUICK = settings(FUZZ, max_examples=60)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A sample model with one to four mutations applied."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "splice", "value"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "splice":
            donor = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            start = draw(st.integers(0, len(donor) - 1))
            chunk = donor[start : start + draw(st.integers(1, 512))]
            if draw(st.booleans()):
                data[at : at + len(chunk)] = chunk
            else:
                data[at:at] = chunk
        else:
            chunk = draw(st.sampled_from(INTERESTING))
            data[at : at + len(chunk)] = chunk
    return bytes(data)


INTS = (0, 1, -1, 2, 7, 2**31, 2**31 - 1, 2**62, -(2**63), 2**63 - 1, 10**6)
_LIMITS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
}


def _names(model: ModelProto) -> list[str]:
    graph = model.graph
    names = [v.name for v in [*graph.input, *graph.output]]
    names += [t.name for t in graph.initializer]
    names += [n for node in graph.node for n in [*node.input, *node.output]]
    return names or ["x"]


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """A sample model with well-formed protobuf but hostile content: dims, names, types,
    counts and whole messages changed through reflection, then serialized again."""
    model = ModelProto()
    model.ParseFromString(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    names = _names(model)
    for _ in range(draw(st.integers(1, 4))):
        messages = all_messages(model)
        message = messages[draw(st.integers(0, len(messages) - 1))]
        fields = message.DESCRIPTOR.fields
        field = fields[draw(st.integers(0, len(fields) - 1))]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                items = getattr(message, field.name)
                if len(items) and draw(st.booleans()):
                    del items[draw(st.integers(0, len(items) - 1))]
                elif len(items):
                    items.add().CopyFrom(items[draw(st.integers(0, len(items) - 1))])
            else:
                message.ClearField(field.name)
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            new: object = draw(st.sampled_from([*names[:50], "", "evil.corp", "\n", "a" * 300]))
        elif field.type in (FieldDescriptor.TYPE_BYTES,):
            new = draw(st.binary(max_size=64))
        elif field.type == FieldDescriptor.TYPE_ENUM:  # proto2 enums refuse unknown values
            new = draw(st.sampled_from([v.number for v in field.enum_type.values]))
        elif field.type == FieldDescriptor.TYPE_BOOL:
            new = draw(st.booleans())
        elif field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            new = draw(st.sampled_from([0.0, -1.0, 1e30, float("nan"), float("inf")]))
        else:
            low, high = _LIMITS.get(field.type, (-(2**63), 2**63 - 1))
            new = min(high, max(low, draw(st.sampled_from(INTS))))
        if field.is_repeated:
            items = getattr(message, field.name)
            if len(items) and draw(st.booleans()):
                items[draw(st.integers(0, len(items) - 1))] = new
            else:
                items.append(new)
        else:
            setattr(message, field.name, new)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mutated())
def test_mutated_models_through_analyze(workdir: Path, data: bytes) -> None:
    _analyze_or_audit_error(workdir / "mutated.onnx", data)


@FUZZ
@given(data=structured())
def test_structurally_mutated_models_through_analyze(workdir: Path, data: bytes) -> None:
    _analyze_or_audit_error(workdir / "structured.onnx", data)


@contextmanager
def memory_cap(extra: int = 2 * 1024**3) -> Iterator[None]:
    """RLIMIT_AS at the current size + `extra` while analysing, so a mutation that makes
    onnx or us allocate by a hostile length fails fast instead of swapping the test run."""
    try:
        import resource

        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (ImportError, OSError, ValueError):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = pages * os.sysconf("SC_PAGE_SIZE") + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _analyze_or_audit_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        with memory_cap():
            report = analyze(path)
    except AuditError as exc:
        assert "\n" not in exc.line() and exc.line().startswith(str(path))
        return
    assert report.totals.params >= 0
    assert not [w for w in report.warnings if w.startswith("shape inference crashed")]


@QUICK
@given(data=st.one_of(mutated(), structured()))
def test_mutated_models_through_the_cli(
    workdir: Path, capsys: pytest.CaptureFixture[str], data: bytes
) -> None:
    path = workdir / "mutated_cli.onnx"
    path.write_bytes(data)
    code = main([str(path), "--format", "json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code in (0, 1, 2)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith(f"onnx-audit: error: {path}: ")
    else:
        json.loads(out)
