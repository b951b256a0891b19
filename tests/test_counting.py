"""The counting rules of DESIGN.md, one op family at a time, numbers by hand."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.core.errors import MalformedGraphError, StrictModeError
from analyzer.count.visitors import lookup, register
from tests.conftest import layer, with_weights

H = '<ir_version: 8, opset_import: ["" : 17, "com.microsoft" : 1]>\n'


def test_batchnorm_statistics_are_non_trainable(audit) -> None:
    model = with_weights(
        H
        + """g (float[1, 3, 8, 8] x, float[4, 3, 3, 3] w, float[4] b, float[4] s, float[4] t,
               float[4] mean, float[4] var) => (float[1, 4, 8, 8] y) {
            c = Conv <pads = [1, 1, 1, 1]> (x, w, b)
            y = BatchNormalization (c, s, t, mean, var)
        }""",
        "w", "b", "s", "t", "mean", "var",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.trainable == 4 * 3 * 9 + 4 + 4 + 4
    assert report.totals.non_trainable == 4 + 4
    assert report.totals.params == 4 * 27 + 4 + 16
    assert layer(report, "BatchNormalization_1").macs.value == 0


def test_lstm_matches_torch_layout(audit) -> None:
    """torch.nn.LSTM(10, 20): 4*20*10 + 4*20*20 + 2*4*20 = 2,560 parameters."""
    model = with_weights(
        H
        + """g (float[5, 1, 10] x, float[1, 80, 10] w, float[1, 80, 20] r, float[1, 160] b)
               => (float[5, 1, 1, 20] y) {
            y = LSTM <hidden_size = 20> (x, w, r, b)
        }""",
        "w", "r", "b",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 4 * 20 * 10 + 4 * 20 * 20 + 2 * 4 * 20 == 2560
    assert report.layers[0].macs.value == 5 * 1 * (80 * 10 + 80 * 20)


def test_zero_state_broadcast_to_the_batch_is_no_parameter(audit) -> None:
    """torchscript with a static batch: zeros [1, 1, 20] Expand-ed to the batch size read by
    Shape feed initial_h/initial_c. torch.nn.LSTM(10, 20) still has 2,560 parameters; a class
    token broadcast the same way into a Concat stays a parameter (1 x 1 x 10)."""
    model = with_weights(
        H
        + """g (float[5, 2, 10] x, float[1, 80, 10] w, float[1, 80, 20] r, float[1, 160] b,
               float[1, 1, 20] zeros, float[1, 1, 10] cls)
               => (float[5, 2, 1, 20] y, float[6, 2, 10] z) {
            s = Shape <start = 1, end = 2> (x)
            one = Constant <value = int64[1] {1}> ()
            twenty = Constant <value = int64[1] {20}> ()
            state_shape = Concat <axis = 0> (one, s, twenty)
            h = Expand (zeros, state_shape)
            c = Expand (zeros, state_shape)
            y = LSTM <hidden_size = 20> (x, w, r, b, "", h, c)
            ten = Constant <value = int64[1] {10}> ()
            cls_shape = Concat <axis = 0> (one, s, ten)
            token = Expand (cls, cls_shape)
            z = Concat <axis = 0> (token, x)
        }""",
        "w", "r", "b", "zeros", "cls",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 2560 + 1 * 1 * 10
    assert report.totals.other_constants == 1 * 1 * 20 + 1 + 1 + 1
    assert [entry.op_type for entry in report.layers] == ["LSTM", "Expand"]


def _instance_norm(scale: list[float], bias: list[float]) -> onnx.ModelProto:
    model = onnx.parser.parse_model(
        H
        + """g (float[2, 4, 6] x) => (float[2, 4, 6] y) {
            y = InstanceNormalization (x, s, b)
        }"""
    )
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(scale, np.float32), "s"),
            numpy_helper.from_array(np.array(bias, np.float32), "b"),
        ]
    )
    return model


def test_identity_instance_norm_is_no_parameter(audit) -> None:
    """torch's GroupNorm(4, C) as ONNX: InstanceNormalization with ones[4] and zeros[4]."""
    report = audit(_instance_norm([1.0] * 4, [0.0] * 4))
    assert report.totals.params == 0
    assert report.totals.other_constants == 4 + 4
    assert len(report.notes) == 1 and "1 InstanceNormalization layer(s)" in report.notes[0]


