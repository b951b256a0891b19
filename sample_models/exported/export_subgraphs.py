"""Hand-built ONNX models (onnx.helper) exercising control-flow subgraphs and
model-local functions.  There is no framework here: the parameter counts in
each counts JSON come from the hand arithmetic written below (NOT from reading
the ONNX file back).

  subgraph_if_gemm.onnx       Conv -> Flatten in the main graph, then an If whose
                              then/else branches each hold a Gemm with its own
                              initializer weight INSIDE the branch subgraph.
                              Both branch Gemms consume the flattened conv tensor
                              (outer-scope value), so both weights are flagged.
  subgraph_loop_matmul.onnx   Loop whose body holds a MatMul weight + bias
                              (recurrent h <- tanh(h @ W + b)); not flagged.
  subgraph_scan_weight.onnx   Scan (RNN cell) whose body holds W_x, W_h, b; not flagged.
  function_gemm_twice.onnx    model-local FunctionProto 'local.fn::Dense8' whose Gemm
                              weight/bias come from Constant nodes inside the function;
                              the function is called twice (weights stored once).

Run:  python sample_models/exported/export_subgraphs.py
"""
from __future__ import annotations

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import out_path, verify, write_json  # noqa: E402

OPSET = 17
IR_VERSION = 8  # opset 17 <-> IR 8; keeps the files loadable by older onnxruntime builds
FW = f"hand-built with onnx.helper (onnx {onnx.__version__})"


def rnd(rng, *shape, scale=0.1):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def finish(graph, name, functions=(), extra_opsets=()):
    opsets = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, opset_imports=opsets, functions=list(functions),
                          producer_name="onnx-audit export_subgraphs.py", ir_version=IR_VERSION)
    onnx.checker.check_model(m, full_check=True)
    path = out_path(name + ".onnx")
    onnx.save(m, path)
    return path


# --------------------------------------------------------------------------
def if_gemm():
    rng = np.random.default_rng(0)
    C_IN, C, H, W, UNITS = 2, 4, 4, 4, 8
    conv_w = rnd(rng, C, C_IN, 3, 3)
    conv_b = rnd(rng, C)
    then_w = rnd(rng, UNITS, C * H * W)          # Gemm transB=1: [units, in]
    then_b = rnd(rng, UNITS)
    else_w = rnd(rng, C * H * W, UNITS)          # Gemm transB=0: [in, units]
    else_b = rnd(rng, UNITS)

    then_g = helper.make_graph(
        [helper.make_node("Gemm", ["flat", "then_fc.weight", "then_fc.bias"], ["then_y"], transB=1,
                          name="then_fc")],
        "then_branch", [], [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, ["N", UNITS])],
        initializer=[numpy_helper.from_array(then_w, "then_fc.weight"),
                     numpy_helper.from_array(then_b, "then_fc.bias")])
    else_g = helper.make_graph(
        [helper.make_node("Gemm", ["flat", "else_fc.weight", "else_fc.bias"], ["else_y"], name="else_fc"),
         helper.make_node("Relu", ["else_y"], ["else_out"])],
        "else_branch", [], [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, ["N", UNITS])],
        initializer=[numpy_helper.from_array(else_w, "else_fc.weight"),
                     numpy_helper.from_array(else_b, "else_fc.bias")])
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["conv_out"], pads=[1, 1, 1, 1],
                          name="conv"),
         helper.make_node("Relu", ["conv_out"], ["act"]),
         helper.make_node("Flatten", ["act"], ["flat"], axis=1),
         helper.make_node("If", ["use_then"], ["output"], then_branch=then_g, else_branch=else_g, name="branch")],
        "if_gemm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", C_IN, H, W]),
         helper.make_tensor_value_info("use_then", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", UNITS])],
        initializer=[numpy_helper.from_array(conv_w, "conv.weight"), numpy_helper.from_array(conv_b, "conv.bias")])
    path = finish(g, "subgraph_if_gemm")

    # hand arithmetic
    conv = C * C_IN * 3 * 3 + C            # 4*2*9 + 4 = 76
    then_p = UNITS * C * H * W + UNITS     # 8*64 + 8 = 520
    else_p = C * H * W * UNITS + UNITS     # 64*8 + 8 = 520
    total = conv + then_p + else_p         # 1116
    shp = {"C": C, "H": H, "W": W, "units": UNITS}
    counts = dict(
        framework=FW, exporter="onnx.helper", opset=OPSET,
        params=total, trainable=total, bn_buffers=0,
        params_breakdown={"main: conv.weight+conv.bias": conv, "If.then_branch: then_fc": then_p,
                          "If.else_branch: else_fc": else_p},
        notes=("Counts by hand: conv 4*2*3*3+4=76, then-branch Gemm 8*64+8=520, else-branch Gemm 64*8+8=520; "
               "total 1116 counts BOTH branches (weights stored in the file, whichever branch runs). The branch "
               "weights are initializers of the branch subgraphs, not of the main graph; the branches read the "
               "outer-scope tensor 'flat' = Flatten(Relu(Conv)) of a 4x4x4 map, so both branch Gemms are dense "
               "layers on a flattened conv tensor (flagged). then uses transB=1 ([8,64]); else uses transB=0 "
               "([64,8])."),
        flagged_weights=["then_fc.weight", "else_fc.weight"],
        flagged_shapes={"then_fc.weight": dict(shp), "else_fc.weight": dict(shp)},
        example_input_shapes={"input": [2, C_IN, H, W], "use_then": []},
    )
    return path, counts


