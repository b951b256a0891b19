"""ONX101 dense-on-spatial-input: the seed numbers, layouts, and what is never flagged."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer import Report
from analyzer.api import analyze_with_debug
from tests.conftest import SAMPLES, analyze_only

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'

analyze = partial(analyze_only, "ONX101")  # these tests are about ONX101 alone


@pytest.fixture
def audit(audit: Callable[..., Report]) -> Callable[..., Report]:
    """The shared fixture with ONX101 alone enabled."""
    return partial(audit, rule_filter=lambda rule: rule.code == "ONX101")


def weights(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def ints(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def graph_model(nodes, inputs, inits, outputs=("y",)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def vi(name: str, *shape: int | str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def test_seed_numbers_exactly() -> None:
    (finding,) = analyze(SAMPLES / "seed_mlp.onnx", strict=True).findings
    assert finding.code == "ONX101"
    assert finding.detail.dense_weights == 100 * 32 == 3200
    assert finding.detail.conv_weights == 9 * 32 == 288
    assert round(finding.detail.ratio, 1) == 11.1
    assert finding.detail.dense_macs == 3200
    assert finding.detail.conv_macs == 9 * 32 * 100 == 28800
    assert (finding.detail.channels, finding.detail.spatial) == (1, (10, 10))
    assert finding.detail.dense_bias == 32 and finding.detail.conv_bias == 32
    assert (
        "Conv(3x3, 32 filters" in finding.detail.replacement
        and "GlobalAveragePool" in finding.detail.replacement
    )
    assert "retrain" in finding.message


def test_kernel_option_changes_the_alternative() -> None:
    (finding,) = analyze(SAMPLES / "seed_mlp.onnx", kernel=5).findings
    assert finding.detail.conv_weights == 25 * 32
    assert finding.detail.conv_macs == 25 * 32 * 100


def test_min_ratio_suppresses_weak_cases() -> None:
    assert analyze(SAMPLES / "seed_mlp.onnx", min_ratio=12).findings == ()
    assert len(analyze(SAMPLES / "seed_mlp.onnx", min_ratio=11).findings) == 1


def test_conv_feature_map_through_relu_and_reshape(audit) -> None:
    """Conv -> Relu -> Reshape[N,-1] -> MatMul + Add: C=4, 6x6 positions, 144 -> 10."""
    model = graph_model(
        [
            helper.make_node("Conv", ["x", "cw"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Reshape", ["r", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["m"], name="head"),
            helper.make_node("Add", ["m", "b"], ["y"]),
        ],
        [vi("x", 1, 3, 6, 6)],
        [
            weights("cw", 4, 3, 3, 3),
            ints("shape", [1, -1]),
            weights("w", 144, 10),
            weights("b", 10),
        ],
    )
    (finding,) = audit(model).findings
    assert (
        finding.node,
        finding.detail.layout,
        finding.detail.channels,
        finding.detail.spatial,
    ) == (
        "head",
        "NCHW",
        4,
        (6, 6),
    )
    assert finding.detail.dense_weights == 1440 and finding.detail.dense_bias == 10
    assert finding.detail.conv_weights == 9 * 4 * 10
    assert finding.confidence == "high"


def test_nhwc_transpose_before_flatten_keras_style(audit) -> None:
    """tf2onnx writes Conv (NCHW) -> Transpose(0,2,3,1) -> Reshape -> MatMul: C is last."""
    model = graph_model(
        [
            helper.make_node("Conv", ["x", "cw"], ["c"]),
            helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
            helper.make_node("Reshape", ["t", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["y"], name="dense"),
        ],
        [vi("x", 1, 2, 12, 10)],
        [weights("cw", 8, 2, 3, 3), ints("shape", [-1, 10 * 8 * 8]), weights("w", 640, 16)],
    )
    (finding,) = audit(model).findings
    d = finding.detail
    assert (d.layout, d.channels, d.spatial) == (
        "NHWC",
        8,
        (10, 8),
    )


def test_conv1d_gives_a_one_dimensional_alternative(audit) -> None:
    model = graph_model(
        [
            helper.make_node("Conv", ["x", "cw"], ["c"]),
            helper.make_node("Flatten", ["c"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w"], ["y"], transB=1, name="fc"),
        ],
        [vi("x", 1, 1, 100)],
        [weights("cw", 8, 1, 5), weights("w", 12, 8 * 96)],
    )
    (finding,) = audit(model).findings
    d = finding.detail
    assert (d.layout, d.channels, d.spatial) == (
        "NCL",
        8,
        (96,),
    )
    assert finding.detail.conv_weights == 3 * 8 * 12  # k taps, not k x k
    assert finding.detail.conv_macs == 3 * 8 * 12 * 96


@pytest.mark.parametrize("axes", ["input", "attribute", "none"])
def test_keras_conv1d_squeezed_then_channels_last(audit, axes) -> None:
    """tf2onnx's Keras Conv1D: Unsqueeze -> Conv [N, C=10, 1, L=18] -> Squeeze -> Transpose to
    [N, L, C] -> Flatten -> MatMul. The flatten reads 18 positions of 10 channels."""
    squeeze = {
        "input": helper.make_node("Squeeze", ["c", "axes"], ["s"]),
        "attribute": helper.make_node("Squeeze", ["c"], ["s"], axes=[2]),
        "none": helper.make_node("Squeeze", ["c"], ["s"]),
    }[axes]
    opset = 11 if axes == "attribute" else 17
    model = graph_model(
        [
            helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
            helper.make_node("Conv", ["u", "cw"], ["c"]),
            squeeze,
            helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Flatten", ["t"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["y"], name="dense"),
        ],
        [vi("x", 2 if axes == "none" else "N", 4, 20)],  # squeeze-all needs a known batch
        [weights("cw", 10, 4, 1, 3), ints("axes", [2]), weights("w", 18 * 10, 7)],
    )
    if opset == 11:
        model.opset_import[0].version = 11
        model.graph.node[0].CopyFrom(helper.make_node("Unsqueeze", ["x"], ["u"], axes=[2]))
    (finding,) = audit(model).findings
    d = finding.detail
    assert (d.layout, d.channels, d.spatial) == (
        "NLC",
        10,
        (18,),
    )
    assert finding.detail.conv_weights == 3 * 10 * 7
    assert finding.detail.conv_macs == 3 * 10 * 7 * 18


def test_raw_image_inputs_count_as_spatial(audit) -> None:
    """MNIST-style [N, 28, 28] and [N, 1, 28, 28] inputs flattened into a dense layer."""
    for shape in ((1, 28, 28), (1, 1, 28, 28)):
        model = graph_model(
            [
                helper.make_node("Flatten", ["x"], ["flat"]),
                helper.make_node("Gemm", ["flat", "w"], ["y"], transB=1),
            ],
            [vi("x", *shape)],
            [weights("w", 64, 784)],
        )
        (finding,) = audit(model).findings
        assert (finding.detail.channels, finding.detail.spatial) == (1, (28, 28))


def test_text_recognizer_matmul_over_channels_is_not_flagged(audit) -> None:
    """Conv -> Reshape [N, C, H*W] -> Transpose -> MatMul over C is a 1x1 conv in disguise."""
    model = graph_model(
        [
            helper.make_node("Conv", ["x", "cw"], ["c"]),
            helper.make_node("Reshape", ["c", "shape"], ["seq"]),
            helper.make_node("Transpose", ["seq"], ["t"], perm=[0, 2, 1]),
            helper.make_node("MatMul", ["t", "w"], ["y"]),
        ],
        [vi("x", 1, 1, 8, 32)],
        [weights("cw", 16, 1, 1, 1), ints("shape", [1, 16, 256]), weights("w", 16, 40)],
    )
    assert audit(model).findings == ()


def test_transformer_and_global_pooling_are_never_flagged() -> None:
    assert analyze(SAMPLES / "tiny_transformer.onnx", strict=True).findings == ()
    assert analyze(SAMPLES / "gap_cnn.onnx", strict=True).findings == ()


def test_dense_after_dense_is_not_flagged(audit) -> None:
    model = graph_model(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w1"], ["h"], transB=1, name="fc1"),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("Gemm", ["a", "w2"], ["y"], transB=1, name="fc2"),
        ],
        [vi("x", 1, 1, 10, 10)],
        [weights("w1", 32, 100), weights("w2", 10, 32)],
    )
    assert [f.node for f in audit(model).findings] == ["fc1"]


def test_dynamic_spatial_dims_are_not_guessed(audit) -> None:
    model = graph_model(
        [
            helper.make_node("Conv", ["x", "cw"], ["c"]),
            helper.make_node("Flatten", ["c"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["y"]),
        ],
        [vi("x", 1, 3, "H", "W")],
        [weights("cw", 4, 3, 3, 3), weights("w", 144, 10)],
    )
    assert audit(model).findings == ()
    fixed = audit(model, input_shapes={"x": (1, 3, 8, 8)})
    assert [(f.detail.channels, f.detail.spatial) for f in fixed.findings] == [(4, (6, 6))]


def test_decomposed_pooling_still_reads_as_a_feature_map(audit) -> None:
    """dynamo writes AdaptiveAvgPool as Gather/Add/Div chains; the conv behind them counts."""
    model = graph_model(
        [
            helper.make_node("Conv", ["x", "cw"], ["c"]),
            helper.make_node("Gather", ["c", "rows_a"], ["a"], axis=2),
            helper.make_node("Gather", ["c", "rows_b"], ["b"], axis=2),
            helper.make_node("Add", ["a", "b"], ["s"]),
            helper.make_node("Div", ["s", "area"], ["avg"]),
            helper.make_node("Flatten", ["avg"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w", "bias"], ["y"], transB=1, name="fc"),
        ],
        [vi("x", 1, 3, 14, 14)],
        [
            weights("cw", 8, 3, 3, 3), ints("rows_a", [0, 2, 4, 6, 8, 10]),
            ints("rows_b", [1, 3, 5, 7, 9, 11]), weights("area", 6, 12),
            weights("w", 10, 8 * 6 * 12), weights("bias", 10),
        ],
    )  # fmt: skip
    report = audit(model)
    (finding,) = report.findings
    d = finding.detail
    assert (d.channels, d.spatial, finding.confidence) == (
        8,
        (6, 12),
        "medium",
    )
    # the 6x12 divisor table is a pooling constant, not a parameter
    assert report.totals.params == 8 * 27 + 10 * 8 * 72 + 10
    assert report.totals.other_constants == 6 + 6 + 72


def test_flattened_token_embeddings_are_not_flagged(audit) -> None:
    model = graph_model(
        [
            helper.make_node("Gather", ["table", "ids"], ["e"]),
            helper.make_node("Flatten", ["e"], ["flat"]),
            helper.make_node("Gemm", ["flat", "w"], ["y"], transB=1),
        ],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 32])],
        [weights("table", 50, 16), weights("w", 4, 32 * 16)],
    )
    assert audit(model).findings == ()


def _crnn_head(recurrent: onnx.NodeProto, extra_inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    """Conv features read as a sequence, a bidirectional recurrent layer, then a per-time-step
    classifier: Conv [1,16,32,64] -> [64, 1, 512] (T, N, C) -> RNN -> Y [64, 2, 1, 8]
    -> Transpose [64, 1, 2, 8] -> Reshape [64, 16] -> DynamicQuantizeLinear -> MatMulInteger."""
    u8 = numpy_helper.from_array(np.zeros((16, 10), np.uint8), "head_w")
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["c", "s1"], ["r"], name="to_seq"),
        helper.make_node("Transpose", ["r"], ["seq"], name="tnc", perm=[2, 0, 1]),
        recurrent,
        helper.make_node("Transpose", ["Y"], ["yt"], name="swap", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["yt", "s2"], ["feat"], name="flat"),
        helper.make_node("DynamicQuantizeLinear", ["feat"], ["q", "qs", "qz"], name="dq"),
        helper.make_node("MatMulInteger", ["q", "head_w", "qz"], ["y"], name="classifier"),
    ]
    inits = [weights("cw", 16, 1, 3, 3), ints("s1", [1, 512, 64]), ints("s2", [64, 16]), u8]
    graph = helper.make_graph(
        nodes,
        "crnn",
        [vi("x", 1, 1, 32, 64)],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        inits + extra_inits,
        value_info=[vi("Y", 64, 2, 1, 8), vi("yt", 64, 1, 2, 8)],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def test_per_time_step_classifier_after_a_quantized_lstm_is_not_flagged(tmp_path) -> None:
    """The dynamically quantized CRNN of a real OCR export: the classifier reads LSTM features
    per time step; the convs upstream do not make its input a spatial map."""
    lstm = helper.make_node(
        "DynamicQuantizeLSTM",
        ["seq", "W", "R", "", "", "", "", "", "ws", "wz", "rs", "rz"],
        ["Y"],
        name="lstm",
        domain="com.microsoft",
        hidden_size=8,
        direction="bidirectional",
    )
    i8 = [
        numpy_helper.from_array(np.zeros((2, 512, 32), np.int8), "W"),
        numpy_helper.from_array(np.zeros((2, 8, 32), np.int8), "R"),
        *(weights(n, 2) for n in ("ws", "rs")),
        *(numpy_helper.from_array(np.zeros(2, np.int8), n) for n in ("wz", "rz")),
    ]
    path = tmp_path / "crnn.onnx"
    onnx.save(_crnn_head(lstm, i8), path)
    debug: list[str] = []
    report = analyze(path, debug=debug)
    assert not report.findings
    assert any("classifier" in d and "DynamicQuantizeLSTM" in d for d in debug), debug
    lstm_row = next(layer for layer in report.layers if layer.name == "lstm")
    assert lstm_row.params == 2 * 512 * 32 + 2 * 8 * 32  # int8 W and R are parameters


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_per_time_step_classifier_after_a_float_rnn_is_not_flagged(tmp_path, op) -> None:
    gates = 4 if op == "LSTM" else 3
    rnn = helper.make_node(
        op, ["seq", "W", "R"], ["Y"], name="rnn", hidden_size=8, direction="bidirectional"
    )
    path = tmp_path / "crnn.onnx"
    onnx.save(
        _crnn_head(rnn, [weights("W", 2, gates * 8, 512), weights("R", 2, gates * 8, 8)]), path
    )
    debug: list[str] = []
    assert not analyze(path, debug=debug).findings
    assert any("classifier" in d and op in d for d in debug), debug
    # the trail returned, not an out-parameter
    report, trail = analyze_with_debug(path, rule_filter=lambda rule: rule.code == "ONX101")
    assert trail == tuple(debug)
    assert report == analyze(path)
