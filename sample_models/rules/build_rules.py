"""Regenerate each rule's two samples, sample_models/rules/<CODE>/{bad,good}.onnx (seeded).

    python sample_models/rules/build_rules.py

ONX101's are copies of seed_mlp / seed_cnn (sample_models/build_small.py writes them). The
expected numbers are hand arithmetic in tests/test_rules.py, next to the one-line harness.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
RNG = np.random.default_rng(0)
F = TensorProto.FLOAT


def init(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * 0.1).astype(np.float32), name)


def vi(name: str, *shape: int | str, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


def model(name: str, nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17)]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="build_rules.py")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def conv(name: str, x: str, w: str, b: str | None, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w, *([b] if b else [])], [name], name=name, **attrs)


def onx102_bad() -> onnx.ModelProto:
    """x[N,64,8,8] -> Conv 3x3 64 -> 64 (group 1, same padding)."""
    nodes = [conv("conv", "x", "w", "b", kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    inits = [init("w", 64, 64, 3, 3), init("b", 64)]
    return model("onx102_bad", nodes, [vi("x", "N", 64, 8, 8)], [vi("conv", "N", 64, 8, 8)], inits)


def onx102_good() -> onnx.ModelProto:
    """A stem conv on RGB (3 channels), then MobileNet's pair: depthwise 3x3, pointwise 1x1."""
    nodes = [
        conv("stem", "x", "w0", "b0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        conv("dw", "stem", "w1", "b1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=32),
        conv("pw", "dw", "w2", "b2", kernel_shape=[1, 1]),
    ]
    inits = [init("w0", 32, 3, 3, 3), init("b0", 32), init("w1", 32, 1, 3, 3), init("b1", 32)]
    inits += [init("w2", 64, 32, 1, 1), init("b2", 64)]
    return model("onx102_good", nodes, [vi("x", "N", 3, 8, 8)], [vi("pw", "N", 64, 8, 8)], inits)


def _lm(name: str, tied: bool) -> onnx.ModelProto:
    """tokens[N,T] -> Gather(table[1000,16]) -> MatMul(head) -> logits[N,T,1000]."""
    nodes = [helper.make_node("Gather", ["table", "tokens"], ["h"], name="embed")]
    inits = [init("table", 1000, 16)]
    if tied:
        nodes.append(helper.make_node("Transpose", ["table"], ["head"], name="t", perm=[1, 0]))
    else:
        inits.append(init("head", 16, 1000))
    nodes.append(helper.make_node("MatMul", ["h", "head"], ["logits"], name="lm_head"))
    inputs = [vi("tokens", "N", "T", elem=TensorProto.INT64)]
    return model(name, nodes, inputs, [vi("logits", "N", "T", 1000)], inits)


def onx104_bad() -> onnx.ModelProto:
    """x[N,256] -> Gemm 256 -> 512 -> Relu -> Gemm 512 -> 10."""
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    inits = [init("w1", 512, 256), init("b1", 512), init("w2", 10, 512), init("b2", 10)]
    return model("onx104_bad", nodes, [vi("x", "N", 256)], [vi("y", "N", 10)], inits)


def onx104_good() -> onnx.ModelProto:
    """x[N,64] -> three Gemm 64 -> 64: each a third of the parameters."""
    nodes, inits, prev = [], [], "x"
    for i in range(3):
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"y{i}"], name=f"fc{i}"))
        inits += [init(f"w{i}", 64, 64), init(f"b{i}", 64)]
        prev = f"y{i}"
    return model("onx104_good", nodes, [vi("x", "N", 64)], [vi(prev, "N", 64)], inits)


def main() -> None:
    samples = {
        "ONX102": (onx102_bad(), onx102_good()),
        "ONX103": (_lm("onx103_bad", tied=False), _lm("onx103_good", tied=True)),
        "ONX104": (onx104_bad(), onx104_good()),
    }
    for code, (bad, good) in samples.items():
        (HERE / code).mkdir(exist_ok=True)
        onnx.save_model(bad, HERE / code / "bad.onnx")
        onnx.save_model(good, HERE / code / "good.onnx")
    print(f"wrote {2 * len(samples)} models under {HERE}")


if __name__ == "__main__":
    main()
