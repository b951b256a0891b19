"""Weight-bearing contrib and quantized ops, and the fallback for ops nobody handles.

Each graph is built by hand; expected counts are the hand arithmetic written next to them.
"""

from __future__ import annotations

import numpy as np
from conftest import layer
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"
OPSETS = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]


def _model(nodes, inputs, outputs, inits, opsets=OPSETS):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _t(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.ones(shape, dtype), name)


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_dynamic_quantize_lstm_counts_int8_weights(audit) -> None:
    """hidden 8, input 4, bidirectional: W [2, 4, 32] int8, R [2, 8, 32] int8, B [2, 64]."""
    hidden, inp, dirs = 8, 4, 2
    inits = [
        _t("W", (dirs, inp, 4 * hidden), np.int8),
        _t("R", (dirs, hidden, 4 * hidden), np.int8),
        _t("B", (dirs, 8 * hidden)),
        _t("Ws", (dirs,)),
        _t("Wz", (dirs,), np.int8),
        _t("Rs", (dirs,)),
        _t("Rz", (dirs,), np.int8),
    ]
    node = helper.make_node(
        "DynamicQuantizeLSTM",
        ["X", "W", "R", "B", "", "", "", "", "Ws", "Wz", "Rs", "Rz"],
        ["Y"],
        name="lstm",
        domain=MS,
        hidden_size=hidden,
        direction="bidirectional",
    )
    report = audit(_model([node], [_vi("X", [5, 1, inp])], [_vi("Y", None)], inits))
    tally = layer(report, "lstm")
    assert tally.params == 2 * 4 * 32 + 2 * 8 * 32 + 2 * 64  # 256 + 512 + 128 = 896
    assert report.totals.quantization_constants == 8
    assert tally.macs.value == 5 * 1 * (2 * 4 * 32 + 2 * 8 * 32)  # steps x batch x (W + R)
    assert not report.warnings


def test_qattention_weight_bias_and_macs(audit) -> None:
    """hidden 16, 2 heads, input [2, 5, 16]: weight [16, 48] uint8, bias [48]."""
    inits = [
        _t("w", (16, 48), np.uint8),
        _t("b", (48,)),
        _t("xs", ()),
        _t("ws", ()),
        _t("xz", (), np.uint8),
        _t("wz", (), np.uint8),
    ]
    node = helper.make_node(
        "QAttention",
        ["x", "w", "b", "xs", "ws", "", "xz", "wz"],
        ["y"],
        name="attn",
        domain=MS,
        num_heads=2,
    )
    model = _model([node], [_vi("x", [2, 5, 16], TensorProto.UINT8)], [_vi("y", None)], inits)
    report = audit(model)
    tally = layer(report, "attn")
    assert tally.params == 16 * 48 + 48
    assert report.totals.quantization_constants == 4
    # projection 2*5 tokens x 768 weights, plus scores and context 2 x 2 x 5 x 5 x 16
    assert tally.macs.value == 2 * 5 * 16 * 48 + 2 * 2 * 5 * 5 * 16


def test_group_query_attention_rotary_caches_are_other_constants(audit) -> None:
    inits = [_t("cos", (64, 4)), _t("sin", (64, 4))]
    node = helper.make_node(
        "GroupQueryAttention",
        ["q", "k", "v", "", "", "seqlens", "total", "cos", "sin"],
        ["y", "pk", "pv"],
        name="gqa",
        domain=MS,
        num_heads=4,
        kv_num_heads=2,
        do_rotary=1,
    )
    inputs = [
        _vi("q", [1, 6, 32]),
        _vi("k", [1, 6, 16]),
        _vi("v", [1, 6, 16]),
        _vi("seqlens", [1], TensorProto.INT32),
        _vi("total", [], TensorProto.INT32),
    ]
    report = audit(_model([node], inputs, [_vi("y", None)], inits))
    assert report.totals.params == 0
    assert report.totals.other_constants == 2 * 64 * 4
    assert layer(report, "gqa").macs.value == 2 * 1 * 6 * 6 * 32
    assert not report.warnings


