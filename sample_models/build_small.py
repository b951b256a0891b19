"""Regenerate the small hand-built sample models (deterministic: seeded weights, fixed names).

    python sample_models/build_small.py

Each model's expected counts are written in tests/test_samples.py by hand arithmetic.
The other rules' samples come from sample_models/rules/build_rules.py.
Models from real exporters live in sample_models/exported/ (their own scripts).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
OPSET = [helper.make_opsetid("", 17)]
RNG = np.random.default_rng(0)
F = TensorProto.FLOAT


def init(name: str, *shape: int, dtype: type = np.float32) -> onnx.TensorProto:
    data = RNG.standard_normal(shape).astype(dtype) * 0.1 if shape else np.array(0.1, dtype)
    return numpy_helper.from_array(np.asarray(data, dtype=dtype), name)


def const(name: str, values: list[int] | list[float], dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def model(name: str, nodes, inputs, outputs, inits, opsets=OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=opsets, producer_name="onnx-audit build_small.py")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def vi(name: str, *shape: int | str, elem: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


def seed_mlp() -> onnx.ModelProto:
    """DESIGN.md's seed: Flatten a 1x10x10 image into a 32-unit dense layer (3,200 + 32)."""
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "dense.weight", "dense.bias"], ["logits"], name="dense", transB=1),
    ]
    inits = [init("dense.weight", 32, 100), init("dense.bias", 32)]
    return model("seed_mlp", nodes, [vi("image", "N", 1, 10, 10)], [vi("logits", "N", 32)], inits)


def seed_cnn() -> onnx.ModelProto:
    """The seed's alternative: 32 3x3 filters (288 + 32), pooled to the same [N, 32]."""
    nodes = [
        helper.make_node(
            "Conv", ["image", "conv.weight", "conv.bias"], ["fmap"], name="conv", pads=[1, 1, 1, 1]
        ),
        helper.make_node("GlobalAveragePool", ["fmap"], ["pooled"], name="gap"),
        helper.make_node("Flatten", ["pooled"], ["logits"], name="flatten"),
    ]
    inits = [init("conv.weight", 32, 1, 3, 3), init("conv.bias", 32)]
    return model("seed_cnn", nodes, [vi("image", "N", 1, 10, 10)], [vi("logits", "N", 32)], inits)


def lenet() -> onnx.ModelProto:
    """LeNet-5: two conv/pool stages, Flatten (16x5x5) -> 120 -> 84 -> 10."""
    nodes = [
        helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], name="conv1", kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "c2.w", "c2.b"], ["c2"], name="conv2", kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "f1.w", "f1.b"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu3"),
        helper.make_node("Gemm", ["a1", "f2.w", "f2.b"], ["h2"], name="fc2", transB=1),
        helper.make_node("Relu", ["h2"], ["a2"], name="relu4"),
        helper.make_node("Gemm", ["a2", "f3.w", "f3.b"], ["y"], name="fc3", transB=1),
    ]
    inits = [
        init("c1.w", 6, 1, 5, 5), init("c1.b", 6), init("c2.w", 16, 6, 5, 5), init("c2.b", 16),
        init("f1.w", 120, 400), init("f1.b", 120), init("f2.w", 84, 120), init("f2.b", 84),
        init("f3.w", 10, 84), init("f3.b", 10),
    ]  # fmt: skip
    return model("lenet5", nodes, [vi("x", 1, 1, 32, 32)], [vi("y", 1, 10)], inits)