# --------------------------------------------------------------------------
def loop_matmul():
    rng = np.random.default_rng(1)
    D = 16
    w = rnd(rng, D, D)
    b = rnd(rng, D)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h_in", "loop_fc.weight"], ["mm"], name="loop_fc"),
         helper.make_node("Add", ["mm", "loop_fc.bias"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "loop_body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, ["N", D])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, ["N", D])],
        initializer=[numpy_helper.from_array(w, "loop_fc.weight"), numpy_helper.from_array(b, "loop_fc.bias")])
    g = helper.make_graph(
        [helper.make_node("Loop", ["trip_count", "", "input"], ["output"], body=body, name="recur")],
        "loop_matmul",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", D]),
         helper.make_tensor_value_info("trip_count", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", D])])
    path = finish(g, "subgraph_loop_matmul")
    total = D * D + D  # 272
    counts = dict(
        framework=FW, exporter="onnx.helper", opset=OPSET,
        params=total, trainable=total, bn_buffers=0,
        params_breakdown={"Loop.body: loop_fc.weight [16,16] + loop_fc.bias [16]": total},
        notes=("Counts by hand: 16*16 + 16 = 272, stored once in the Loop body and reused every iteration "
               "(trip_count is a runtime input; cond input omitted). NOT flagged: MatMul on a [N,16] state."),
        flagged_weights=[], flagged_shapes={},
        example_input_shapes={"input": [2, D], "trip_count": []},
    )
    return path, counts


# --------------------------------------------------------------------------
def scan_rnn():
    rng = np.random.default_rng(2)
    I, Hd = 8, 16
    wx = rnd(rng, I, Hd)
    wh = rnd(rng, Hd, Hd)
    b = rnd(rng, Hd)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x_t", "cell.w_x"], ["a"]),
         helper.make_node("MatMul", ["h_prev", "cell.w_h"], ["c"]),
         helper.make_node("Add", ["a", "c"], ["s"]),
         helper.make_node("Add", ["s", "cell.bias"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_next"]),
         helper.make_node("Identity", ["h_next"], ["y_t"])],
        "scan_body",
        [helper.make_tensor_value_info("h_prev", TensorProto.FLOAT, ["N", Hd]),
         helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["N", I])],
        [helper.make_tensor_value_info("h_next", TensorProto.FLOAT, ["N", Hd]),
         helper.make_tensor_value_info("y_t", TensorProto.FLOAT, ["N", Hd])],
        initializer=[numpy_helper.from_array(wx, "cell.w_x"), numpy_helper.from_array(wh, "cell.w_h"),
                     numpy_helper.from_array(b, "cell.bias")])
    g = helper.make_graph(
        [helper.make_node("Scan", ["h0", "input"], ["h_last", "output"], body=body, num_scan_inputs=1,
                          name="rnn")],
        "scan_rnn",
        [helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["N", Hd]),
         helper.make_tensor_value_info("input", TensorProto.FLOAT, ["L", "N", I])],
        [helper.make_tensor_value_info("h_last", TensorProto.FLOAT, ["N", Hd]),
         helper.make_tensor_value_info("output", TensorProto.FLOAT, ["L", "N", Hd])])
    path = finish(g, "subgraph_scan_weight")
    total = I * Hd + Hd * Hd + Hd  # 128 + 256 + 16 = 400
    counts = dict(
        framework=FW, exporter="onnx.helper", opset=OPSET,
        params=total, trainable=total, bn_buffers=0,
        params_breakdown={"Scan.body: cell.w_x [8,16]": I * Hd, "cell.w_h [16,16]": Hd * Hd,
                          "cell.bias [16]": Hd},
        notes="Counts by hand: 8*16 + 16*16 + 16 = 400, all initializers of the Scan body. NOT flagged.",
        flagged_weights=[], flagged_shapes={},
        example_input_shapes={"h0": [2, Hd], "input": [5, 2, I]},
    )
    return path, counts


# --------------------------------------------------------------------------
def function_twice():
    rng = np.random.default_rng(3)
    D = 8
    w = rnd(rng, D, D)
    b = rnd(rng, D)
    fn = helper.make_function(
        "local.fn", "Dense8", ["x"], ["y"],
        [helper.make_node("Constant", [], ["W"], value=numpy_helper.from_array(w, "Dense8.W")),
         helper.make_node("Constant", [], ["B"], value=numpy_helper.from_array(b, "Dense8.B")),
         helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)],
        opset_imports=[helper.make_opsetid("", OPSET)])
    g = helper.make_graph(
        [helper.make_node("Dense8", ["input"], ["h1"], domain="local.fn", name="call_1"),
         helper.make_node("Relu", ["h1"], ["a1"]),
         helper.make_node("Dense8", ["a1"], ["output"], domain="local.fn", name="call_2")],
        "function_twice",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", D])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", D])])
    path = finish(g, "function_gemm_twice", functions=[fn], extra_opsets=[("local.fn", 1)])
    total = D * D + D  # 72
    counts = dict(
        framework=FW, exporter="onnx.helper", opset=OPSET,
        params=total, trainable=total, bn_buffers=0,
        params_if_inlined=2 * total,
        params_breakdown={"FunctionProto local.fn::Dense8: Constant W [8,8] + Constant B [8]": total},
        notes=("Counts by hand: 8*8 + 8 = 72 values stored once inside the model-local function (as Constant "
               "nodes, not initializers); the function is called twice, so an inlining counter would see 144. "
               "The main graph has NO initializers. NOT flagged."),
        flagged_weights=[], flagged_shapes={},
        example_input_shapes={"input": [2, D]},
    )
    return path, counts


def main() -> int:
    for build in (if_gemm, loop_matmul, scan_rnn, function_twice):
        path, counts = build()
        name = os.path.basename(path)[:-5]
        feed_shapes = counts["example_input_shapes"]
        write_json(out_path(name + ".counts.json"), counts)
        v = verify(path, shapes=feed_shapes, int_high=4)
        print(f"OK   {name}.onnx: params={counts['params']} checker={v['checker']} ort={v['onnxruntime']} "
              f"out={v.get('output_shapes')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