def test_gather_block_quantized_counts_two_values_per_byte(audit) -> None:
    """A 100 x 64 table in 4 bits, packed into uint8 [100, 32]; block 32: scales [100, 2]."""
    inits = [_t("table", (100, 32), np.uint8), _t("scales", (100, 2))]
    node = helper.make_node(
        "GatherBlockQuantized",
        ["table", "ids", "scales"],
        ["y"],
        name="embed",
        domain=MS,
        bits=4,
        block_size=32,
        quantize_axis=1,
    )
    ids = _vi("ids", [1, 7], TensorProto.INT64)
    report = audit(_model([node], [ids], [_vi("y", None)], inits))
    assert layer(report, "embed").params == 100 * 64
    assert report.totals.quantization_constants == 200


def test_skip_simplified_layer_norm_and_fast_gelu(audit) -> None:
    inits = [_t("gamma", (16,)), _t("bias", (16,)), _t("gbias", (16,))]
    nodes = [
        helper.make_node(
            "SkipSimplifiedLayerNormalization",
            ["x", "skip", "gamma", "bias"],
            ["n"],
            name="norm",
            domain=MS,
        ),
        helper.make_node("FastGelu", ["n", "gbias"], ["y"], name="gelu", domain=MS),
    ]
    inputs = [_vi("x", [1, 3, 16]), _vi("skip", [1, 3, 16])]
    report = audit(_model(nodes, inputs, [_vi("y", [1, 3, 16])], inits))
    assert layer(report, "norm").params == 32
    assert layer(report, "gelu").params == 16
    assert not report.warnings


def test_einsum_with_a_constant_operand(audit) -> None:
    """Keras EinsumDense as tf2onnx writes it: 'abc,cd->abd', x [2, 5, 8], W [8, 3]."""
    node = helper.make_node("Einsum", ["x", "W"], ["y"], name="dense", equation="abc,cd->abd")
    report = audit(_model([node], [_vi("x", [2, 5, 8])], [_vi("y", None)], [_t("W", (8, 3))]))
    tally = layer(report, "dense")
    assert tally.params == 24
    assert tally.macs.value == 2 * 5 * 8 * 3


def test_deform_conv_counts_weight_and_bias(audit) -> None:
    """W [4, 2, 3, 3] + B [4]; offsets are an activation. MACs = output 1x4x6x6 x 2x3x3."""
    inits = [_t("W", (4, 2, 3, 3)), _t("B", (4,))]
    node = helper.make_node(
        "DeformConv", ["x", "W", "off", "B"], ["y"], name="dconv", kernel_shape=[3, 3]
    )
    inputs = [_vi("x", [1, 2, 8, 8]), _vi("off", [1, 18, 6, 6])]
    opsets = [helper.make_opsetid("", 19)]
    report = audit(_model([node], inputs, [_vi("y", None)], inits, opsets))
    tally = layer(report, "dconv")
    assert tally.params == 4 * 2 * 9 + 4
    assert tally.macs.value == 4 * 6 * 6 * 2 * 9


def test_fallback_counts_int8_matrices_of_an_unknown_op(audit) -> None:
    """An op nobody knows, fed an int8 matrix: a weight, with a warning naming the op."""
    node = helper.make_node("MysteryQuantMatMul", ["x", "W"], ["y"], name="m", domain="acme")
    opsets = [*OPSETS, helper.make_opsetid("acme", 1)]
    inits = [_t("W", (32, 16), np.int8)]
    report = audit(
        _model([node], [_vi("x", [1, 32])], [_vi("y", None)], inits, opsets), strict=False
    )
    assert report.totals.params == 32 * 16
    assert any("acme::MysteryQuantMatMul" in w for w in report.warnings)


def test_weight_free_ops_give_no_warning(audit) -> None:
    """A constant fed to a weight-free op (a lookup table for Where's condition) is an other
    constant, not a parameter, and no warning is due."""
    inits = [_t("grid", (1, 4, 4, 2))]
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], name="gs")
    opsets = [helper.make_opsetid("", 17)]
    report = audit(_model([node], [_vi("x", [1, 3, 8, 8])], [_vi("y", None)], inits, opsets))
    assert report.totals.params == 0
    assert report.totals.other_constants == 32
    assert not report.warnings


