"""serialize.encode / dumps write records straight from the dataclasses: the text must be the
same as encoding the generic to_data walk, byte for byte."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import analyze
from analyzer.core.results import (
    Finding,
    LayerTally,
    ModelInfo,
    OutputCheck,
    Pricing,
    Report,
    Totals,
    Verification,
    Violation,
    WeightRef,
)
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import render
from analyzer.report.reporters.modtree import module_records
from analyzer.report.serialize import dumps, encode, to_data
from analyzer.rules.dense_on_spatial import DenseOnSpatial
from tests.conftest import ROOT, SAMPLES

MODELS = sorted(p.relative_to(ROOT).as_posix() for p in SAMPLES.rglob("*.onnx"))


def readable(data: Any) -> str:
    """The layout of --format json, written the obvious way over plain data (the reference)."""
    if not isinstance(data, dict):
        return json.dumps(data, ensure_ascii=False)
    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict | list):
            body = ",\n".join("    " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f"  {json.dumps(key)}: [\n{body}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}"


def check(report: Report) -> None:
    data = to_data(report)
    assert encode(report) == json.dumps(data, ensure_ascii=False)
    assert dumps(report) == readable(data)
    assert dumps(data) == readable(data)
    tree = module_records(report)  # --format json adds the module tree after the fields
    assert render(report, "json") == readable({**data, "modules": tree}) + "\n"
    assert render(report, "jsonl") == json.dumps(data, ensure_ascii=False) + "\n"


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    with contextlib.chdir(ROOT):
        return {path: analyze(path) for path in MODELS}


def test_every_sample_model_encodes_like_the_generic_walk(reports: dict[str, Report]) -> None:
    assert len(reports) >= 50
    for report in reports.values():
        check(report)


WEIGHT = WeightRef(
    tensor="w",
    role="weight",
    kind="trainable",
    shape=(4, 3),
    dtype="float",
    elements=12,
    nbytes=48,
    location="embedded",
)


def odd_report(text: str, number: float, macs: Poly) -> Report:
    """Every record type, None fields, symbolic counts and awkward strings and floats."""
    finding = Finding(
        code="ONX001",
        rule=text,
        node=text,
        op_type="MatMul",
        message=text + " \u00e9\u4e2d",
        confidence="high",
        params_saved=36,
        macs_delta=macs,
        detail=DenseOnSpatial(
            layout="NCHW",
            channels=3,
            spatial=(2, 2),
            in_features=12,
            units=4,
            dense_weights=48,
            dense_bias=4,
            kernel=1,
            conv_weights=12,
            conv_bias=4,
            ratio=number,
            dense_macs=48,
            conv_macs=12,
            replacement=text,
        ),
        pricing=Pricing(
            batch=1,
            dense_ms=number,
            conv_ms=-0.0,
            dense_ms_batch=1e300,
            conv_ms_batch=5e-324,
            machine=text,
            runtime="ort",
        ),
    )
    layer = LayerTally(
        name=text,
        op_type="MatMul",
        params=12,
        trainable=12,
        macs=macs,
        input_shapes=(("N", 3), None, ()),
        output_shapes=((text, 4),),
        weights=(WEIGHT, WEIGHT),
        notes=(text, ""),
    )
    return Report(
        path=text,
        model=ModelInfo(
            ir_version=8,
            producer=text,
            opsets=(("", 17),),
            graph_name=text,
            nodes=1,
            inputs=((text, ("N", 3)), ("b", None)),
        ),
        layers=(layer, LayerTally(name="empty", op_type="Relu")),
        findings=(finding,),
        totals=Totals(params=12, macs=macs),
        warnings=(text,),
        settings=((text, text),),
        violations=(Violation(policy="max-params", limit="1", measured="12", message=text),),
        verification=Verification(
            ok=False,
            error=text,
            runtime="ort",
            outputs=(
                OutputCheck(
                    name=text,
                    shape=(1,),
                    dtype="float",
                    expected=None,
                    matches=False,
                    nan=1,
                    inf=0,
                ),
            ),
        ),
    )


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(),
    number=st.floats(allow_nan=True, allow_infinity=True),
    macs=st.sampled_from([Poly(), Poly.of(7), Poly.product(["N", 3, "S"]), Poly.of(2**70)]),
)
def test_awkward_records_encode_like_the_generic_walk(text: str, number: float, macs: Poly) -> None:
    check(odd_report(text, number, macs))


def test_plain_data_keeps_its_layout() -> None:
    """dumps of plain data as before: a tuple value of a plain dict stays on one line."""
    data = {"a": ({"x": 1},), "b": [[1, "\n"]], "c": [], "d": [{"e": (1, 2)}], "\u00e9": 1.5}
    assert dumps(data) == readable(data)
    assert dumps([WEIGHT]) == json.dumps(to_data([WEIGHT]), ensure_ascii=False)


def test_unknown_objects_are_still_refused() -> None:
    for value in (object(), {1, 2}, LayerTally):
        with pytest.raises(TypeError, match="not JSON serializable"):
            encode({"x": value})
        with pytest.raises(TypeError, match="not JSON serializable"):
            json.dumps(to_data({"x": value}))


def test_layer_lines_leave_odd_field_types_to_the_encoder() -> None:
    """The hand-written layer line spells out exact ints, strs and tuples; a record built by
    hand with other types (a bool count, a list of shapes, a shared flag of 1) must still come
    out as the generic walk writes it."""
    odd_weight = WeightRef(
        tensor="w", role="weight", kind="trainable", shape=(4, 3), dtype="float",
        elements=12, nbytes=48, location="embedded", shared=1,  # type: ignore[arg-type]
    )  # fmt: skip
    layers = (
        LayerTally(name="a", op_type="Add", params=True),  # type: ignore[arg-type]
        LayerTally(name="b", op_type="Add", input_shapes=[(1, 2)]),  # type: ignore[arg-type]
        LayerTally(name="c", op_type="Add", weights=(odd_weight, WEIGHT)),
        LayerTally(name="d", op_type="Add", input_shapes=((1, "N"), (1, "N"))),
    )
    report = odd_report("x", 1.0, Poly())
    check(
        Report(
            **{
                **{f: getattr(report, f) for f in ("path", "model", "findings", "totals")},
                "layers": layers,
            }
        )
    )
