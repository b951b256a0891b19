"""Reshape targets computed from shapes (torch's TorchScript attention split) are folded, so the
attention MatMuls keep exact MACs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _attention_split() -> object:
    """x [b, t, 64] -> Reshape to [b, t, 4, Cast(64 / 4)] with every piece read by Shape, as
    torch.onnx.export(dynamo=False) writes it; then q @ k^T per head: [b, 4, t, 16] x
    [b, 4, 16, t]."""
    ints = {"i0": 0, "i1": 1, "i2": 2, "heads": 4, "axis": [0]}
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in ints.items()] + [
        numpy_helper.from_array(np.array([4], np.int64), "heads1")
    ]
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["b"]),
        helper.make_node("Gather", ["s", "i1"], ["t"]),
        helper.make_node("Gather", ["s", "i2"], ["d"]),
        helper.make_node("Div", ["d", "heads"], ["hd"]),
        helper.make_node("Cast", ["hd"], ["hd64"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["b", "axis"], ["b1"]),
        helper.make_node("Unsqueeze", ["t", "axis"], ["t1"]),
        helper.make_node("Unsqueeze", ["hd64", "axis"], ["hd1"]),
        helper.make_node("Concat", ["b1", "t1", "heads1", "hd1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["split"]),
        helper.make_node("Transpose", ["split"], ["q"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["split"], ["k"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["q", "k"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_attention_scores_have_exact_macs_at_a_fixed_shape(audit) -> None:
    report = audit(_attention_split(), input_shapes={"x": (2, 7, 64)})
    assert report.totals.macs.value == 2 * 4 * 7 * 7 * 16


def test_attention_scores_are_a_formula_in_the_input_dims(audit) -> None:
    (layer,) = [layer for layer in audit(_attention_split()).layers if layer.op_type == "MatMul"]
    assert layer.output_shapes[0] == ("b", 4, "t", "t")
    assert "unk" not in str(layer.macs)


def test_range_lengths() -> None:
    from analyzer.view.shapefold import _range_length

    # numpy.arange agrees: len(range(0, 10, 3)) = 4, len(range(5, 1, -2)) = 2, empty when past
    assert _range_length(0, 10, 3) == len(range(0, 10, 3)) == 4
    assert _range_length(5, 1, -2) == len(range(5, 1, -2)) == 2
    assert _range_length(3, 1, 1) == 0
    assert _range_length(0, "seq", 1) == "seq"  # position ids: Range(0, Shape(x)[1], 1)
    assert _range_length(1, "seq", 1) is None and _range_length(0, "seq", 2) is None


@pytest.mark.parametrize(
    ("dtype", "rows"),
    [(TensorProto.INT64, "T"), (TensorProto.INT32, "T"), (TensorProto.FLOAT, "unk__0")],
)
def test_position_range_is_named_after_the_input_dim(tmp_path, dtype, rows) -> None:
    """x [N, T] -> Range(0, Shape(x)[1], 1) -> Unsqueeze -> Gather rows of a [64, 8] table: the
    rows come out [1, T, 8] (onnx alone says [1, unk, 8]). A float Range (shape arithmetic is
    followed in integers only) is left to onnx, and inference still runs."""
    from analyzer import analyze

    one = numpy_helper.from_array(np.array(1, dtype=helper.tensor_dtype_to_np_dtype(dtype)), "one")
    zero = numpy_helper.from_array(
        np.array(0, dtype=helper.tensor_dtype_to_np_dtype(dtype)), "zero"
    )
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "axis1"], ["t"], axis=0),
        helper.make_node("Cast", ["t"], ["limit"], to=dtype),
        helper.make_node("Range", ["zero", "limit", "one"], ["pos"]),
        helper.make_node("Cast", ["pos"], ["ids"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["ids", "axis0"], ["ids2"]),
        helper.make_node("Gather", ["table", "ids2"], ["rows"], "lookup"),
    ]
    table = numpy_helper.from_array(np.ones((64, 8), np.float32), "table")
    ints = [numpy_helper.from_array(np.array(v, np.int64), n) for v, n in ((1, "axis1"),)]
    ints.append(numpy_helper.from_array(np.array([0], np.int64), "axis0"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T"])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, None)],
        [table, one, zero, *ints],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    report = analyze(path)
    assert not [w for w in report.warnings if "shape inference" in w]
    (lookup,) = [layer for layer in report.layers if layer.name == "lookup"]
    assert lookup.output_shapes == ((1, rows, 8),)
