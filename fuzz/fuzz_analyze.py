"""Coverage-guided fuzzing of `analyzer.analyze` with atheris (libFuzzer for Python).

    pip install -e '.[fuzz]'
    python fuzz/fuzz_analyze.py fuzz/corpus sample_models -max_total_time=600

Every input is written to a scratch .onnx file and analysed in-process. AuditError is the
expected way to fail; any other exception is a finding (libFuzzer saves the input as
crash-<sha1>), and so is a crash or hang of onnx's shape inference, which analyze() contains
in a forked child and reports as a warning. With --structured (the default) half of the
mutations are made on the parsed ModelProto (dims, names, types, counts, whole messages), so
most inputs get past protobuf into the graph, shape and counting code; the other half are
libFuzzer's byte mutations.
See fuzz/README.md.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.message import DecodeError
    from onnx import ModelProto

    from analyzer import analyze
    from analyzer.core.errors import AuditError
    from analyzer.core.protowalk import all_messages

SCRATCH = Path(tempfile.mkdtemp(prefix="onnx-audit-fuzz-")) / "input.onnx"
INTS = (0, 1, -1, 2, 7, 2**31, 2**31 - 1, 2**62, -(2**63), 2**63 - 1, 10**6)
LIMITS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
}
STRUCTURED = "--no-structured" not in sys.argv


CONTAINED = ("shape inference crashed", "shape inference took over")
"""Warnings for onnx failures the fork contains: still findings (a cause to sanitize)."""


def test_one_input(data: bytes) -> None:
    SCRATCH.write_bytes(data)
    try:
        report = analyze(SCRATCH)
    except AuditError as exc:
        if "\n" in exc.line():
            raise AssertionError(f"multi-line error: {exc.line()!r}") from exc
        return
    contained = [w for w in report.warnings if w.startswith(CONTAINED)]
    if contained:
        raise AssertionError(contained[0])


def _new_value(field: FieldDescriptor, rng: random.Random, names: list[str]) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return rng.choice([*names, "", "evil.corp", "\n", "a" * 300])
    if kind == FieldDescriptor.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 64))
    if kind == FieldDescriptor.TYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values])
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return rng.choice([0.0, -1.0, 1e30, float("nan"), float("inf")])
    low, high = LIMITS.get(kind, (-(2**63), 2**63 - 1))
    return min(high, max(low, rng.choice(INTS)))


def mutate_model(model: ModelProto, rng: random.Random) -> None:
    """One reflective mutation: a field of a random message changed, cleared or duplicated."""
    graph = model.graph
    names = [n for node in graph.node for n in [*node.input, *node.output]][:50] or ["x"]
    messages = all_messages(model)
    message = rng.choice(messages)
    field = rng.choice(message.DESCRIPTOR.fields)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if not field.is_repeated:
            message.ClearField(field.name)
            return
        items = getattr(message, field.name)
        if len(items) and rng.random() < 0.5:
            del items[rng.randrange(len(items))]
        elif len(items):
            items.add().CopyFrom(items[rng.randrange(len(items))])
        return
    new = _new_value(field, rng, names)
    if not field.is_repeated:
        setattr(message, field.name, new)
        return
    items = getattr(message, field.name)
    if len(items) and rng.random() < 0.5:
        items[rng.randrange(len(items))] = new
    else:
        items.append(new)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if STRUCTURED and rng.random() < 0.5:
        model = ModelProto()
        try:
            model.ParseFromString(data)
            if model.HasField("graph"):
                for _ in range(rng.randint(1, 3)):
                    mutate_model(model, rng)
                out = model.SerializeToString()
                if len(out) <= max_size:
                    return out
        except (DecodeError, ValueError, TypeError):
            pass
    return bytes(atheris.Mutate(data, max_size))


def main() -> None:
    argv = [arg for arg in sys.argv if arg not in ("--structured", "--no-structured")]
    if not any(arg.startswith("-max_len") for arg in argv):
        argv.append("-max_len=1048576")  # the sample models reach 250 kB
    if not any(arg.startswith("-rss_limit_mb") for arg in argv):
        argv.append("-rss_limit_mb=4096")
    if not any(arg.startswith("-timeout") for arg in argv):
        argv.append("-timeout=30")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
