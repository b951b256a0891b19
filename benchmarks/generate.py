"""Generate the benchmark models into a cache folder (never into the repo).

Weights are never materialised as numpy arrays: each model is built with onnx.helper from
names, dims and a few small constants, and its payload bytes are streamed from one repeated
seeded block straight into the file (embedded) or left as holes of a sparse file (external).
So a 3 GB model takes seconds and little memory, and single files over protobuf's 2 GiB limit
can be written at all. Next to each MODEL.onnx goes MODEL.json with the parameter count taken
from the generator's own arithmetic (per-architecture formulas, cross-checked against the dims).

    python benchmarks/generate.py                      # every model, into ~/.cache/onnx-audit-bench
    python benchmarks/generate.py --only gpt2-small vgg16 --out /tmp/bench --force
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import onnx
from onnx import ModelProto, TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
from analyzer.read.wire import encode_varint

DEFAULT_OUT = Path.home() / ".cache" / "onnx-audit-bench"
OPSET = 17
SEED = 0
BLOCK = 4 * 1024 * 1024
ALIGN = 4096
"""External-data offsets are aligned like onnx's own save_model does for large tensors."""


varint = encode_varint


@dataclass
class Builder:
    """Collects nodes, small constants (with values) and weights (dims only)."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    constants: list[TensorProto] = field(default_factory=list)
    weights: list[TensorProto] = field(default_factory=list)
    counter: int = 0

    def weight(self, name: str, dims: list[int]) -> str:
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT)
        tensor.dims.extend(dims)
        self.weights.append(tensor)
        return name

    def const(self, name: str, values: np.ndarray) -> str:
        self.constants.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, **attrs: Any) -> list[str]:
        self.counter += 1
        outs = [f"{op.lower()}_{self.counter}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"{op}_{self.counter}", **attrs))
        return outs

    def one(self, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.node(op, inputs, **attrs)[0]

    def constant_node(self, values: np.ndarray) -> str:
        """A Constant node (not an initializer), as TorchScript writes index and axis values."""
        self.counter += 1
        out = f"const_{self.counter}"
        tensor = numpy_helper.from_array(values, f"{out}_value")
        self.nodes.append(helper.make_node("Constant", [], [out], value=tensor))
        return out

    def counted(self, items: list[TensorProto]) -> int:
        return sum(math.prod(t.dims) for t in items)


@dataclass
class Spec:
    name: str
    build: Callable[[], tuple[ModelProto, Builder, int]]
    inputs: dict[str, tuple[list[int], str]] = field(default_factory=dict)
    """Concrete example inputs for tools that need every dim fixed (onnx-tool)."""
    external: bool = False
    note: str = ""


# -- architectures --------------------------------------------------------------------------


def gpt2_params(vocab: int, ctx: int, d: int, layers: int) -> int:
    """Token + position embeddings, per block 2 LayerNorms, QKV, proj, MLP (12 d^2 + 13 d),
    final LayerNorm; the LM head reuses the token embedding (tied, counted once)."""
    return vocab * d + ctx * d + layers * (12 * d * d + 13 * d) + 2 * d


def gpt2(vocab: int, ctx: int, d: int, layers: int, heads: int) -> tuple[ModelProto, Builder, int]:
    b = Builder()
    head_dim = d // heads
    wte = b.weight("wte", [vocab, d])
    wpe = b.weight("wpe", [ctx, d])
    to_heads = b.const("shape_heads", np.array([0, 0, heads, head_dim], np.int64))
    merge = b.const("shape_merge", np.array([0, 0, d], np.int64))
    split = b.const("split_qkv", np.array([d, d, d], np.int64))
    scale = b.const("attn_scale", np.array(1 / math.sqrt(head_dim), np.float32))
    half = b.const("half", np.array(0.5, np.float32))
    one = b.const("one", np.array(1.0, np.float32))
    sqrt2 = b.const("sqrt2", np.array(math.sqrt(2.0), np.float32))

    def layer_norm(x: str, name: str) -> str:
        gamma, beta = b.weight(f"{name}.weight", [d]), b.weight(f"{name}.bias", [d])
        return b.one("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)

    def linear(x: str, n_in: int, n_out: int, name: str) -> str:
        w, bias = b.weight(f"{name}.weight", [n_in, n_out]), b.weight(f"{name}.bias", [n_out])
        return b.one("Add", [b.one("MatMul", [x, w]), bias])

    def gelu(x: str) -> str:  # the Erf pattern exporters emit below opset 20
        erf = b.one("Erf", [b.one("Div", [x, sqrt2])])
        return b.one("Mul", [b.one("Mul", [x, b.one("Add", [erf, one])]), half])

    x = b.one("Add", [b.one("Gather", [wte, "input_ids"]), b.one("Gather", [wpe, "position_ids"])])
    for i in range(layers):
        h = layer_norm(x, f"h.{i}.ln_1")
        q, k, v = b.node("Split", [linear(h, d, 3 * d, f"h.{i}.attn.c_attn"), split], 3, axis=-1)
        q = b.one("Transpose", [b.one("Reshape", [q, to_heads])], perm=[0, 2, 1, 3])
        k = b.one("Transpose", [b.one("Reshape", [k, to_heads])], perm=[0, 2, 3, 1])
        v = b.one("Transpose", [b.one("Reshape", [v, to_heads])], perm=[0, 2, 1, 3])
        scores = b.one("Mul", [b.one("MatMul", [q, k]), scale])
        att = b.one("MatMul", [b.one("Softmax", [scores], axis=-1), v])
        att = b.one("Reshape", [b.one("Transpose", [att], perm=[0, 2, 1, 3]), merge])
        x = b.one("Add", [x, linear(att, d, d, f"h.{i}.attn.c_proj")])
        h = gelu(linear(layer_norm(x, f"h.{i}.ln_2"), d, 4 * d, f"h.{i}.mlp.c_fc"))
        x = b.one("Add", [x, linear(h, 4 * d, d, f"h.{i}.mlp.c_proj")])
    x = layer_norm(x, "ln_f")
    b.nodes.append(
        helper.make_node("MatMul", [x, b.one("Transpose", [wte], perm=[1, 0])], ["logits"])
    )
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, [1, "seq"])
        for n in ("input_ids", "position_ids")
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "seq", vocab])]
    return finish(b, "gpt2", inputs, outputs), b, gpt2_params(vocab, ctx, d, layers)


def llama_params(vocab: int, d: int, layers: int, ffn: int) -> int:
    """Token embedding and an untied LM head, per block 2 RMSNorm weights, Q/K/V/O (4 d^2,
    no bias) and a gated MLP (3 d ffn), a final RMSNorm."""
    return 2 * vocab * d + layers * (4 * d * d + 3 * d * ffn + 2 * d) + d


def llama(
    vocab: int, d: int, layers: int, *, heads: int, ffn: int, ctx: int
) -> tuple[ModelProto, Builder, int]:
    """A LLaMA-like decoder as TorchScript exports it at opset 17: RMSNorm and rotary written
    out op by op, every reshape's target computed from Shape, index and axis values as
    Constant nodes, the causal mask rebuilt in every block (about 170 nodes per block)."""
    b = Builder()
    head_dim = d // heads
    i64 = np.int64

    def c(*values: float, dtype: type = i64) -> str:
        return b.constant_node(np.array(values if len(values) != 1 else values[0], dtype))

    def dim(x: str, axis: int) -> str:  # Shape -> Gather -> Unsqueeze, as torch writes size()
        size = b.one("Gather", [b.one("Shape", [x]), c(axis)], axis=0)
        return b.one("Unsqueeze", [size, c([0])])  # axes 1-D, as the spec and torch have it

    def rms_norm(x: str, name: str) -> str:
        weight = b.weight(f"{name}.weight", [d])
        x32 = b.one("Cast", [x], to=TensorProto.FLOAT)
        var = b.one("ReduceMean", [b.one("Pow", [x32, c(2.0, dtype=np.float32)])], axes=[-1])
        eps = c(1e-6, dtype=np.float32)
        inv = b.one("Reciprocal", [b.one("Sqrt", [b.one("Add", [var, eps])])])
        normed = b.one("Cast", [b.one("Mul", [x32, inv])], to=TensorProto.FLOAT)
        return b.one("Mul", [weight, normed])

    def split_heads(x: str) -> str:
        target = b.one("Concat", [dim(x, 0), dim(x, 1), c([heads]), c([head_dim])], axis=0)
        return b.one("Transpose", [b.one("Reshape", [x, target])], perm=[0, 2, 1, 3])

    def half(x: str, start: int, end: int) -> str:
        return b.one("Slice", [x, c([start]), c([end]), c([3]), c([1])])

    def rotary(x: str, cos: str, sin: str) -> str:
        rotated = b.one(
            "Concat",
            [b.one("Neg", [half(x, head_dim // 2, head_dim)]), half(x, 0, head_dim // 2)],
            axis=-1,
        )
        return b.one("Add", [b.one("Mul", [x, cos]), b.one("Mul", [rotated, sin])])

    def causal_mask(x: str) -> str:
        seq = b.one("Squeeze", [dim(x, 1), c([0])])
        steps = b.one("Range", [c(0), seq, c(1)])
        rows = b.one("Unsqueeze", [steps, c([1])])
        cols = b.one("Unsqueeze", [steps, c([0])])
        above = b.one("Greater", [cols, rows])
        zero, low = c(0.0, dtype=np.float32), c(-1e9, dtype=np.float32)
        mask = b.one("Where", [above, low, zero])
        return b.one("Unsqueeze", [mask, c([0, 1])])

    embed = b.weight("model.embed_tokens.weight", [vocab, d])
    cos_table = b.const("rotary.cos", np.ones((ctx, head_dim), np.float32))
    sin_table = b.const("rotary.sin", np.zeros((ctx, head_dim), np.float32))
    scale = b.const("attn_scale", np.array(math.sqrt(head_dim), np.float32))
    x = b.one("Gather", [embed, "input_ids"])
    for i in range(layers):
        name = f"model.layers.{i}"
        h = rms_norm(x, f"{name}.input_layernorm")
        proj = {
            p: b.one("MatMul", [h, b.weight(f"{name}.self_attn.{p}_proj.weight", [d, d])])
            for p in "qkv"
        }
        seq = dim(h, 1)  # the rotary caches cut to the sequence length: buffers, not weights
        cos = b.one("Unsqueeze", [b.one("Slice", [cos_table, c([0]), seq, c([0])]), c([0, 1])])
        sin = b.one("Unsqueeze", [b.one("Slice", [sin_table, c([0]), seq, c([0])]), c([0, 1])])
        q = rotary(split_heads(proj["q"]), cos, sin)
        k = rotary(split_heads(proj["k"]), cos, sin)
        v = split_heads(proj["v"])
        k_t = b.one("Transpose", [k], perm=[0, 1, 3, 2])
        scores = b.one("Div", [b.one("MatMul", [q, k_t]), scale])
        probs = b.one("Softmax", [b.one("Add", [scores, causal_mask(h)])], axis=-1)
        att = b.one("Transpose", [b.one("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        merged = b.one("Concat", [dim(att, 0), dim(att, 1), c([d])], axis=0)
        att = b.one("Reshape", [att, merged])
        o = b.weight(f"{name}.self_attn.o_proj.weight", [d, d])
        x = b.one("Add", [x, b.one("MatMul", [att, o])])
        h = rms_norm(x, f"{name}.post_attention_layernorm")
        gate = b.one("MatMul", [h, b.weight(f"{name}.mlp.gate_proj.weight", [d, ffn])])
        up = b.one("MatMul", [h, b.weight(f"{name}.mlp.up_proj.weight", [d, ffn])])
        act = b.one("Mul", [b.one("Mul", [gate, b.one("Sigmoid", [gate])]), up])
        down = b.weight(f"{name}.mlp.down_proj.weight", [ffn, d])
        x = b.one("Add", [x, b.one("MatMul", [act, down])])
    x = rms_norm(x, "model.norm")
    head = b.weight("lm_head.weight", [d, vocab])
    b.nodes.append(helper.make_node("MatMul", [x, head], ["logits"]))
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
        for n in ("input_ids", "position_ids")
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab])]
    return finish(b, "llama", inputs, outputs), b, llama_params(vocab, d, layers, ffn)


VGG16_CONVS: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
VGG16_CONVS += [512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_params() -> int:
    """3x3 convs with bias, then Gemm 25088->4096->4096->1000 with bias."""
    total, cin = 0, 3
    for item in VGG16_CONVS:
        if item != "M":
            total += 9 * cin * int(item) + int(item)
            cin = int(item)
    return total + (25088 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


def vgg16() -> tuple[ModelProto, Builder, int]:
    b = Builder()
    x, cin, conv = "input", 3, 0
    for item in VGG16_CONVS:
        if item == "M":
            x = b.one("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
            continue
        conv += 1
        cout = int(item)
        w = b.weight(f"features.{conv}.weight", [cout, cin, 3, 3])
        bias = b.weight(f"features.{conv}.bias", [cout])
        x = b.one("Relu", [b.one("Conv", [x, w, bias], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
        cin = cout
    x = b.one("Flatten", [x], axis=1)
    for i, (n_in, n_out) in enumerate(((25088, 4096), (4096, 4096), (4096, 1000))):
        w = b.weight(f"classifier.{i}.weight", [n_out, n_in])
        bias = b.weight(f"classifier.{i}.bias", [n_out])
        x = b.one("Gemm", [x, w, bias], transB=1)
        if i < 2:
            x = b.one("Relu", [x])
    b.nodes.append(helper.make_node("Identity", [x], ["logits"]))
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])]
    return finish(b, "vgg16", inputs, outputs), b, vgg16_params()


def chain(nodes: int, width: int = 16) -> tuple[ModelProto, Builder, int]:
    """nodes Add/Mul nodes in a chain, each with its own [width] weight (stored with values)."""
    b = Builder()
    x = "input"
    rng = np.random.default_rng(SEED)
    block = rng.standard_normal(width * 64).astype(np.float32)
    for i in range(nodes):
        start = (i * width) % (len(block) - width)
        w = b.const(f"w{i}", block[start : start + width])
        x = b.one("Add" if i % 2 == 0 else "Mul", [x, w])
    b.nodes.append(helper.make_node("Identity", [x], ["output"]))
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, width])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, width])]
    return finish(b, "chain", inputs, outputs), b, nodes * width


def finish(
    b: Builder, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
) -> ModelProto:
    graph = helper.make_graph(b.nodes, name, inputs, outputs, initializer=b.constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    model.producer_name = "onnx-audit-bench"
    return model


GPT_INPUTS = {"input_ids": ([1, 128], "int64"), "position_ids": ([1, 128], "int64")}
SPECS = [
    Spec("gpt2-small", lambda: gpt2(50257, 1024, 768, 12, 12), GPT_INPUTS),
    Spec("gpt2-medium", lambda: gpt2(50257, 1024, 1024, 24, 16), GPT_INPUTS),
    Spec("vgg16", vgg16, {"input": ([1, 3, 224, 224], "float32")}),
    Spec("chain-50k", lambda: chain(50_000), {"input": ([1, 16], "float32")}),
    Spec(
        "llama-48l",
        lambda: llama(32000, 384, 48, heads=6, ffn=1024, ctx=2048),
        GPT_INPUTS,
        note="LLaMA-like, 48 blocks as TorchScript writes them: ~8k nodes, 0.44 GB embedded",
    ),
    Spec(
        "gpt2-xl-external",
        lambda: gpt2(50257, 1024, 1600, 48, 25),
        GPT_INPUTS,
        external=True,
        note="1.5B params as external data in a sparse file (holes, no disk used)",
    ),
    Spec(
        "gpt2-large-embedded",
        lambda: gpt2(50257, 1024, 1280, 36, 20),
        GPT_INPUTS,
        note="single 3.1 GB file: over protobuf's 2 GiB limit, onnx.load cannot read it",
    ),
]


# -- writers --------------------------------------------------------------------------------


def fill_block() -> bytes:
    """One seeded block of small float32 values, repeated as every weight's payload."""
    rng = np.random.default_rng(SEED)
    return (rng.standard_normal(BLOCK // 4).astype(np.float32) * 0.02).tobytes()


def write_stream(handle: BinaryIO, count: int, block: bytes) -> None:
    view = memoryview(block)
    while count > 0:
        n = min(count, len(block))
        handle.write(view[:n])
        count -= n


def write_embedded(model: ModelProto, weights: list[TensorProto], path: Path) -> int:
    """The model with weights as raw_data initializers, written field by field.

    protobuf would hold the whole model in memory twice and refuses files over 2 GiB, so the
    wire format is assembled here: ModelProto fields, then the graph field whose body is the
    graph's own fields followed by one initializer field per weight (raw_data streamed).
    """
    graph_rest = model.graph.SerializeToString()
    rest = ModelProto()
    rest.CopyFrom(model)
    rest.ClearField("graph")
    heads: list[tuple[bytes, int]] = []
    graph_len = len(graph_rest)
    for tensor in weights:
        nbytes = 4 * math.prod(tensor.dims)
        head = tensor.SerializeToString() + b"\x4a" + varint(nbytes)
        body = len(head) + nbytes
        heads.append((b"\x2a" + varint(body) + head, nbytes))
        graph_len += 1 + len(varint(body)) + body
    block = fill_block()
    with path.open("wb") as handle:
        handle.write(rest.SerializeToString() + b"\x3a" + varint(graph_len) + graph_rest)
        for head, nbytes in heads:
            handle.write(head)
            write_stream(handle, nbytes, block)
    return path.stat().st_size


def write_external(model: ModelProto, weights: list[TensorProto], path: Path) -> int:
    """Weights as external data in one sparse file next to the model (holes, no bytes written)."""
    location = path.name + ".data"
    offset = 0
    for tensor in weights:
        nbytes = 4 * math.prod(tensor.dims)
        offset = -(-offset // ALIGN) * ALIGN
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offset), ("length", nbytes)):
            tensor.external_data.add(key=key, value=str(value))
        offset += nbytes
    model.graph.initializer.extend(weights)
    onnx.save_model(model, path)
    with (path.parent / location).open("wb") as handle:
        handle.truncate(offset)
    return offset


def generate(spec: Spec, out: Path) -> dict[str, object]:
    started = time.perf_counter()
    model, builder, params = spec.build()
    counted = builder.counted(builder.weights)
    if spec.name.startswith("chain"):
        counted = builder.counted(builder.constants)
    if counted != params:
        raise SystemExit(f"{spec.name}: formula says {params:,} params, dims say {counted:,}")
    path = out / f"{spec.name}.onnx"
    external_bytes = 0
    if spec.external:
        external_bytes = write_external(model, builder.weights, path)
    else:
        write_embedded(model, builder.weights, path)
    info: dict[str, object] = {
        "model": spec.name,
        "file": path.name,
        "params": params,
        "constant_elements": builder.counted(builder.constants),
        "initializer_elements": builder.counted(builder.constants + builder.weights),
        "nodes": len(builder.nodes),
        "file_bytes": path.stat().st_size,
        "external_data_bytes": external_bytes,
        "seconds_to_generate": round(time.perf_counter() - started, 2),
        "example_inputs": {n: {"shape": s, "dtype": t} for n, (s, t) in spec.inputs.items()},
    }
    if spec.name.startswith("chain"):
        info["note"] = "params are the per-node [16] constants (every initializer is a weight)"
    elif spec.note:
        info["note"] = spec.note
    else:
        info["note"] = "constant_elements are shape/scale constants, not parameters"
    (out / f"{spec.name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def external_size(path: Path) -> int:
    data = path.parent / (path.name + ".data")
    return data.stat().st_size if data.exists() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--only", nargs="+", choices=[s.name for s in SPECS], metavar="NAME")
    parser.add_argument("--force", action="store_true", help="regenerate existing models")
    args = parser.parse_args(argv)
    out: Path = args.out.expanduser()
    repo = Path(__file__).resolve().parent.parent
    if out.resolve() == repo or repo in out.resolve().parents:
        parser.error("generate outside the repository (the models are gigabytes)")
    out.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
        if args.only and spec.name not in args.only:
            continue
        meta = out / f"{spec.name}.json"
        if meta.exists() and (out / f"{spec.name}.onnx").exists() and not args.force:
            print(f"{spec.name}: exists ({meta})")
            continue
        info = generate(spec, out)
        size = os.path.getsize(path := out / f"{spec.name}.onnx") + external_size(path)
        print(
            f"{spec.name}: {info['params']:,} params, {info['nodes']:,} nodes, "
            f"{size / 1e9:.2f} GB in {info['seconds_to_generate']} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