def gap_cnn() -> onnx.ModelProto:
    """A CNN whose head follows global average pooling: one position, never flagged."""
    nodes = [
        helper.make_node("Conv", ["x", "c1.w", "c1.b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "c2.w", "c2.b"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
    ]
    inits = [init("c1.w", 8, 3, 3, 3), init("c1.b", 8), init("c2.w", 16, 8, 3, 3), init("c2.b", 16)]
    inits += [init("fc.w", 10, 16), init("fc.b", 10)]
    return model("gap_cnn", nodes, [vi("x", "N", 3, 16, 16)], [vi("y", "N", 10)], inits)


def transformer() -> onnx.ModelProto:
    """Embedding + learned positions, one attention head, MLP; MatMuls over [N, T, D]."""
    d, t, v, h = 16, 8, 50, 32
    nodes = [
        helper.make_node("Gather", ["tok.emb", "ids"], ["e"], name="embed"),
        helper.make_node("Add", ["e", "pos.emb"], ["x0"], name="add_pos"),
        helper.make_node("LayerNormalization", ["x0", "ln1.g", "ln1.b"], ["x1"], name="ln1", axis=-1),
        helper.make_node("MatMul", ["x1", "q.w"], ["q0"], name="q_proj"),
        helper.make_node("Add", ["q0", "q.b"], ["q"], name="q_bias"),
        helper.make_node("MatMul", ["x1", "k.w"], ["k0"], name="k_proj"),
        helper.make_node("Add", ["k0", "k.b"], ["k"], name="k_bias"),
        helper.make_node("MatMul", ["x1", "v.w"], ["v0"], name="v_proj"),
        helper.make_node("Add", ["v0", "v.b"], ["val"], name="v_bias"),
        helper.make_node("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"], name="scores"),
        helper.make_node("Mul", ["s0", "scale"], ["s"], name="scale"),
        helper.make_node("Softmax", ["s"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "val"], ["att"], name="context"),
        helper.make_node("MatMul", ["att", "o.w"], ["o0"], name="o_proj"),
        helper.make_node("Add", ["o0", "o.b"], ["o"], name="o_bias"),
        helper.make_node("Add", ["x0", "o"], ["x2"], name="residual1"),
        helper.make_node("LayerNormalization", ["x2", "ln2.g", "ln2.b"], ["x3"], name="ln2", axis=-1),
        helper.make_node("MatMul", ["x3", "m1.w"], ["m0"], name="mlp_up"),
        helper.make_node("Add", ["m0", "m1.b"], ["m1"], name="mlp_up_bias"),
        helper.make_node("Relu", ["m1"], ["m2"], name="mlp_act"),
        helper.make_node("MatMul", ["m2", "m2.w"], ["m3"], name="mlp_down"),
        helper.make_node("Add", ["m3", "m2.b"], ["m4"], name="mlp_down_bias"),
        helper.make_node("Add", ["x2", "m4"], ["y"], name="residual2"),
    ]
    inits = [init("tok.emb", v, d), init("pos.emb", t, d), init("ln1.g", d), init("ln1.b", d)]
    for p in ("q", "k", "v", "o"):
        inits += [init(f"{p}.w", d, d), init(f"{p}.b", d)]
    inits += [init("ln2.g", d), init("ln2.b", d), init("m1.w", d, h), init("m1.b", h)]
    inits += [init("m2.w", h, d), init("m2.b", d), const("scale", [0.25], np.float32)]
    return model(
        "tiny_transformer", nodes, [vi("ids", "N", t, elem=TensorProto.INT64)], [vi("y", "N", t, d)], inits
    )


def tied() -> onnx.ModelProto:
    """A language-model head tied to its embedding: one table, used twice, counted once."""
    d, v = 16, 100
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed"),
        helper.make_node("LayerNormalization", ["e", "ln.g", "ln.b"], ["x"], name="ln", axis=-1),
        helper.make_node("Transpose", ["emb"], ["emb_t"], name="emb_t", perm=[1, 0]),
        helper.make_node("MatMul", ["x", "emb_t"], ["logits"], name="lm_head"),
    ]
    inits = [init("emb", v, d), init("ln.g", d), init("ln.b", d)]
    ids = vi("ids", "N", 8, elem=TensorProto.INT64)
    return model("tied_lm", nodes, [ids], [vi("logits", "N", 8, v)], inits)


def qdq() -> onnx.ModelProto:
    """A QDQ-quantized conv net: int8 weights behind DequantizeLinear, scales apart."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x.s", "x.zp"], ["xq"], name="x_q"),
        helper.make_node("DequantizeLinear", ["xq", "x.s", "x.zp"], ["xd"], name="x_dq"),
        helper.make_node("DequantizeLinear", ["c.wq", "c.ws", "c.wzp"], ["c.w"], name="c_w_dq", axis=0),
        helper.make_node("Conv", ["xd", "c.w", "c.b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["flat"], name="flatten"),
        helper.make_node("DequantizeLinear", ["f.wq", "f.ws", "f.wzp"], ["f.w"], name="f_w_dq"),
        helper.make_node("Gemm", ["flat", "f.w", "f.b"], ["y"], name="fc", transB=1),
    ]
    inits = [
        const("x.s", 0.02, np.float32), const("x.zp", 0, np.int8),
        numpy_helper.from_array(RNG.integers(-127, 127, (8, 1, 3, 3), dtype=np.int8), "c.wq"),
        const("c.ws", [0.01] * 8, np.float32), const("c.wzp", [0] * 8, np.int8), init("c.b", 8),
        numpy_helper.from_array(RNG.integers(-127, 127, (10, 512), dtype=np.int8), "f.wq"),
        const("f.ws", 0.01, np.float32), const("f.wzp", 0, np.int8), init("f.b", 10),
    ]  # fmt: skip
    return model("qdq_cnn", nodes, [vi("x", "N", 1, 8, 8)], [vi("y", "N", 10)], inits)


def write_external(m: onnx.ModelProto, path: Path) -> None:
    """Save with every tensor over 1 KB in `<name>.data` next to the model."""
    data = path.with_suffix(".onnx.data")
    data.unlink(missing_ok=True)
    onnx.save_model(m, path, save_as_external_data=True, location=data.name, size_threshold=1024)


def main() -> None:
    samples = {
        "seed_mlp": seed_mlp(),
        "seed_cnn": seed_cnn(),
        "lenet5": lenet(),
        "gap_cnn": gap_cnn(),
        "tiny_transformer": transformer(),
        "tied_lm": tied(),
        "qdq_cnn": qdq(),
    }
    for name, m in samples.items():
        onnx.save_model(m, HERE / f"{name}.onnx")
    external = HERE / "external"
    external.mkdir(exist_ok=True)
    write_external(lenet(), external / "lenet5_external.onnx")
    shutil.copyfile(HERE / "seed_mlp.onnx", HERE / "rules" / "ONX101" / "bad.onnx")
    shutil.copyfile(HERE / "seed_cnn.onnx", HERE / "rules" / "ONX101" / "good.onnx")
    print(f"wrote {len(samples) + 3} models under {HERE}")


if __name__ == "__main__":
    main()
