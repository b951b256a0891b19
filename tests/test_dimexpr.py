"""Dim names that are formulas, evaluated once --input-shape fixes the names they use."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.view import dimexpr


@pytest.mark.parametrize(
    ("text", "sizes", "expected"),
    [
        ("(((s53 - 1)//2)) + 1", {"s53": 20}, (20 - 1) // 2 + 1),  # torch dynamo's conv length
        ("floor(height/2 - 1/2) + 1", {"height": 7}, 4),  # sympy's stride-2 conv: 3.5 - .5 + 1
        ("Min(128, s70)", {"s70": 12}, 12),
        ("Max(1, s0*3)", {"s0": 5}, 15),
        ("ceil(h/4)", {"h": 9}, 3),
        ("b", {"b": 2}, 2),
        ("(s0 % 7) + s0", {"s0": 10}, 13),
    ],
)
def test_formulas_evaluate_exactly(text: str, sizes: dict[str, int], expected: int) -> None:
    assert dimexpr.evaluate(text, sizes) == expected


@pytest.mark.parametrize(
    "text",
    ["unk__3", "s0 + t", "__import__('os')", "s0.real", "s0 ** 2", "1/2 * s0 + 1/3", "x" * 500],
)
def test_anything_else_is_left_alone(text: str) -> None:
    assert dimexpr.evaluate(text, {"s0": 4}) is None


def test_names_lists_the_dims_a_formula_uses() -> None:
    assert dimexpr.names("floor(height/2 - 1/2) + Min(width, 3)") == {"height", "width"}


def test_declared_formulas_follow_the_fixed_input(audit) -> None:
    """The file declares the MatMul's input as [b, (((t - 1)//2)) + 1, 16] (a stride-2 op's
    length, as torch's dynamo writes it) after an op onnx cannot infer: with x=2,21,16 it is
    [2, 11, 16], so the MatMul costs 2 x 11 x 16 x 16 MACs, not a formula in b and t."""
    length = "(((t - 1)//2)) + 1"
    nodes = [
        helper.make_node("Downsample", ["x"], ["h"], domain="custom.ops"),
        helper.make_node("MatMul", ["h", "w"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((16, 16), np.float32), "w")]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", length, 16])],
        initializer=inits,
        value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, ["b", length, 16])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    report = audit(model, input_shapes={"x": (2, 21, 16)})
    assert report.totals.macs.value == 2 * 11 * 16 * 16
    unfixed = audit(model)
    assert unfixed.totals.macs.value is None
