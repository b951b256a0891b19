"""Reshape targets computed from shapes (torch's TorchScript attention split) are folded, so the
attention MatMuls keep exact MACs."""

from __future__ import annotations

import numpy as np
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
