"""Layers are listed in the file's node order; only an unsorted file is sorted, with a warning,
and then the earliest ready node in file order goes first."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from analyzer import analyze


def _model(order: list[int]) -> onnx.ModelProto:
    """x -> m0 -> three-step branch under /model.21 and one step under /model.22 -> add."""

    def mm(name: str, i: str, o: str, w: str) -> onnx.NodeProto:
        return helper.make_node("MatMul", [i, w], [o], name=name)

    nodes = [
        mm("m0", "x", "h", "w0"),
        mm("/model.21/a1", "h", "a1", "w1"),
        mm("/model.21/a2", "a1", "a2", "w2"),
        mm("/model.21/a3", "a2", "a3", "w3"),
        mm("/model.22/b1", "h", "b1", "w4"),
        helper.make_node("Add", ["a3", "b1"], ["y"], name="add"),
    ]
    inits = [numpy_helper.from_array(np.ones((4, 4), np.float32), f"w{i}") for i in range(5)]
    graph = helper.make_graph(
        [nodes[i] for i in order],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_a_sorted_file_keeps_its_order(tmp_path) -> None:
    """A breadth-first sort would put /model.22/b1 second; the file has it last."""
    path = tmp_path / "m.onnx"
    onnx.save(_model([0, 1, 2, 3, 4, 5]), path)
    report = analyze(path)
    names = [layer.name for layer in report.layers]
    assert names == ["m0", "/model.21/a1", "/model.21/a2", "/model.21/a3", "/model.22/b1"]
    assert not any("topological" in w for w in report.warnings)


def test_an_unsorted_file_is_sorted_with_a_warning(tmp_path) -> None:
    """b1 comes first in the file but needs m0: m0 moves up, the rest keeps file order."""
    path = tmp_path / "m.onnx"
    onnx.save(_model([4, 1, 0, 2, 3, 5]), path)
    report = analyze(path)
    names = [layer.name for layer in report.layers]
    assert names == ["m0", "/model.22/b1", "/model.21/a1", "/model.21/a2", "/model.21/a3"]
    assert any("not in topological order" in w for w in report.warnings)
