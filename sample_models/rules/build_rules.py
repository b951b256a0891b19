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


WEIGHTS_RNG = np.random.default_rng(20)
"""The ONX20x samples draw from their own generator: the ones above stay byte-identical."""


def weights(*shape: int) -> np.ndarray:
    """Values in [0.5, 1.5) with random signs: nothing zero, nothing near float16's limits."""
    values = WEIGHTS_RNG.uniform(0.5, 1.5, size=shape) * WEIGHTS_RNG.choice([-1.0, 1.0], shape)
    return values.astype(np.float32)


def dense(
    name: str, arrays: dict[str, np.ndarray], trans_b: tuple[str, ...] = ()
) -> onnx.ModelProto:
    """x[N, K] -> one MatMul per weight (a Gemm with transB for those in `trans_b`): y0, y1..."""
    nodes, outputs = [], []
    for i, (tensor, array) in enumerate(arrays.items()):
        if tensor in trans_b:
            nodes.append(helper.make_node("Gemm", ["x", tensor], [f"y{i}"], f"gemm{i}", transB=1))
            units = array.shape[0]
        else:
            nodes.append(helper.make_node("MatMul", ["x", tensor], [f"y{i}"], f"dense{i}"))
            units = array.shape[1]
        outputs.append(vi(f"y{i}", "N", units))
    first, array = next(iter(arrays.items()))
    k = array.shape[1 if first in trans_b else 0]
    inits = [numpy_helper.from_array(a, t) for t, a in arrays.items()]
    return model(name, nodes, [vi("x", "N", k)], outputs, inits)


def onx201() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """MatMul 32 -> 16 with one NaN and one -Inf in its weight; the good one all finite."""
    bad = weights(32, 16)
    bad[3, 5], bad[7, 0] = np.nan, -np.inf
    return dense("onx201_bad", {"w": bad}), dense("onx201_good", {"w": weights(32, 16)})


def onx202() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Conv 3x3 4 -> 8 with output channels 1 and 6 all zero; the good one has a zero bias
    (normal) and a MatMul weight with zero rows (its inputs, not its outputs)."""
    kernel = weights(8, 4, 3, 3)
    kernel[[1, 6]] = 0.0
    bias = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    x, y = vi("x", "N", 4, 8, 8), vi("conv", "N", 8, 8, 8)
    bad = model("onx202_bad", [conv("conv", "x", "k", "b", kernel_shape=[3, 3], pads=[1] * 4)],
                [x], [y], [numpy_helper.from_array(kernel, "k"), bias])  # fmt: skip
    rows = weights(32, 16)
    rows[[0, 4]] = 0.0
    good = dense("onx202_good", {"w": rows})
    good.graph.node.insert(0, conv("conv", "img", "k", "b", kernel_shape=[3, 3], pads=[1] * 4))
    good.graph.input.append(vi("img", "N", 4, 8, 8))
    good.graph.output.append(vi("conv", "N", 8, 8, 8))
    good.graph.initializer.extend([numpy_helper.from_array(weights(8, 4, 3, 3), "k"), bias])
    onnx.checker.check_model(good, full_check=True)
    return bad, good


def onx203() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """Three dense layers on one [32, 16] weight: 'copy' byte for byte, 'flipped' transposed
    (a Gemm with transB); the good one: different weights, and 64-byte identical biases (under
    the 1 KB floor)."""
    a = weights(32, 16)
    arrays = {"a": a, "copy": a.copy(), "flipped": np.ascontiguousarray(a.T)}
    bad = dense("onx203_bad", arrays, trans_b=("flipped",))
    good = dense("onx203_good", {"a": weights(32, 16), "b": weights(32, 16)})
    for i, node in enumerate(good.graph.node):
        node.op_type, node.input[:] = "Gemm", [*node.input, f"bias{i}"]
        good.graph.initializer.append(numpy_helper.from_array(np.ones(16, np.float32), f"bias{i}"))
    onnx.checker.check_model(good, full_check=True)
    return bad, good


def onx204() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """A float32 weight with one value of 100,000 (> 65,504); the good one's largest is 60,000
    and 2 of its 512 values (0.4%, under 1%) are below float16's smallest normal."""
    bad = weights(32, 16)
    bad[10, 10] = 1e5
    good = weights(32, 16)
    good[0, 0], good[1, 1], good[2, 2] = 6e4, 1e-6, -1e-6
    return dense("onx204_bad", {"w": bad}), dense("onx204_good", {"w": good})


def onx205() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """MatMul 200 -> 100 with 18,000 of its 20,000 weights zero (90%), no output column all
    zero; the good one 40% zero."""

    def sparse(zeros: int) -> np.ndarray:
        w = weights(200, 100)
        w.reshape(-1)[WEIGHTS_RNG.permutation(w.size)[:zeros]] = 0.0
        assert not (w == 0).all(axis=0).any()
        return w

    return dense("onx205_bad", {"w": sparse(18_000)}), dense("onx205_good", {"w": sparse(8_000)})


def main() -> None:
    samples = {
        "ONX102": (onx102_bad(), onx102_good()),
        "ONX103": (_lm("onx103_bad", tied=False), _lm("onx103_good", tied=True)),
        "ONX104": (onx104_bad(), onx104_good()),
        "ONX201": onx201(),
        "ONX202": onx202(),
        "ONX203": onx203(),
        "ONX204": onx204(),
        "ONX205": onx205(),
    }
    for code, (bad, good) in samples.items():
        (HERE / code).mkdir(exist_ok=True)
        onnx.save_model(bad, HERE / code / "bad.onnx")
        onnx.save_model(good, HERE / code / "good.onnx")
    print(f"wrote {2 * len(samples)} models under {HERE}")


if __name__ == "__main__":
    main()