@pytest.mark.parametrize(
    ("scale", "bias"),
    [([1.0, 1.0, 1.0, 1.5], [0.0] * 4), ([1.0] * 4, [0.0, 0.0, 0.0, -0.25]), ([1.0] * 4, [])],
)
def test_instance_norm_with_learned_values_counts(audit, scale, bias) -> None:
    report = audit(_instance_norm(scale, bias), strict=False)
    assert report.totals.params == len(scale) + len(bias)
    assert report.notes == ()


def _loop_rnn(handed_back: str) -> onnx.ModelProto:
    """tf2onnx's Keras RNN: W [8, 8] and b [8] ride along as loop-carried values the body
    hands back unchanged; the zero state h [1, 8] is carried and updated."""
    rng = np.random.default_rng(0)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["h_in", "w_in"], ["hw"]),
            helper.make_node("Add", ["hw", "b_in"], ["pre"]),
            helper.make_node("Tanh", ["pre"], ["h_out"]),
            helper.make_node("Identity", ["i"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [8, 8]),
            helper.make_tensor_value_info("b_in", TensorProto.FLOAT, [8]),
        ],
        [
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info(handed_back, TensorProto.FLOAT, [8, 8]),
            helper.make_tensor_value_info("b_in", TensorProto.FLOAT, [8]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node(
                "Loop", ["steps", "", "h0", "w", "b"], ["h", "w_last", "b_last"], body=body
            )
        ],
        "loop_rnn",
        [helper.make_tensor_value_info("steps", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 8])],
        [
            numpy_helper.from_array(np.zeros((1, 8), np.float32), "h0"),
            numpy_helper.from_array(rng.standard_normal((8, 8)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_loop_carried_weights_count_in_the_body(audit) -> None:
    report = audit(_loop_rnn(handed_back="w_in"))
    assert report.totals.params == 8 * 8 + 8
    assert report.totals.other_constants == 1 * 8  # the zero state
    matmul = next(entry for entry in report.layers if entry.op_type == "MatMul")
    assert [w.tensor for w in matmul.weights] == ["w", "b"]
    assert matmul.macs.value == 1 * 8 * 8
    assert report.warnings == ()


def test_loop_value_the_body_changes_is_not_read_through(audit) -> None:
    """w_in is handed back as another value: the body sees a state, not the weight."""
    model = _loop_rnn(handed_back="hw")
    model.graph.node[0].attribute[0].g.output[2].type.tensor_type.shape.dim[0].dim_value = 1
    report = audit(model, strict=False)
    assert report.totals.params == 8  # only b, read through; w and h0 are carried state
    assert report.totals.other_constants == 8 * 8 + 1 * 8


def test_loop_body_declaring_a_carried_name_twice_is_an_error(audit) -> None:
    model = _loop_rnn(handed_back="w_in")
    body = model.graph.node[0].attribute[0].g
    body.input[4].name = "w_in"  # b_in's slot now also says w_in
    body.output[3].name = "w_in"
    body.node[1].input[1] = "w_in"
    with pytest.raises(MalformedGraphError, match="'w_in' is defined twice"):
        audit(model)


def test_gru_bidirectional(audit) -> None:
    """torch.nn.GRU(8, 16, bidirectional=True): 2 * (3*16*8 + 3*16*16 + 2*3*16)."""
    model = with_weights(
        H
        + """g (float[4, 2, 8] x, float[2, 48, 8] w, float[2, 48, 16] r, float[2, 96] b)
               => (float[4, 2, 2, 16] y) {
            y = GRU <hidden_size = 16, direction = "bidirectional"> (x, w, r, b)
        }""",
        "w", "r", "b",
    )  # fmt: skip
    assert audit(model).totals.params == 2 * (3 * 16 * 8 + 3 * 16 * 16 + 2 * 3 * 16)


def test_conv_transpose_and_macs(audit) -> None:
    model = with_weights(
        H
        + """g (float[1, 8, 4, 4] x, float[8, 3, 2, 2] w, float[3] b) => (float[1, 3, 8, 8] y) {
            y = ConvTranspose <strides = [2, 2]> (x, w, b)
        }""",
        "w", "b",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 8 * 3 * 4 + 3
    assert report.layers[0].macs.value == 8 * 4 * 4 * (3 * 2 * 2)


def test_grouped_conv_macs(audit) -> None:
    """Depthwise 3x3 on 8 channels: each output reads 1 channel x 9 taps."""
    model = with_weights(
        H
        + """g (float[1, 8, 6, 6] x, float[8, 1, 3, 3] w) => (float[1, 8, 4, 4] y) {
            y = Conv <group = 8> (x, w)
        }""",
        "w",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 72
    assert report.layers[0].macs.value == 8 * 4 * 4 * 9


def test_norms_prelu_embedding(audit) -> None:
    model = with_weights(
        H
        + """g (int64[2, 5] ids, float[30, 6] table, float[6] g1, float[6] b1, float[1] slope)
               => (float[2, 5, 6] y) {
            e = Gather (table, ids)
            n = LayerNormalization <axis = -1> (e, g1, b1)
            y = PRelu (n, slope)
        }""",
        "table", "g1", "b1", "slope",
    )  # fmt: skip
    report = audit(model)
    # torch.nn.PReLU() has one parameter: a single-element slope still counts
    assert report.totals.params == 30 * 6 + 6 + 6 + 1
    assert layer(report, "Gather_0").params == 180


def test_matmul_nbits_counts_logical_elements(audit) -> None:
    """K=64, N=32 at 4 bits, block 32: B holds 32 x 2 x 16 bytes but 2,048 weights."""
    k, n, block = 64, 32, 32
    blocks = k // block
    b = numpy_helper.from_array(np.zeros((n, blocks, block // 2), np.uint8), "B")
    scales = numpy_helper.from_array(np.ones(n * blocks, np.float32), "scales")
    node = helper.make_node(
        "MatMulNBits",
        ["A", "B", "scales"],
        ["Y"],
        domain="com.microsoft",
        K=k,
        N=n,
        bits=4,
        block_size=block,
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, n])],
        [b, scales],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    report = audit(helper.make_model(graph, opset_imports=opsets, ir_version=8))
    assert report.totals.params == k * n == 2048
    assert report.totals.param_bytes == n * blocks * (block // 2) == 1024
    assert report.totals.quantization_constants == n * blocks
    assert report.layers[0].macs.value == k * n


def test_shared_weight_counts_once(audit) -> None:
    model = with_weights(
        H
        + """g (float[1, 16] x, float[16, 16] w) => (float[1, 16] y) {
            a = MatMul (x, w)
            y = MatMul (a, w)
        }""",
        "w",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 256
    assert [entry.params for entry in report.layers] == [256, 256]
    assert all(entry.shared for entry in report.layers)


def test_weight_norm_chain_counts_both_factors(audit) -> None:
    """torch weight_norm: W = g * v / ||v||, computed from two stored tensors."""
    model = with_weights(
        H
        + """g (float[1, 8] x, float[4, 8] v, float[4, 1] gain) => (float[1, 4] y) {
            n = ReduceL2 <axes = [1], keepdims = 1> (v)
            d = Div (v, n)
            w = Mul (gain, d)
            y = Gemm <transB = 1> (x, w)
        }""",
        "v", "gain",
    )  # fmt: skip
    assert audit(model).totals.params == 4 * 8 + 4


def test_elementwise_tables_are_params_scalars_are_not(audit) -> None:
    model = with_weights(
        H
        + """g (float[1, 4, 8] x, float[1, 4, 8] pos, float[1] two) => (float[1, 4, 8] y) {
            a = Add (x, pos)
            y = Mul (a, two)
        }""",
        "pos", "two",
    )  # fmt: skip
    t = audit(model).totals
    assert (t.params, t.other_constants) == (32, 1)


def test_reshape_shape_is_other_constant(audit) -> None:
    model = with_weights(
        H
        + """g (float[2, 3, 4] x, int64[2] shape) => (float[2, 12] y) {
            y = Reshape (x, shape)
        }""",
        "shape",
    )  # fmt: skip
    t = audit(model).totals
    assert (t.params, t.other_constants, t.stored_elements) == (0, 2, 2)


def test_unknown_op_is_counted_and_named(audit) -> None:
    model = with_weights(
        '<ir_version: 8, opset_import: ["" : 17, "custom.ops" : 1]>\n'
        + """g (float[1, 8] x, float[8, 8] w) => (float[1, 8] y) {
            y = custom.ops.MyDense (x, w)
        }""",
        "w",
    )  # fmt: skip
    with pytest.raises(StrictModeError, match=r"unhandled op with weights: custom\.ops::MyDense"):
        audit(model)
    report = audit(model, strict=False)
    assert report.totals.params == 64
    assert any("custom.ops::MyDense" in w for w in report.warnings)
    assert "unhandled" in report.layers[0].notes[0]


def test_weights_fed_as_graph_inputs_are_unknown_not_zero(audit) -> None:
    model = onnx.parser.parse_model(
        H
        + """g (float[1, 3, 8, 8] x, float[4, 3, 3, 3] w) => (float[1, 4, 6, 6] y) {
            y = Conv (x, w)
        }"""
    )
    report = audit(model)
    assert report.totals.params == 0
    assert report.totals.unknown_weights == 4 * 3 * 3 * 3
    assert any("graph input" in w for w in report.warnings)


def test_constant_index_into_a_graph_input_is_not_an_embedding(audit) -> None:
    """silero-vad's decoder reads `state[0]`, `state[1]` of its recurrent state input: a
    selection from a runtime tensor, neither a parameter nor an unknown weight."""
    model = onnx.parser.parse_model(
        H
        + """g (float[2, batch, 128] state, float[batch, 128] x) => (float[batch, 128] y) {
            i0 = Constant <value = int64 {0}> ()
            h = Gather <axis = 0> (state, i0)
            y = Add (h, x)
        }"""
    )
    report = audit(model)
    assert report.totals.params == 0
    assert report.totals.unknown_weights == 0
    assert not any("graph input" in w for w in report.warnings)


def test_token_ids_into_a_table_fed_as_graph_input_stay_unknown(audit) -> None:
    model = onnx.parser.parse_model(
        H
        + """g (float[100, 8] table, int64[batch, seq] ids) => (float[batch, seq, 8] y) {
            y = Gather <axis = 0> (table, ids)
        }"""
    )
    report = audit(model)
    assert report.totals.unknown_weights == 100 * 8
    assert any("'table'" in w and "graph input" in w for w in report.warnings)


def test_registry_keys_by_domain_and_normalises_ai_onnx() -> None:
    assert lookup("ai.onnx", "Conv") is lookup("", "Conv") is not None
    assert lookup("com.microsoft", "Conv") is None
    with pytest.raises(ValueError, match="registered twice"):
        register("Conv")(lambda node, ctx: iter(()))


def test_subgraph_and_function_weights(audit) -> None:
    """An If with a weight in each branch, and a local function called twice."""
    then_w = numpy_helper.from_array(np.zeros((4, 4), np.float32), "tw")
    else_w = numpy_helper.from_array(np.zeros((4, 6), np.float32), "ew")
    out_t = helper.make_tensor_value_info("ty", TensorProto.FLOAT, None)
    out_e = helper.make_tensor_value_info("ey", TensorProto.FLOAT, None)
    then_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "tw"], ["ty"])], "then", [], [out_t], [then_w]
    )
    else_g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "ew"], ["ey"])], "else", [], [out_e], [else_w]
    )
    fw = helper.make_tensor("fw", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    fn = helper.make_function(
        "local",
        "Dense",
        ["a"],
        ["b"],
        [
            helper.make_node("Constant", [], ["k"], value=fw),
            helper.make_node("MatMul", ["a", "k"], ["b"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    nodes = [
        helper.make_node("If", ["cond"], ["z"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Dense", ["x"], ["d1"], domain="local", name="call1"),
        helper.make_node("Dense", ["d1"], ["d2"], domain="local", name="call2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
        ],
        [
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
            out_d2 := helper.make_tensor_value_info("d2", TensorProto.FLOAT, None),
        ],
    )
    _ = out_d2
    model = helper.make_model(
        graph,
        functions=[fn],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        ir_version=8,
    )
    report = audit(model)
    assert report.totals.params == 16 + 24 + 16  # the function's constant is stored once
    assert report.totals.stored_tensors == 3
    calls = [entry for entry in report.layers if entry.name.startswith("call")]
    assert len(calls) == 2 and all(entry.shared for entry in calls)


def test_a_bias_less_conv_keeps_its_separate_bias_add(audit) -> None:
    """paddle2onnx writes Conv (no bias) + Add of a [1, C, 1, 1] weight: one layer, not two."""
    model = with_weights(
        H
        + """g (float[1, 3, 8, 8] x, float[4, 3, 3, 3] w, float[1, 4, 1, 1] b)
               => (float[1, 4, 6, 6] y) {
            c = Conv (x, w)
            y = Add (c, b)
        }""",
        "w", "b",
    )  # fmt: skip
    report = audit(model)
    assert [(entry.op_type, entry.params) for entry in report.layers] == [("Conv", 4 * 27 + 4)]
    assert {w.role for w in report.layers[0].weights} == {"weight", "bias"}


@pytest.mark.parametrize(
    ("weight", "noted"),
    [("onnx::Conv_146", True), ("onnx::Conv_146_quantized", True), ("conv1.weight", False)],
)
def test_folded_conv_weights_are_noted_also_when_quantized(audit, weight, noted) -> None:
    """torchscript names a conv weight it computed (BatchNorm folded in) onnx::Conv_N;
    onnxruntime's QDQ quantizer then stores it as onnx::Conv_N_quantized."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", weight], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 3, 3])],
        [numpy_helper.from_array(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), weight)],
    )
    report = audit(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.totals.params == 3 * 2 * 3 * 3
    assert any("likely folded" in note for note in report.notes) is noted


def test_transposed_copy_notes_stay_one_per_weight(audit) -> None:
    """Found by a red-team sweep: n tables and n MatMuls of the transposed shape made n*n
    notes (5,000 of each: a minute and then a crash); now one note per MatMul weight."""
    n = 3
    rng = np.random.default_rng(0)
    nodes, inits, outputs = [], [], []
    for i in range(n):
        nodes.append(helper.make_node("Gather", [f"tab{i}", "ids"], [f"e{i}"]))
        nodes.append(helper.make_node("MatMul", ["x", f"mw{i}"], [f"m{i}"], name=f"mm{i}"))
        inits += [
            numpy_helper.from_array(rng.standard_normal((3, 2)).astype(np.float32), f"tab{i}"),
            numpy_helper.from_array(rng.standard_normal((2, 3)).astype(np.float32), f"mw{i}"),
        ]
        outputs += [f"e{i}", f"m{i}"]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, [4]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 2]),
        ],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        inits,
    )
    report = audit(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.totals.params == n * (3 * 2 + 2 * 3)
    assert len(report.notes) == n
    assert all("'tab0' [3, 2] (or one of 2 other tables)" in note for note in report.notes)


def _function_model(fn_nodes: list[onnx.NodeProto], main_nodes: list[onnx.NodeProto]):
    fn = helper.make_function(
        "local", "F", ["c", "x"], ["y"], fn_nodes, [helper.make_opsetid("", 17)]
    )
    graph = helper.make_graph(
        main_nodes,
        "g",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    return helper.make_model(graph, opset_imports=opsets, functions=[fn])


def test_function_if_branches_read_the_functions_own_names(audit) -> None:
    """Found by a red-team sweep (valid for onnx.checker and onnxruntime, refused here): an If
    inside a function reads the formal input x and the body's Constant k [4, 3]."""
    branch = [helper.make_node("MatMul", ["x", "k"], ["r"])]
    out = [helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 3])]
    k = helper.make_tensor("kk", TensorProto.FLOAT, [4, 3], [0.5] * 12)
    model = _function_model(
        [
            helper.make_node("Constant", [], ["k"], value=k),
            helper.make_node(
                "If",
                ["c"],
                ["y"],
                then_branch=helper.make_graph(branch, "t", [], out),
                else_branch=helper.make_graph(branch, "e", [], out),
            ),
        ],
        [helper.make_node("F", ["cond", "inp"], ["out"], domain="local", name="call")],
    )
    report = audit(model)
    assert report.totals.params == 4 * 3  # one stored tensor, read by both branches
    assert sorted(entry.op_type for entry in report.layers) == ["MatMul", "MatMul"]


@pytest.mark.parametrize("call_name", ["", "blk"])
def test_function_expansion_never_takes_an_existing_name(audit, call_name) -> None:
    """The copies of an unnamed call at index 1 are named F_1/..., of a call named blk blk/...:
    a tensor of the graph already called so must not make them 'defined twice'."""
    taken = f"{call_name or 'F_1'}/t"
    model = _function_model(
        [helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Identity", ["t"], ["y"])],
        [
            helper.make_node("Relu", ["inp"], [taken], name="first"),
            helper.make_node("F", ["cond", taken], ["out"], domain="local", name=call_name),
        ],
    )
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 4
    report = audit(model)
    assert report.model.nodes == 3


@pytest.mark.parametrize(
    ("tensor", "noted"), [("model/bn/batchnorm/mul:0", True), ("model/scale:0", False)]
)
def test_batchnorm_rewritten_as_mul_is_noted(audit, tensor, noted) -> None:
    """tf2onnx writes a Keras BatchNormalization as Mul/Add by precomputed scale and shift: the
    moving statistics are gone from the file, so Keras counts more."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", tensor], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 8])],
        [helper.make_tensor(tensor, TensorProto.FLOAT, [8], [0.5 + i for i in range(8)])],
    )
    report = audit(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert report.totals.params == 8
    assert any("likely folded into 1 layer(s)" in note for note in report.notes) is noted


def test_position_table_sliced_to_the_sequence_length_is_a_parameter(audit) -> None:
    """GPT-2 / Whisper decoders: `pos[:T]` with T read from the input's shape, added to the
    token embedding. torch counts the learned [32, 16] table; the slice bounds come from
    Shape, so the table is constant however long the input is."""
    model = with_weights(
        H
        + """g (int64[batch, seq] ids, float[100, 16] emb, float[32, 16] pos)
               => (float[batch, seq, 16] out) {
            tokens = Gather (emb, ids)
            shape = Shape (ids)
            one = Constant <value = int64[1] {1}> ()
            zero = Constant <value = int64[1] {0}> ()
            seq = Gather <axis = 0> (shape, one)
            stop = Reshape (seq, one)
            positions = Slice (pos, zero, stop, zero)
            out = Add (tokens, positions)
        }""",
        "emb", "pos",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 100 * 16 + 32 * 16
    assert [layer.op_type for layer in report.layers] == ["Gather", "Slice"]


def test_rotary_inverse_frequencies_are_no_parameter(audit) -> None:
    """HF rotary: angles = positions (Range over the sequence length) x inv_freq, a torch
    buffer of head_dim / 2 values; cos(angles) scales q. Computed from shapes: no weights."""
    model = with_weights(
        H
        + """g (float[batch, seq, 16] x, float[1, 8] inv_freq, float[16, 16] w)
               => (float[batch, seq, 16] out) {
            shape = Shape (x)
            one = Constant <value = int64[1] {1}> ()
            seq = Gather (shape, one)
            start = Constant <value = int64 {0}> ()
            step = Constant <value = int64 {1}> ()
            count = Squeeze (seq)
            steps = Range (start, count, step)
            f = Cast <to = 1> (steps)
            axis = Constant <value = int64[1] {1}> ()
            column = Unsqueeze (f, axis)
            angles = Mul (column, inv_freq)
            both = Concat <axis = -1> (angles, angles)
            cos = Cos (both)
            q = MatMul (x, w)
            out = Mul (q, cos)
        }""",
        "inv_freq", "w",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 16 * 16
    assert report.totals.other_constants >= 8
    assert [layer.op_type for layer in report.layers] == ["MatMul"]


def test_transposed_copy_note_only_for_an_output_head(audit) -> None:
    """An MLP up-projection [16, 100] beside a [100, 16] embedding is no copy of it (Whisper's
    4 x d = vocab); the head that writes the logits, quantized or not, may be."""
    model = with_weights(
        H
        + """g (int64[batch, seq] ids, float[100, 16] emb, float[16, 100] up,
               float[100, 16] down, float[16, 100] head) => (float[batch, seq, 100] logits) {
            h = Gather (emb, ids)
            u = MatMul (h, up)
            r = Relu (u)
            d = MatMul (r, down)
            logits = MatMul (d, head)
        }""",
        "emb", "up", "down", "head",
    )  # fmt: skip
    notes = [n for n in audit(model).notes if "transposed copy" in n]
    assert len(notes) == 1 and "'head'" in notes[0]


def test_rotary_caches_and_masks_cut_to_the_sequence_are_buffers(audit) -> None:
    """LLaMA-style: cos_cached[:T] multiplies q, a [64, 64] causal mask[:T, :T] is added to
    the scores: torch buffers, other constants. The q projection is the only parameter."""
    model = with_weights(
        H
        + """g (float[batch, seq, 16] x, float[64, 16] cos_cached, float[64, 64] mask,
               float[16, 16] wq) => (float[batch, seq, seq] scores) {
            shape = Shape (x)
            one = Constant <value = int64[1] {1}> ()
            zero = Constant <value = int64[1] {0}> ()
            seq = Gather (shape, one)
            cos = Slice (cos_cached, zero, seq, zero)
            q = MatMul (x, wq)
            qr = Mul (q, cos)
            axes = Constant <value = int64[2] {0, 1}> ()
            ends = Concat <axis = 0> (seq, seq)
            starts = Constant <value = int64[2] {0, 0}> ()
            m = Slice (mask, starts, ends, axes)
            k = Transpose <perm = [0, 2, 1]> (qr)
            raw = MatMul (qr, k)
            scores = Add (raw, m)
        }""",
        "cos_cached", "mask", "wq",
    )  # fmt: skip
    report = audit(model)
    assert report.totals.params == 16 * 16
    assert report.totals.other_constants >= 64 * 16 + 64 * 64


@pytest.mark.parametrize("rewrite", ["FuseBatchNormIntoConv", ""])
def test_batchnorm_folded_by_dynamo_is_noted_from_the_node_metadata(audit, rewrite) -> None:
    """torch's dynamo exporter folds BatchNorm into the conv but keeps the conv's names
    (c.weight, c.bias); the rewrite it applied is in the node's metadata."""
    model = with_weights(
        H
        + """g (float[1, 1, 16] x, float[8, 1, 3] w, float[8] b) => (float[1, 8, 14] y) {
            y = Conv (x, w, b)
        }""",
        "w", "b",
    )  # fmt: skip
    if rewrite:
        entry = model.graph.node[0].metadata_props.add()
        entry.key, entry.value = "pkg.onnxscript.rewriter.rule_name", rewrite
    report = audit(model)
    assert report.totals.params == 8 * 3 + 8
    assert any("folded" in note for note in report.notes) == bool(rewrite)
