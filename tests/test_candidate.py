"""--emit-candidate: flagged dense layers replaced by Conv -> GlobalAveragePool -> Flatten."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort  # the test extra installs it: a missing runtime must fail, not skip
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.core.errors import UnsupportedError, UsageError
from analyzer.report.serialize import dumps, report_from_data
from analyzer.runtime.candidate import RETRAIN_NOTE, emit_candidate
from analyzer.runtime.surgery import PREFIX
from tests.conftest import analyze_only

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"

analyze = partial(analyze_only, "ONX101")  # these tests are about ONX101 alone


def _run(path: Path, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, tuple]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for value in session.get_inputs():
        dims = (shapes or {}).get(value.name) or tuple(
            d if isinstance(d, int) else 2 for d in value.shape
        )
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, (r.shape for r in session.run(names, feeds)), strict=True))


def _emit_and_check(source: Path, out: Path, expected_params: int, **options: object) -> None:
    report = analyze(source, **options)  # type: ignore[arg-type]
    assert report.findings, "fixture must be flagged"
    result = emit_candidate(source, report, out)
    assert result.path == str(out)
    assert result.predicted_params == expected_params
    assert result.actual_params == expected_params
    assert result.replaced == tuple(f.node for f in report.findings)
    assert RETRAIN_NOTE in result.notes
    assert "retrain" in result.summary()
    onnx.checker.check_model(str(out), full_check=True)
    after = analyze(out)
    assert after.totals.params == expected_params
    assert not after.findings, "the candidate must not be flagged again"
    assert _run(out) == _run(source)
    model = onnx.load(str(out))
    new = [t.name for t in model.graph.initializer if t.name.startswith(PREFIX)]
    assert any(name.endswith("conv.weight") for name in new)
    assert not list(out.parent.glob(".onnx-audit-candidate-*")), "temp folder left behind"


def test_seed_mlp(tmp_path: Path) -> None:
    # 3,232 = 100 x 32 + 32 dense; the block: 3 x 3 x 1 x 32 + 32 = 320
    _emit_and_check(SAMPLES / "seed_mlp.onnx", tmp_path / "cand.onnx", 320)
    model = onnx.load(str(tmp_path / "cand.onnx"))
    assert [n.op_type for n in model.graph.node] == ["Conv", "GlobalAveragePool", "Flatten"]
    assert {t.name for t in model.graph.initializer} == {
        f"{PREFIX}/dense/conv.weight",
        f"{PREFIX}/dense/conv.bias",
    }
    weight = numpy_helper.to_array(model.graph.initializer[0])
    assert 0.2 < float(weight.std()) < 0.8  # He-normal: sqrt(2 / 9) = 0.47


def test_seed_mlp_is_seeded_and_even_kernels_use_same_upper(tmp_path: Path) -> None:
    source = SAMPLES / "seed_mlp.onnx"
    report = analyze(source, kernel=2)
    first = emit_candidate(source, report, tmp_path / "a.onnx", seed=7)
    emit_candidate(source, report, tmp_path / "b.onnx", seed=7)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert first.actual_params == 2 * 2 * 32 + 32
    conv = onnx.load(str(tmp_path / "a.onnx")).graph.node[0]
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert attrs["auto_pad"] == b"SAME_UPPER"
    assert "pads" not in attrs


def test_lenet5(tmp_path: Path) -> None:
    # 61,706 - (16*5*5*120 + 120) + (3*3*16*120 + 120) = 61,706 - 48,120 + 17,400
    _emit_and_check(SAMPLES / "lenet5.onnx", tmp_path / "cand.onnx", 30_986)


def test_external_data_model_is_read_and_embedded(tmp_path: Path) -> None:
    result_path = tmp_path / "cand.onnx"
    _emit_and_check(SAMPLES / "external" / "lenet5_external.onnx", result_path, 30_986)
    model = onnx.load(str(result_path), load_external_data=False)
    assert all(t.data_location == TensorProto.DEFAULT for t in model.graph.initializer)


def test_qdq_weights_are_removed_with_their_dequantize(tmp_path: Path) -> None:
    # 5,210 - (8*8*8*10 + 10) + (3*3*8*10 + 10) = 810
    _emit_and_check(SAMPLES / "qdq_cnn.onnx", tmp_path / "cand.onnx", 810)
    names = {t.name for t in onnx.load(str(tmp_path / "cand.onnx")).graph.initializer}
    assert not names & {"f.wq", "f.ws", "f.wzp", "f.b"}
    assert {"c.wq", "c.b", "x.s"} <= names


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path))
    return path


def _init(name: str, *dims: int) -> onnx.TensorProto:
    rng = np.random.default_rng(len(name))
    return numpy_helper.from_array(rng.standard_normal(dims).astype(np.float32), name)


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_nhwc_matmul_with_bias_add(tmp_path: Path) -> None:
    """Conv -> Relu -> Transpose(NHWC) -> Flatten -> MatMul + Add, as tf2onnx writes it."""
    model = _model(
        [
            helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 3, 1]),
            helper.make_node("Flatten", ["t"], ["f"]),
            helper.make_node("MatMul", ["f", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        [_init("cw", 4, 3, 3, 3), _init("cb", 4), _init("w", 256, 10), _init("b", 10)],
    )
    source = _save(model, tmp_path / "nhwc.onnx")
    (finding,) = analyze(source).findings
    assert (finding.detail.layout, finding.op_type) == ("NHWC", "MatMul")
    # the walk the rule made, dense input first, and the Add holding the MatMul's bias
    assert (finding.detail.chain, finding.detail.bias_add_output) == (("f", "t"), "logits")
    # conv 108 + 4 kept; dense 2,560 + 10 out; block 3*3*4*10 + 10 = 370 in
    _emit_and_check(source, tmp_path / "cand.onnx", 112 + 370)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "cand.onnx")).graph.node]
    assert ops == ["Conv", "Relu", "Conv", "GlobalAveragePool", "Flatten", "Softmax"]


def test_nhwc_graph_input_gets_a_transpose(tmp_path: Path) -> None:
    model = _model(
        [
            helper.make_node("Flatten", ["x"], ["f"]),
            helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
        [_init("w", 16, 192), _init("b", 16)],
    )
    source = _save(model, tmp_path / "nhwc_input.onnx")
    assert analyze(source).findings[0].detail.layout == "NHWC"
    _emit_and_check(source, tmp_path / "cand.onnx", 3 * 3 * 3 * 16 + 16)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "cand.onnx")).graph.node]
    assert ops == ["Transpose", "Conv", "GlobalAveragePool", "Flatten"]


def test_conv1d_uses_a_1d_conv(tmp_path: Path) -> None:
    model = _model(
        [
            helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Flatten", ["r"], ["f"]),
            helper.make_node("Gemm", ["f", "w", "b"], ["h"], transB=1),
            helper.make_node("Relu", ["h"], ["y"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        [_init("cw", 6, 2, 3), _init("cb", 6), _init("w", 5, 192), _init("b", 5)],
    )
    source = _save(model, tmp_path / "conv1d.onnx")
    assert analyze(source).findings[0].detail.layout == "NCL"
    # conv 36 + 6 kept; block 3*6*5 + 5 = 95
    _emit_and_check(source, tmp_path / "cand.onnx", 42 + 95)
    new_conv = next(
        n for n in onnx.load(str(tmp_path / "cand.onnx")).graph.node if n.name.startswith(PREFIX)
    )
    kernel = next(a for a in new_conv.attribute if a.name == "kernel_shape")
    assert list(kernel.ints) == [3]


def test_image_input_gets_a_channel_axis(tmp_path: Path) -> None:
    model = _model(
        [
            helper.make_node("Flatten", ["x"], ["f"]),
            helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [_init("w", 8, 144), _init("b", 8)],
    )
    source = _save(model, tmp_path / "image.onnx")
    assert analyze(source).findings[0].detail.layout == "image"
    _emit_and_check(source, tmp_path / "cand.onnx", 9 * 8 + 8)


def test_ops_after_the_flatten_are_kept_by_reshaping_back(tmp_path: Path) -> None:
    """Flatten -> BatchNorm1d -> Relu -> Gemm: the BN stays, its params stay counted."""
    bn = [_init("s", 200), _init("o", 200), _init("mean", 200)]
    var = numpy_helper.from_array(np.ones(200, np.float32), "var")
    model = _model(
        [
            helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Flatten", ["c"], ["f"]),
            helper.make_node("BatchNormalization", ["f", "s", "o", "mean", "var"], ["n"]),
            helper.make_node("Relu", ["n"], ["r"]),
            helper.make_node("Gemm", ["r", "w", "b"], ["y"], transB=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])],
        [_init("cw", 2, 1, 3, 3), _init("cb", 2), *bn, var, _init("w", 16, 200), _init("b", 16)],
    )
    source = _save(model, tmp_path / "bn1d.onnx")
    # conv 20 + BN 800 kept; dense 3,200 + 16 out; block 3*3*2*16 + 16 = 304 in
    _emit_and_check(source, tmp_path / "cand.onnx", 20 + 800 + 304)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "cand.onnx")).graph.node]
    assert ops[:4] == ["Conv", "Flatten", "BatchNormalization", "Relu"]
    assert ops[4:] == ["Reshape", "Conv", "GlobalAveragePool", "Flatten"]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    source = SAMPLES / "seed_mlp.onnx"
    report = analyze(source)
    out = tmp_path / "cand.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(UsageError, match="already exists"):
        emit_candidate(source, report, out)
    assert out.read_bytes() == b"keep me"
    result = emit_candidate(source, report, out, force=True)
    assert result.actual_params == 320
    onnx.checker.check_model(str(out), full_check=True)


def test_refuses_the_input_itself_and_models_without_findings(tmp_path: Path) -> None:
    copy = tmp_path / "seed_mlp.onnx"
    copy.write_bytes((SAMPLES / "seed_mlp.onnx").read_bytes())
    with pytest.raises(UsageError, match="input model"):
        emit_candidate(copy, analyze(copy), copy, force=True)
    gap = SAMPLES / "gap_cnn.onnx"
    with pytest.raises(UsageError, match="no ONX101"):
        emit_candidate(gap, analyze(gap), tmp_path / "gap.onnx")
    assert not (tmp_path / "gap.onnx").exists()


def test_the_candidate_replaces_the_chain_the_finding_carries(tmp_path: Path) -> None:
    """The writer reads the rule's chain from the finding (through JSON too), never walks the
    graph again: a finding whose chain is lost or no longer in the model is refused."""
    source = SAMPLES / "seed_mlp.onnx"
    report = analyze(source)
    (finding,) = report.findings
    assert (finding.detail.chain, finding.detail.bias_add_output) == (("flat", "image"), "")
    read_back = report_from_data(json.loads(dumps(report)))
    assert read_back == report
    emit_candidate(source, read_back, tmp_path / "cand.onnx")
    assert [n.op_type for n in onnx.load(str(tmp_path / "cand.onnx")).graph.node] == [
        "Conv", "GlobalAveragePool", "Flatten",
    ]  # fmt: skip
    for chain, why in (((), "carries no chain"), (("flat", "elsewhere"), "no longer matches")):
        lost = replace(finding, detail=replace(finding.detail, chain=chain))
        with pytest.raises(UnsupportedError, match=why):
            emit_candidate(source, replace(report, findings=(lost,)), tmp_path / "no.onnx")
