"""The markdown, csv, sarif, github and netron reporters, on sample models and generated reports."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from analyzer.core.results import (
    Finding,
    LayerTally,
    ModelInfo,
    Pricing,
    Report,
    Totals,
    Violation,
    WeightRef,
)
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import render, reporters
from analyzer.report.reporters.csv_reporter import COLUMNS, FORMULA_STARTS
from analyzer.report.reporters.github import escape_data, escape_property
from analyzer.report.reporters.markdown import escape
from analyzer.report.reporters.netron import SIGNATURE
from analyzer.report.reporters.sarif import artifact_uri
from analyzer.report.reporters.table import simple_table
from analyzer.rules.dense_on_spatial import DenseOnSpatial
from analyzer.rules.dominant_dense import DominantDense
from analyzer.rules.separable_conv import SeparableConv
from analyzer.rules.untied_head import UntiedHead
from tests.conftest import ROOT, SAMPLES, analyze_only

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
VALIDATOR_CLASS = jsonschema.validators.validator_for(SCHEMA)
VALIDATOR = VALIDATOR_CLASS(SCHEMA, format_checker=VALIDATOR_CLASS.FORMAT_CHECKER)
NEW_FORMATS = ("markdown", "csv", "sarif", "github", "netron")
PRICING = Pricing(
    batch=32,
    dense_ms=0.125,
    conv_ms=0.5,
    dense_ms_batch=2.25,
    conv_ms_batch=6.75,
    machine="ci-runner x86_64",
    runtime="onnxruntime 1.20 CPUExecutionProvider",
)


@pytest.fixture(scope="module")
def samples() -> dict[str, Report]:
    """Analysed from the repo root, so paths are relative as in CI: `sample_models/x.onnx`."""
    with contextlib.chdir(ROOT):
        return {
            # ONX101 alone: these reporter tests predate the other rules (test_rules.py
            # renders them); ONX104 would also flag seed_mlp's and lenet5's dense layers
            name: analyze_only("ONX101", f"sample_models/{name}.onnx")
            for name in ("seed_mlp", "lenet5", "tied_lm")
        }


@pytest.fixture(scope="module")
def policed(samples: dict[str, Report]) -> Report:
    """lenet5 with a priced finding, a budget violation and a fail-on violation."""
    report = samples["lenet5"]
    finding = dataclasses.replace(report.findings[0], pricing=PRICING)
    violations = (
        Violation(
            policy="max-params",
            limit="10,000",
            measured="61,706",
            message="61,706 parameters exceed max-params 10,000",
        ),
        Violation(
            policy="fail-on",
            limit="ONX101",
            measured="ONX101",
            node=finding.node,
            code="ONX101",
            message=f"ONX101 dense-on-spatial-input on {finding.node!r} (fail-on)",
        ),
    )
    return dataclasses.replace(report, findings=(finding,), violations=violations)


def all_reports(samples: dict[str, Report], policed: Report) -> list[Report]:
    return [*samples.values(), policed]


def test_new_formats_are_registered() -> None:
    assert set(NEW_FORMATS) <= set(reporters())


def test_samples_load_from_the_repo_root(samples: dict[str, Report]) -> None:
    assert (SAMPLES / "seed_mlp.onnx").is_file()
    assert samples["seed_mlp"].path == "sample_models/seed_mlp.onnx"
    assert len(samples["seed_mlp"].findings) == 1
    assert any(layer.shared for layer in samples["tied_lm"].layers)


# --- sarif -------------------------------------------------------------------------------------


def test_sarif_validates_with_one_result_per_finding_and_violation(
    samples: dict[str, Report], policed: Report
) -> None:
    for report in all_reports(samples, policed):
        log = json.loads(render(report, "sarif"))
        VALIDATOR.validate(log)
        (run,) = log["runs"]
        expected = [f.code for f in report.findings]
        expected += [
            v.code if v.policy == "fail-on" else f"budget/{v.policy}" for v in report.violations
        ]
        assert [r["ruleId"] for r in run["results"]] == expected
        rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
        assert len(rule_ids) == len(set(rule_ids))
        assert "ONX101" in rule_ids
        for result in run["results"]:
            assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert run["artifacts"][0]["location"]["uri"] == report.path
        assert run["tool"]["driver"]["name"] == "onnx-audit"


def test_sarif_levels_and_locations(policed: Report) -> None:
    (run,) = json.loads(render(policed, "sarif"))["runs"]
    finding, budget, fail_on = run["results"]
    assert finding["level"] == "error"  # its code is named by a fail-on violation
    assert budget["level"] == fail_on["level"] == "error"
    assert budget["ruleId"] == "budget/max-params"
    assert finding["message"]["text"] == policed.findings[0].message
    (logical,) = finding["locations"][0]["logicalLocations"]
    assert logical == {"name": "fc1", "kind": "member", "fullyQualifiedName": "fc1"}
    assert "logicalLocations" not in budget["locations"][0]
    props = finding["properties"]
    assert (props["denseWeights"], props["convWeights"]) == (48_000, 17_280)
    assert props["pricing"]["machine"] == PRICING.machine
    unpoliced = dataclasses.replace(policed, violations=())
    (run,) = json.loads(render(unpoliced, "sarif"))["runs"]
    assert [r["level"] for r in run["results"]] == ["warning"]


def test_sarif_artifact_uris() -> None:
    assert artifact_uri("sample_models/seed_mlp.onnx") == "sample_models/seed_mlp.onnx"
    assert artifact_uri("./models\\my model#1.onnx") == "models/my%20model%231.onnx"
    assert artifact_uri("/tmp/a b.onnx") == "file:///tmp/a%20b.onnx"
    assert artifact_uri("C:\\models\\m.onnx") == "file:///C:/models/m.onnx"


# --- csv ---------------------------------------------------------------------------------------


def test_csv_one_row_per_layer_with_the_documented_columns(
    samples: dict[str, Report], policed: Report
) -> None:
    documented = (ROOT / "docs" / "csv-columns.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"| `{column}` |" in documented
    for report in all_reports(samples, policed):
        text = render(report, "csv")
        assert "\r" not in text and text.endswith("\n")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert tuple(rows[0].keys()) == COLUMNS
        assert [row["layer"] for row in rows] == [layer.name for layer in report.layers]
        assert sum(int(row["params"]) for row in rows) == sum(la.params for la in report.layers)
        for row, layer in zip(rows, report.layers, strict=True):
            assert row["path"] == report.path
            assert int(row["params"]) == int(row["trainable"]) + int(row["non_trainable"])
            assert row["macs"] == str(layer.macs.to_json())
            assert row["shared"] == ("true" if layer.shared else "false")


def test_csv_shared_and_flagged(samples: dict[str, Report]) -> None:
    tied = list(csv.DictReader(io.StringIO(render(samples["tied_lm"], "csv"))))
    assert {row["layer"]: row["shared"] for row in tied}["lm_head"] == "true"
    # the tied embedding is on both rows: rows sum past the totals, which count it once
    assert sum(int(row["params"]) for row in tied) == 3_232 > samples["tied_lm"].totals.params
    mlp = list(csv.DictReader(io.StringIO(render(samples["seed_mlp"], "csv"))))
    assert [(row["layer"], row["flagged"], row["macs"]) for row in mlp] == [
        ("dense", "ONX101", "3,200·N")
    ]


def test_csv_header_without_layers(samples: dict[str, Report]) -> None:
    empty = dataclasses.replace(samples["seed_mlp"], layers=(), findings=())
    assert render(empty, "csv") == ",".join(COLUMNS) + "\n"


def test_csv_quotes_awkward_names(samples: dict[str, Report]) -> None:
    layer = dataclasses.replace(samples["seed_mlp"].layers[0], name='a,"b"\r\nc')
    report = dataclasses.replace(samples["seed_mlp"], layers=(layer,))
    (row,) = csv.DictReader(io.StringIO(render(report, "csv"), newline=""))
    assert row["layer"] == 'a,"b"\r\nc'


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")', "+cmd", "-2+3", "@SUM(A1)"])
def test_csv_cells_never_start_a_formula(samples: dict[str, Report], name: str) -> None:
    """Found by a red-team sweep: a layer name from the file reached a spreadsheet as a formula."""
    layer = dataclasses.replace(samples["seed_mlp"].layers[0], name=name)
    report = dataclasses.replace(samples["seed_mlp"], layers=(layer,))
    (row,) = csv.DictReader(io.StringIO(render(report, "csv"), newline=""))
    assert row["layer"] == "'" + name
    assert row["params"] == str(layer.params)


def test_table_shows_control_characters_escaped(samples: dict[str, Report]) -> None:
    """Names, producer and path from a hostile file must not drive the terminal."""
    layer = dataclasses.replace(samples["seed_mlp"].layers[0], name="\x1b[2J\x1b]0;t\x07x\ny")
    info = dataclasses.replace(samples["seed_mlp"].model, producer="evil\r\x1b[31m")
    report = dataclasses.replace(
        samples["seed_mlp"], layers=(layer,), model=info, notes=("a\x1b[5mb",), path="p\nq"
    )
    text = render(report, "table")
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\\x1b[2J\\x1b]0;t\\x07x\\x0ay (Gemm)" in text
    assert "Model: p\\x0aq\n" in text and "producer: evil\\x0d\\x1b[31m" in text


# --- markdown ----------------------------------------------------------------------------------


def test_markdown_seed_mlp_both_sides(samples: dict[str, Report]) -> None:
    text = render(samples["seed_mlp"], "markdown")
    assert text.startswith("## onnx-audit: sample\\_models/seed\\_mlp.onnx\n")
    assert "| Total params | 3,232 |" in text
    assert "| dense (as is) | 3,200 | 32 | 3,200 |" in text
    assert "| conv 3x3, 32 filters | 288 | 32 | 28,800 |" in text
    assert "11.1x fewer weights" in text and "9.0x the MACs" in text
    assert "GlobalAveragePool" in text and "retrained" in text
    assert "| dense | Gemm | (N, 32) | 3,232 | 3,200·N |  |" in text
    assert "violations" not in text.lower()


def test_markdown_violations_first_and_pricing(policed: Report) -> None:
    text = render(policed, "markdown")
    assert text.index("### Policy violations (2)") < text.index("### Totals")
    assert "**max-params**: measured 61,706, limit 10,000." in text
    assert "**fail-on** on fc1: measured ONX101, limit ONX101." in text
    assert (
        "Measured latency on ci-runner x86\\_64 with onnxruntime 1.20 CPUExecutionProvider" in text
    )
    assert "| dense (as is) | 0.125 ms | 2.250 ms |" in text
    assert "| conv replacement | 0.500 ms | 6.750 ms |" in text
    assert "| batch 1 | batch 32 |" in text


def test_markdown_escapes_names(samples: dict[str, Report]) -> None:
    assert escape("a|b") == "a\\|b"
    assert escape("<img>&") == "&lt;img&gt;&amp;"
    assert escape("two\nlines") == "two lines"
    assert escape("- item") == "\\- item"
    layer = dataclasses.replace(samples["tied_lm"].layers[0], name="x|y\n*z*")
    report = dataclasses.replace(samples["tied_lm"], layers=(layer,))
    row = next(line for line in render(report, "markdown").splitlines() if "Gather" in line)
    assert row.startswith("| x\\|y \\*z\\* | Gather |")
    assert row.count("|") - row.count("\\|") == 7  # six cells: the name did not add one


# --- github ------------------------------------------------------------------------------------


def test_github_one_line_per_finding_and_violation(
    samples: dict[str, Report], policed: Report
) -> None:
    for report in all_reports(samples, policed):
        lines = render(report, "github").splitlines()
        assert len(lines) == len(report.findings) + len(report.violations)
        kinds = [line.split(" ", 1)[0] for line in lines]
        assert kinds == ["::warning"] * len(report.findings) + ["::error"] * len(report.violations)
    lines = render(policed, "github").splitlines()
    assert lines[0].startswith(
        "::warning file=sample_models/lenet5.onnx,title=ONX101 dense-on-spatial-input::dense layer"
    )
    assert lines[1] == (
        "::error file=sample_models/lenet5.onnx,title=max-params::"
        "61,706 parameters exceed max-params 10,000"
    )
    assert lines[2].startswith(
        "::error file=sample_models/lenet5.onnx,title=fail-on ONX101 (fc1)::"
    )


def test_github_escaping(samples: dict[str, Report]) -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    report = samples["seed_mlp"]
    finding = dataclasses.replace(report.findings[0], message="100% dense\nsee: a, b")
    odd = dataclasses.replace(report, path="dir,x/m:1.onnx", findings=(finding,))
    assert render(odd, "github") == (
        "::warning file=dir%2Cx/m%3A1.onnx,title=ONX101 dense-on-spatial-input::"
        "100%25 dense%0Asee: a, b\n"
    )


# --- netron ------------------------------------------------------------------------------------


def test_netron_attachment(samples: dict[str, Report], policed: Report) -> None:
    for report in all_reports(samples, policed):
        data = json.loads(render(report, "netron"))
        assert data["signature"] == SIGNATURE == "netron:attachment"
        for item in data["metrics"] + data["metadata"]:
            assert set(item) == {"kind", "target", "name", "value"}
            assert item["kind"] in ("model", "node")
        nodes = [i for i in data["metrics"] if i["kind"] == "node"]
        per_layer = [i["target"] for i in nodes if i["name"] == "parameters"]
        assert per_layer == [layer.name for layer in report.layers]
        macs = {i["target"]: i["value"] for i in nodes if i["name"] == "MACs"}
        assert macs == {layer.name: layer.macs.to_json() for layer in report.layers}
        model = {i["name"]: i["value"] for i in data["metrics"] if i["kind"] == "model"}
        assert model["parameters"] == report.totals.params
        findings = [i for i in data["metadata"] if i["kind"] == "node"]
        assert [(i["target"], i["name"].split()[0], i["value"]) for i in findings] == [
            (f.node, f.code, f.message) for f in report.findings
        ]


def test_netron_targets_stop_at_a_newline(samples: dict[str, Report]) -> None:
    layer = dataclasses.replace(samples["tied_lm"].layers[1], name="ln\nsecond line")
    report = dataclasses.replace(samples["tied_lm"], layers=(layer,))
    data = json.loads(render(report, "netron"))
    assert {i["target"] for i in data["metrics"] if i["kind"] == "node"} == {"ln"}


# --- no reporter crashes on any report ---------------------------------------------------------

_small = st.integers(min_value=0, max_value=10**7)
_dim = st.one_of(_small, st.text(max_size=4))
_shape = st.one_of(st.none(), st.lists(_dim, max_size=4).map(tuple))
_poly = st.lists(_dim, max_size=3).map(Poly.product)
_float = st.floats(allow_nan=True, allow_infinity=True)
_weight = st.builds(
    WeightRef,
    tensor=st.text(max_size=6),
    role=st.sampled_from(["weight", "bias", "scale"]),
    kind=st.sampled_from(["trainable", "non_trainable", "quantization", "other"]),
    shape=st.lists(_small, max_size=3).map(tuple),
    dtype=st.just("float32"),
    elements=_small,
    nbytes=_small,
    location=st.just("embedded"),
    shared=st.booleans(),
)
_layer = st.builds(
    LayerTally,
    name=st.text(max_size=8),
    op_type=st.text(max_size=8),
    domain=st.text(max_size=4),
    params=_small,
    trainable=_small,
    non_trainable=_small,
    nbytes=_small,
    macs=_poly,
    output_shapes=st.lists(_shape, max_size=2).map(tuple),
    weights=st.lists(_weight, max_size=2).map(tuple),
)
_pricing = st.builds(
    Pricing,
    batch=_small,
    dense_ms=_float,
    conv_ms=_float,
    dense_ms_batch=_float,
    conv_ms_batch=_float,
    machine=st.text(max_size=8),
    runtime=st.text(max_size=8),
)
_payload = st.one_of(
    st.none(),
    st.builds(DenseOnSpatial, ratio=_float, spatial=st.lists(_small, max_size=3).map(tuple)),
    st.builds(SeparableConv, ratio=_float, positions=_poly, conv_macs=_poly, separable_macs=_poly),
    st.builds(UntiedHead, head_shape=st.lists(_small, max_size=3).map(tuple)),
    st.builds(DominantDense, share=_float, rows=_poly, dense_macs=_poly, low_rank_macs=_poly),
)
_finding = st.builds(
    Finding,
    code=st.sampled_from(["ONX101", "ONX102", "ONX103", "ONX104", "ONX999"]),
    rule=st.text(max_size=8),
    node=st.text(max_size=8),
    op_type=st.text(max_size=6),
    message=st.text(max_size=20),
    confidence=st.sampled_from(["high", "medium"]),
    severity=st.sampled_from(["warning", "note", "odd"]),
    params_saved=_small,
    macs_delta=_poly,
    detail=_payload,
    pricing=st.one_of(st.none(), _pricing),
)
_violation = st.builds(
    Violation,
    policy=st.sampled_from(["max-params", "max-layer-params", "fail-on", "max-growth", ""]),
    limit=st.text(max_size=6),
    measured=st.text(max_size=6),
    message=st.text(max_size=20),
    node=st.text(max_size=6),
    code=st.sampled_from(["", "ONX101", "ONX999"]),
)
_totals = st.builds(
    Totals,
    params=_small,
    trainable=_small,
    param_bytes=_small,
    quantization_constants=_small,
    other_constants=_small,
    unknown_weights=_small,
    macs=_poly,
)
_model = st.builds(
    ModelInfo,
    ir_version=_small,
    producer=st.text(max_size=6),
    opsets=st.lists(st.tuples(st.text(max_size=4), _small), max_size=2).map(tuple),
    graph_name=st.text(max_size=6),
    nodes=_small,
)
_report = st.builds(
    Report,
    path=st.text(max_size=12),
    model=_model,
    layers=st.lists(_layer, max_size=3).map(tuple),
    findings=st.lists(_finding, max_size=4).map(tuple),
    totals=_totals,
    warnings=st.lists(st.text(max_size=10), max_size=2).map(tuple),
    violations=st.lists(_violation, max_size=2).map(tuple),
)


@settings(max_examples=50, deadline=None)
@given(report=_report)
def test_no_reporter_crashes(report: Report) -> None:
    outputs: dict[str, Any] = {fmt: render(report, fmt) for fmt in NEW_FORMATS}
    assert all(isinstance(text, str) for text in outputs.values())
    VALIDATOR.validate(json.loads(outputs["sarif"]))
    assert json.loads(outputs["netron"])["signature"] == SIGNATURE
    rows = list(csv.DictReader(io.StringIO(outputs["csv"], newline="")))
    inert = [
        "'" + n if n.startswith(FORMULA_STARTS) else n for n in (x.name for x in report.layers)
    ]
    assert [row["layer"] for row in rows] == inert
    lines = outputs["github"].split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(report.findings) + len(report.violations)


_cell = st.one_of(
    st.text(alphabet=" abc(),·-#0123456789", max_size=12),  # the fast path
    st.text(max_size=8),  # anything: line breaks, escape codes, wide characters
)


@given(st.lists(st.lists(_cell, min_size=5, max_size=5), max_size=6))
def test_simple_table_is_tabulates_simple_format(rows: list[list[str]]) -> None:
    """The layer table's own writer gives tabulate's text, byte for byte, for any cells."""
    headers = ["Layer (op)", "Output shape", "Param #", "MACs", "Shared"]
    align = ("left", "left", "right", "right", "left")
    expected = tabulate(
        rows, headers=headers, tablefmt="simple", disable_numparse=True, colalign=align
    )
    assert simple_table(rows, headers, align) == expected


def test_reporters_declare_what_the_cli_needs() -> None:
    """The CLI asks these, never a format's name: a new format declares them in add_reporter."""
    from analyzer.report.reporters import reporter

    assert {n for n in reporters() if reporter(n).merge} == {"csv", "json", "sarif"}
    assert {n for n in reporters() if reporter(n).streams} == {"jsonl"}
    assert {n for n in reporters() if reporter(n).one_model} == {"netron"}
    assert {n for n in reporters() if reporter(n).shows_violations} == {"table"}
    assert reporter("jsonl").failure is not None
