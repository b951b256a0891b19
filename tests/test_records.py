"""core.records: the quick `__init__` takes and makes exactly what the dataclass's own does."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

import pytest

from analyzer.core.records import quick_init, row_builder
from analyzer.core.results import LayerTally, WeightRef
from analyzer.core.symbolic import Poly


def _sample_class(fast: bool) -> type:
    @dataclass(frozen=True, slots=True)
    class Sample:
        a: int
        b: str = "b"
        c: list[int] = field(default_factory=list)
        d: int = field(default=4, kw_only=True)
        e: tuple[int, ...] = field(kw_only=True, default=())

    return quick_init(Sample) if fast else Sample


def test_same_signature_values_and_errors_as_the_dataclass_init() -> None:
    slow, fast = _sample_class(False), _sample_class(True)
    assert str(inspect.signature(fast)) == str(inspect.signature(slow))
    for args, kwargs in [((1,), {}), ((1, "x", [2]), {"d": 5, "e": (6,)}), ((), {"a": 3})]:
        made, expected = fast(*args, **kwargs), slow(*args, **kwargs)
        assert [getattr(made, f.name) for f in dataclasses.fields(fast)] == [
            getattr(expected, f.name) for f in dataclasses.fields(slow)
        ]
    assert fast(1).c is not fast(1).c  # a fresh default per record, as the factory promises
    for args, kwargs in [((), {}), ((1, "x", [], 4), {}), ((1,), {"z": 1})]:
        with pytest.raises(TypeError) as fast_error:
            fast(*args, **kwargs)
        with pytest.raises(TypeError) as slow_error:
            slow(*args, **kwargs)
        assert str(fast_error.value).split(") ")[-1] == str(slow_error.value).split(") ")[-1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast(1).a = 2  # type: ignore[misc]


def test_refuses_classes_it_cannot_build() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError

    for cls in (Mutable, Checked):
        with pytest.raises(TypeError):
            quick_init(cls)


def test_row_builder_rebuilds_a_record_from_its_values() -> None:
    weight = WeightRef(
        tensor="w", role="weight", kind="trainable", shape=(2, 3), dtype="float",
        elements=6, nbytes=24, location="embedded", shared=True, via=("Transpose",),
    )  # fmt: skip
    layer = LayerTally(name="n", op_type="Gemm", params=6, macs=Poly.of(6), weights=(weight,))
    for record in (weight, layer):
        values = [getattr(record, f.name) for f in dataclasses.fields(record)]
        rebuilt = row_builder(type(record))(values)
        assert rebuilt == record
        assert type(rebuilt) is type(record)
