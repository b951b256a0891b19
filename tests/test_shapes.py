"""Shape inference runs data propagation only where it can learn something."""

from __future__ import annotations

import onnx
from onnx import parser

from analyzer import shapes


def _model(body: str, inputs: str = "float[2,6] x") -> onnx.ModelProto:
    return parser.parse_model(
        f'<ir_version: 8, opset_import: ["" : 17]>\ng ({inputs}) => (float o) {{\n{body}\n}}'
    )


def _dims(model: onnx.ModelProto, name: str) -> list[int | str]:
    for value in model.graph.value_info:
        if value.name == name:
            return [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
    raise AssertionError(f"no shape for {name}")


def test_a_chain_on_weights_has_nothing_to_propagate() -> None:
    model = _model(
        """
        a = Add(x, w)
        b = Mul(a, v)
        o = ReduceSum(b)
        """,
        "float[2,6] x, float[6] w, float[6] v",
    )
    model.graph.initializer.extend(
        [onnx.helper.make_tensor(n, onnx.TensorProto.FLOAT, [6], [1.0] * 6) for n in "wv"]
    )
    del model.graph.input[1:]
    assert not shapes._propagates(model)
    inferred, _ = shapes.infer(model)
    assert _dims(inferred, "b") == [2, 6]


def test_constant_expressions_and_shapes_still_propagate() -> None:
    """Cast of a Constant and Shape of an input: only data propagation turns them into dims."""
    model = _model(
        """
        s = Constant<value = int64[2] {3, 4}>()
        c = Cast<to = 7>(s)
        z = Reshape(x, c)
        sh = Shape(x)
        w = Reshape(x, sh)
        o = ReduceSum(z)
        """
    )
    assert shapes._propagates(model)
    inferred, _ = shapes.infer(model)
    assert _dims(inferred, "z") == [3, 4]
    assert _dims(inferred, "w") == [2, 6]


def test_a_constant_read_directly_needs_no_propagation() -> None:
    model = _model(
        """
        s = Constant<value = int64[2] {3, 4}>()
        z = Reshape(x, s)
        o = ReduceSum(z)
        """
    )
    assert not shapes._propagates(model)
    inferred, _ = shapes.infer(model)
    assert _dims(inferred, "z") == [3, 4]
