"""Invariants, checked with hypothesis: counts ignore names and node order; JSON round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer
from analyzer.report.reporters import render
from analyzer.report.serialize import report_from_data
from tests.conftest import SAMPLES

MODELS = sorted(p.name for p in SAMPLES.glob("*.onnx"))
SLOW_OK = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def save(model: onnx.ModelProto, folder: Path, name: str) -> Path:
    path = folder / name
    onnx.save_model(model, path)
    return path


@SLOW_OK
@given(name=st.sampled_from(MODELS), seed=st.randoms(use_true_random=False))
def test_counts_ignore_node_names_and_order(tmp_path_factory, name: str, seed) -> None:
    folder = tmp_path_factory.mktemp("perm")
    model = onnx.load(SAMPLES / name)
    nodes = list(model.graph.node)
    seed.shuffle(nodes)
    for index, node in enumerate(nodes):
        node.name = f"n{seed.randrange(10**9)}_{index}"
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    before = analyzer.analyze(SAMPLES / name, strict=True)
    after = analyzer.analyze(save(model, folder, name), strict=True)
    assert after.totals == before.totals
    assert sorted(layer.params for layer in after.layers) == sorted(
        layer.params for layer in before.layers
    )
    assert len(after.findings) == len(before.findings)
    assert [f.detail.dense_weights for f in after.findings] == [
        f.detail.dense_weights for f in before.findings
    ]


@settings(max_examples=len(MODELS), deadline=None, derandomize=True)
@given(name=st.sampled_from(MODELS))
def test_every_report_round_trips_through_json(name: str) -> None:
    report = analyzer.analyze(SAMPLES / name)
    assert report_from_data(json.loads(render(report, "json"))) == report


@settings(max_examples=15, deadline=None, derandomize=True)
@given(name=st.sampled_from(MODELS), tied=st.integers(min_value=2, max_value=4))
def test_a_weight_shared_by_more_users_still_counts_once(
    tmp_path_factory, name: str, tied: int
) -> None:
    """Feed one graph output through `tied` extra MatMuls that all reuse one new weight."""
    folder = tmp_path_factory.mktemp("tied")
    model = onnx.load(SAMPLES / name)
    width = 7
    weight = onnx.helper.make_tensor(
        "shared_w", onnx.TensorProto.FLOAT, [width, width], [0.5] * width * width
    )
    model.graph.initializer.append(weight)
    model.graph.input.append(
        onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1, width])
    )
    previous = "extra"
    for index in range(tied):
        out = f"extra_{index}"
        model.graph.node.append(
            onnx.helper.make_node("MatMul", [previous, "shared_w"], [out], name=f"tied{index}")
        )
        previous = out
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(previous, onnx.TensorProto.FLOAT, [1, width])
    )
    base = analyzer.analyze(SAMPLES / name, strict=True).totals
    grown = analyzer.analyze(save(model, folder, name), strict=True)
    assert grown.totals.params == base.params + width * width
    users = [layer for layer in grown.layers if layer.name.startswith("tied")]
    assert len(users) == tied and all(
        layer.shared and layer.params == width * width for layer in users
    )
