"""Shape inference runs data propagation only where it can learn something."""

from __future__ import annotations

import os

import onnx
import pytest
from onnx import parser

from analyzer.read import loader
from analyzer.read.functions import inline_local_functions
from analyzer.read.order import sort_graphs
from analyzer.view import shapes
from analyzer.view.graph import build
from analyzer.view.shapetable import graph_walk, shape_table
from tests.conftest import SAMPLES


def _model(body: str, inputs: str = "float[2,6] x") -> onnx.ModelProto:
    return parser.parse_model(
        f'<ir_version: 8, opset_import: ["" : 17]>\ng ({inputs}) => (float o) {{\n{body}\n}}'
    )


def _dims(model: onnx.ModelProto, name: str) -> tuple[int | str, ...] | None:
    """The inferred shape of `name`, as the inferring child hands it over."""
    table, _ = shapes.infer(model)
    assert table is not None
    found = {value[0]: value[1] for value in table[0]}
    return found[name]


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
    assert _dims(model, "b") == (2, 6)


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
    assert _dims(model, "z") == (3, 4)
    assert _dims(model, "w") == (2, 6)


def test_a_constant_read_directly_needs_no_propagation() -> None:
    model = _model(
        """
        s = Constant<value = int64[2] {3, 4}>()
        z = Reshape(x, s)
        o = ReduceSum(z)
        """
    )
    assert not shapes._propagates(model)
    assert _dims(model, "z") == (3, 4)


@pytest.mark.parametrize("path", sorted(SAMPLES.rglob("*.onnx")), ids=lambda p: p.name)
def test_the_shape_table_lands_on_the_graphs_it_came_from(path) -> None:
    """The child's table (graph_walk order) gives the view the same shapes as reading the
    inferred graphs in build's own order, subgraphs (If/Loop/Scan) included."""
    model = loader.load(path)
    inline_local_functions(model)
    sort_graphs(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    table = shape_table(inferred)
    assert len(table) == len(graph_walk(model))
    assert build(model, lambda: table).shapes == build(inferred).shapes


def test_a_node_on_a_weight_matrix_starts_no_propagation() -> None:
    """Data propagation carries 0-D and 1-D values only: Transpose of a tied embedding table."""
    model = _model(
        """
        t = Transpose(w)
        o = MatMul(x, t)
        """,
        "float[2,6] x, float[4,6] w",
    )
    model.graph.initializer.append(
        onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, [4, 6], [0.5] * 24)
    )
    del model.graph.input[1:]
    assert not shapes._propagates(model)
    model.graph.node[0].CopyFrom(onnx.helper.make_node("Cast", ["v"], ["t"], to=7))
    model.graph.initializer.append(
        onnx.helper.make_tensor("v", onnx.TensorProto.FLOAT, [2], [1, 2])
    )
    assert shapes._propagates(model)


def test_closing_an_unread_inference_reaps_its_child() -> None:
    """The view build can fail after inference started: close() must leave no process."""
    model = _model("o = ReduceSum(x)")
    inference = shapes.Inference(model)
    assert inference.child is not None
    pid = inference.child.pid
    inference.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert inference.result()[0] is None  # read after close: no table, and no hang


def test_a_constant_expression_inside_a_subgraph_propagates() -> None:
    """Outer-scope constants count: Cast of an outer initializer inside an If branch."""
    model = _model(
        """
        c = Constant<value = bool {1}>()
        o = If(c) <then_branch = g1 () => (float t) { s = Cast<to = 7>(v) t = Reshape(x, s) },
                   else_branch = g2 () => (float e) { e = Identity(x) }>
        """,
        "float[2,6] x",
    )
    model.graph.initializer.append(
        onnx.helper.make_tensor("v", onnx.TensorProto.FLOAT, [2], [3, 4])
    )
    assert shapes._propagates(model)


@pytest.mark.parametrize(
    ("declared", "macs"),
    [("Reluy_dim_0", "32·N"), ("batch_dim_0", "32·batch_dim_0")],
)
def test_exporter_made_dim_names_give_way_to_inferred_ones(tmp_path, declared, macs) -> None:
    """TorchScript names a dim it could not name `<Op><value>_dim_<k>`; onnx keeps a declared
    name over its own, so such names are cleared and inference names the dim (`N`). A name
    someone chose (`batch_dim_0`: no producer prefix) stays."""
    from onnx import TensorProto, helper

    from analyzer import analyze

    nodes = [
        helper.make_node("Relu", ["x"], ["y"], "relu"),
        helper.make_node("MatMul", ["y", "w"], ["out"], "mm"),
    ]
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 4], [0.5] * 32)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["MatMulout_dim_0", 4])],
        [w],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [declared, 8])],
    )
    path = tmp_path / "m.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    layers = {layer.name: layer for layer in analyze(path).layers}
    assert str(layers["mm"].macs) == macs  # 8 * 4 per row