def test_simplified_layer_norm_in_the_onnx_domain_keeps_shapes(audit) -> None:
    """onnxruntime's optimizer writes RMSNorm as SimplifiedLayerNormalization in the onnx
    domain: its scale [16] is a parameter and the MatMul after it keeps its MACs,
    batch 2 x 7 tokens x 16 x 16 at the given input shape."""
    nodes = [
        helper.make_node("SimplifiedLayerNormalization", ["x", "g"], ["n"], axis=-1),
        helper.make_node("MatMul", ["n", "w"], ["y"]),
    ]
    model = _model(
        nodes, [_vi("x", ["b", "t", 16])], [_vi("y", None)], [_t("g", (16,)), _t("w", (16, 16))]
    )
    report = audit(model, input_shapes={"x": (2, 7, 16)})
    assert report.totals.params == 16 + 16 * 16
    assert report.totals.macs.value == 2 * 7 * 16 * 16
    assert not report.warnings


def test_blocked_layout_conv_from_the_level_99_optimizer(audit) -> None:
    """com.microsoft.nchwc Conv (8x8 patches, stride 8) between ReorderInput/ReorderOutput:
    W [16, 3, 8, 8] + bias 16; MACs = output [1, 16, 4, 4] elements x 3 x 8 x 8, and the
    MatMul after it keeps its shape: [1, 16, 16] x [16, 16]."""
    nchwc = "com.microsoft.nchwc"
    nodes = [
        helper.make_node("ReorderInput", ["x"], ["xb"], domain=nchwc),
        helper.make_node(
            "Conv", ["xb", "w", "b"], ["yb"], domain=nchwc, kernel_shape=[8, 8], strides=[8, 8]
        ),
        helper.make_node("ReorderOutput", ["yb"], ["y"], domain=nchwc, channels=16),
        helper.make_node("Reshape", ["y", "shape"], ["tokens"]),
        helper.make_node("MatMul", ["tokens", "m"], ["z"]),
    ]
    shape = numpy_helper.from_array(np.array([1, 16, 16], np.int64), "shape")
    inits = [_t("w", (16, 3, 8, 8)), _t("b", (16,)), _t("m", (16, 16)), shape]
    opsets = [*OPSETS, helper.make_opsetid(nchwc, 1)]
    model = _model(nodes, [_vi("x", [1, 3, 32, 32])], [_vi("z", None)], inits, opsets)
    report = audit(model)
    assert report.totals.params == 16 * 3 * 8 * 8 + 16 + 16 * 16
    assert report.totals.macs.value == 16 * 4 * 4 * 3 * 8 * 8 + 16 * 16 * 16
    assert not report.warnings


def test_qlinear_concat_keeps_shapes_for_the_matmul_after_it(audit) -> None:
    """QOperator attention: two uint8 [2, 3, 8] halves joined by com.microsoft QLinearConcat
    along the last axis, then QLinearMatMul with a uint8 [16, 4] weight: 2 x 3 x 4 outputs,
    16 MACs each."""
    scalar = {"s": np.float32(0.1), "z": np.uint8(0)}
    inits = [numpy_helper.from_array(np.array(v), k) for k, v in scalar.items()]
    inits.append(_t("w", (16, 4), np.uint8))
    nodes = [
        helper.make_node(
            "QLinearConcat", ["s", "z", "a", "s", "z", "b", "s", "z"], ["c"], domain=MS, axis=-1
        ),
        helper.make_node("QLinearMatMul", ["c", "s", "z", "w", "s", "z", "s", "z"], ["y"]),
    ]
    inputs = [_vi("a", [2, 3, 8], TensorProto.UINT8), _vi("b", [2, 3, 8], TensorProto.UINT8)]
    report = audit(_model(nodes, inputs, [_vi("y", None, TensorProto.UINT8)], inits))
    assert report.totals.macs.value == 2 * 3 * 4 * 16
