"""Shared helpers for the sample-model export scripts.

Nothing here counts parameters from an ONNX file: parameter counts always come
from the framework (or, for hand-built graphs, from hand arithmetic written in
the export script).  The ONNX file is only read to *look up the name* of the
initializer that holds a weight we already decided (from the architecture) is
a dense layer applied to a flattened spatial tensor.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def out_path(name: str) -> str:
    return os.path.join(HERE, name)


def write_json(path: str, obj: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")


def _graph_tensors(graph) -> Iterable[tuple]:
    """Yield (name, ndarray) for initializers and Constant-node values in a
    graph and all of its subgraphs (read-only lookup helper)."""
    from onnx import numpy_helper, AttributeProto

    for init in graph.initializer:
        yield init.name, numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == AttributeProto.TENSOR:
                    yield node.output[0], numpy_helper.to_array(attr.t)
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _graph_tensors(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graph_tensors(g)


def find_tensor_names(model, weight: np.ndarray) -> List[str]:
    """Names of initializers / Constant outputs whose values equal `weight`
    or its transpose (exporters sometimes store W^T for MatMul)."""
    weight = np.asarray(weight)
    hits: List[str] = []
    for name, arr in _graph_tensors(model.graph):
        if arr.shape == weight.shape and np.array_equal(arr, weight):
            hits.append(name)
        elif weight.ndim == 2 and arr.shape == weight.T.shape and np.array_equal(arr, weight.T):
            hits.append(name)
    return hits


def onnx_summary(model) -> Dict[str, Any]:
    """Small descriptive summary (op histogram, opsets) for the manifest/README.
    Not a parameter count."""
    from collections import Counter

    ops: Counter = Counter()

    def walk(g):
        for n in g.node:
            ops[(n.domain or "ai.onnx") + "::" + n.op_type if n.domain else n.op_type] += 1
            for a in n.attribute:
                if a.g is not None and a.type == 5:
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)

    walk(model.graph)
    for f in model.functions:
        for n in f.node:
            ops["(fn)" + n.op_type] += 1
    return {
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ops": dict(sorted(ops.items())),
        "n_initializers": len(model.graph.initializer),
    }


_NP_OF_ONNX = {
    1: np.float32,
    10: np.float16,
    11: np.float64,
    7: np.int64,
    6: np.int32,
    9: np.bool_,
    2: np.uint8,
    3: np.int8,
}


def make_random_feed(model, shapes: Optional[Dict[str, List[int]]] = None, seed: int = 0,
                     int_high: int = 10) -> Dict[str, np.ndarray]:
    """Random input feed. Symbolic dims are taken from `shapes` (explicit) or set to 2."""
    rng = np.random.default_rng(seed)
    init_names = {i.name for i in model.graph.initializer}
    feed = {}
    for inp in model.graph.input:
        if inp.name in init_names:
            continue
        tt = inp.type.tensor_type
        dtype = _NP_OF_ONNX[tt.elem_type]
        if shapes and inp.name in shapes:
            shape = list(shapes[inp.name])
        else:
            shape = [d.dim_value if d.HasField("dim_value") else 2 for d in tt.shape.dim]
        if np.issubdtype(dtype, np.integer):
            feed[inp.name] = rng.integers(0, int_high, size=shape).astype(dtype)
        elif dtype == np.bool_:
            feed[inp.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            feed[inp.name] = rng.standard_normal(shape).astype(dtype)
    return feed


def verify(path: str, shapes: Optional[Dict[str, List[int]]] = None, int_high: int = 10,
           full_check: bool = True) -> Dict[str, Any]:
    """onnx.checker.check_model + one onnxruntime CPU run with random input."""
    import onnx
    import onnxruntime as ort

    res: Dict[str, Any] = {"checker": None, "onnxruntime": None}
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=full_check)
        res["checker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        res["checker"] = "FAIL: " + str(exc).splitlines()[0][:300]
    try:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = make_random_feed(model, shapes, int_high=int_high)
        outs = sess.run(None, feed)
        res["onnxruntime"] = "ok"
        res["input_shapes"] = {k: list(v.shape) for k, v in feed.items()}
        res["output_shapes"] = [list(np.asarray(o).shape) for o in outs]
    except Exception as exc:  # noqa: BLE001
        res["onnxruntime"] = "FAIL: " + str(exc).splitlines()[0][:300]
    return res
