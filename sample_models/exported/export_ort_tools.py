"""Models as onnxruntime's own tools rewrite them: a CRNN dynamically quantized (LSTM/GRU ->
com.microsoft::DynamicQuantizeLSTM, ConvInteger, MatMulInteger), and a BERT-like and a GPT-2-like
transformer through onnxruntime.transformers.optimizer (Attention, SkipLayerNormalization,
EmbedLayerNormalization, BiasGelu/FastGelu) and onnxruntime.quantization (dynamic, QDQ,
QOperator, 4-bit MatMulNBits).

The architectures are written by hand (no torchvision / transformers). Every counts.json holds
torch's own `sum(p.numel() for p in model.parameters())`; what a tool folded or duplicated is
written next to it from the architecture, never read from our analyzer.

Run:  ORT_DISABLE_TELEMETRY=1 python sample_models/exported/export_ort_tools.py
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sys
import warnings

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import onnx_summary, out_path, write_json  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger().setLevel(logging.ERROR)
ORT = f"onnxruntime {onnxruntime.__version__}"


def seed(n: int = 0) -> None:
    np.random.seed(n)
    torch.manual_seed(n)


class CRNN(nn.Module):
    """OCR-style: conv features [N, C, H', W'] read as a sequence over W', a 2-layer
    bidirectional LSTM (or GRU), then a per-time-step classifier."""

    def __init__(self, rnn: str = "lstm", classes: int = 40, hidden: int = 48):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d((8, 1)),
        )  # fmt: skip
        kind = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = kind(32, hidden, num_layers=2, bidirectional=True)
        self.classifier = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        f = self.features(x)  # [N, 32, 1, W/4]
        seq = f.squeeze(2).permute(2, 0, 1)  # [T, N, 32]
        out, _ = self.rnn(seq)  # [T, N, 2h]
        t, n, h = out.shape
        logits = self.classifier(out.reshape(t * n, h))  # as crnn.pytorch: [T*N, 2h]
        return logits.view(t, n, -1)


class Block(nn.Module):
    def __init__(self, d: int, heads: int, causal: bool, gelu: str):
        super().__init__()
        self.d, self.heads, self.causal = d, heads, causal
        self.qkv = nn.Linear(d, 3 * d) if causal else None
        if not causal:
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.gelu = gelu

    def act(self, x):
        if self.gelu == "tanh":  # GPT-2's gelu_new
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))

    def attention(self, x, mask):
        b, s, d = x.shape
        h, dh = self.heads, self.d // self.heads
        if self.causal:
            q, k, v = self.qkv(x).split(self.d, dim=2)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        q = q.view(b, s, h, dh).permute(0, 2, 1, 3)
        k = k.view(b, s, h, dh).permute(0, 2, 3, 1)
        v = v.view(b, s, h, dh).permute(0, 2, 1, 3)
        scores = torch.matmul(q, k) / math.sqrt(dh)
        scores = scores + mask
        ctx = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).reshape(b, s, d)
        return self.out(ctx)

    def forward(self, x, mask):
        if self.causal:  # pre-norm, GPT-2
            x = x + self.attention(self.ln1(x), mask)
            return x + self.fc2(self.act(self.fc1(self.ln2(x))))
        x = self.ln1(x + self.attention(x, mask))  # post-norm, BERT
        return self.ln2(x + self.fc2(self.act(self.fc1(x))))


class Bert(nn.Module):
    def __init__(self, vocab=300, d=64, heads=4, layers=2, positions=64):
        super().__init__()
        self.word, self.pos = nn.Embedding(vocab, d), nn.Embedding(positions, d)
        self.seg = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d)
        self.blocks = nn.ModuleList(Block(d, heads, False, "erf") for _ in range(layers))
        self.pooler = nn.Linear(d, d)

    def forward(self, input_ids, attention_mask, token_type_ids):
        s = input_ids.shape[1]
        pos = torch.arange(s, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.ln(self.word(input_ids) + self.pos(pos) + self.seg(token_type_ids))
        mask = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        for block in self.blocks:
            x = block(x, mask)
        return x, torch.tanh(self.pooler(x[:, 0]))


class GPT2(nn.Module):
    def __init__(self, vocab=300, d=64, heads=4, layers=2, positions=64):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(positions, d)
        self.blocks = nn.ModuleList(Block(d, heads, True, "tanh") for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, input_ids):
        s = input_ids.shape[1]
        pos = torch.arange(s, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        causal = torch.triu(torch.full((s, s), -10000.0), diagonal=1)
        for block in self.blocks:
            x = block(x, causal)
        return self.lm_head(self.ln_f(x))


def trained_norms(model: nn.Module) -> nn.Module:
    """LayerNorm scales and shifts as training leaves them (not all ones and zeros): both torch
    exporters merge initializers of equal values, which would hide four norms' worth here."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)
    return model


def duplicated(path: str, model: nn.Module) -> int:
    """Elements the file stores twice: a parameter stored as itself AND as its transpose (a
    tied weight written again for a MatMul; untied Linear weights are stored transposed only)."""
    from onnx import numpy_helper

    stored = [numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer]
    extra = 0
    for p in model.parameters():
        w = p.detach().numpy()
        as_is = any(a.shape == w.shape and np.array_equal(a, w) for a in stored)
        flipped = w.ndim == 2 and any(a.shape == w.T.shape and np.array_equal(a, w.T) for a in stored)
        if as_is and flipped:
            extra += w.size
    return extra


def params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))  # tied weights once


def bn_buffers(model: nn.Module) -> int:
    return int(
        sum(m.running_mean.numel() * 2 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    )


def export(model, args, name, inputs, dynamic) -> str:
    path = out_path(name)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(
            model, args, path, dynamo=False, opset_version=17, input_names=inputs,
            dynamic_axes=dynamic, do_constant_folding=True,
        )  # fmt: skip
    return path


def ops(path: str) -> list[str]:
    return sorted(onnx_summary(onnx.load(path))["ops"])


def run_once(path: str, feed: dict) -> None:
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    session.run(None, feed)


def record(name: str, torch_params: int, exporter: str, notes: str, feed: dict, **extra) -> None:
    path = out_path(name + ".onnx")
    run_once(path, feed)
    write_json(
        out_path(name + ".counts.json"),
        {
            "framework": f"torch {torch.__version__}",
            "params": torch_params,
            "trainable": torch_params,
            "exporter": exporter,
            "opset": 17,
            "notes": notes,
            "flagged_weights": [],
            "fused_ops": ops(path),
            "example_input_shapes": {k: list(v.shape) for k, v in feed.items()},
            **extra,
        },
    )
    print(f"{name}: {torch_params:,} params, ops {ops(path)}")


def crnn(kind: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    seed(0)
    model = CRNN(kind).eval()
    with torch.no_grad():  # trained-looking BN statistics
        bn = model.features[7]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 1, 32, 64)
    name = f"crnn_{kind}"
    dyn = {"image": {0: "N", 3: "W"}}
    export(model, (x,), name + ".onnx", ["image"], dyn)
    feed = {"image": x.numpy()}
    base = dict(bn_buffers=bn_buffers(model), folded_elements=64)
    fold = (
        "the TorchScript exporter folds the eval-mode BatchNorm into the third conv: its 32 "
        "scales, 32 shifts and 64 running statistics become the conv's weight and bias, so the "
        "file stores 64 fewer parameter elements than torch counts"
    )
    record(name, params(model), "torch.onnx.export (TorchScript), opset 17",
           f"{fold} (folded_elements)", feed, **base)  # fmt: skip
    quantize_dynamic(out_path(name + ".onnx"), out_path(name + ".qdyn.onnx"),
                     weight_type=QuantType.QInt8,
                     op_types_to_quantize=["Conv", "MatMul", "Gemm", "LSTM", "GRU"])  # fmt: skip
    record(name + ".qdyn", params(model), f"{ORT} quantize_dynamic (QInt8 weights)",
           f"{fold} (folded_elements); weights stored int8 (one per parameter) with scales and "
           "zero points", feed, **base)  # fmt: skip


def transformers() -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.transformers.optimizer import optimize_model

    seed(0)
    bert = trained_norms(Bert().eval())
    ids = torch.randint(0, 300, (2, 16))
    mask, seg = torch.ones(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dyn = {n: {0: "batch", 1: "seq"} for n in names}
    export(bert, (ids, mask, seg), "bert_tiny.onnx", names, dyn)
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": seg.numpy()}
    n = params(bert)
    record("bert_tiny", n, "torch.onnx.export (TorchScript), opset 17", "plain export", feed)
    opt = optimize_model(out_path("bert_tiny.onnx"), model_type="bert", num_heads=4, hidden_size=64)
    opt.save_model_to_file(out_path("bert_tiny.opt.onnx"))
    fused = (
        "onnxruntime.transformers optimize_model(bert): q/k/v weights concatenated into one "
        "[64, 192] Attention weight (same element count), embeddings + LayerNorm fused into "
        "EmbedLayerNormalization, residual + LayerNorm into SkipLayerNormalization"
    )
    record("bert_tiny.opt", n, f"{ORT} optimize_model(model_type='bert')", fused, feed)
    quantize_dynamic(out_path("bert_tiny.opt.onnx"), out_path("bert_tiny.opt.qdyn.onnx"),
                     weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fmt: skip
    record("bert_tiny.opt.qdyn", n, f"{ORT} quantize_dynamic on the optimized model",
           f"{fused}; then Attention -> QAttention and MatMul -> MatMulInteger/"
           "DynamicQuantizeMatMul with int8 weights, one stored element per parameter", feed)  # fmt: skip
    quantize_dynamic(out_path("bert_tiny.onnx"), out_path("bert_tiny.qdyn.onnx"),
                     weight_type=QuantType.QInt8)  # fmt: skip
    record("bert_tiny.qdyn", n, f"{ORT} quantize_dynamic", "int8 weights for every MatMul", feed)

    class Reader:
        def __init__(self):
            rng = np.random.default_rng(1)
            self.data = [
                {"input_ids": rng.integers(0, 300, (2, 16)).astype(np.int64),
                 "attention_mask": np.ones((2, 16), np.int64),
                 "token_type_ids": np.zeros((2, 16), np.int64)}
                for _ in range(4)
            ]  # fmt: skip
            self.it = iter(self.data)

        def get_next(self):
            return next(self.it, None)

    for fmt, tag in ((QuantFormat.QDQ, "qdq"), (QuantFormat.QOperator, "qop")):
        quantize_static(out_path("bert_tiny.onnx"), out_path(f"bert_tiny.{tag}.onnx"), Reader(),
                        quant_format=fmt, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)  # fmt: skip
        record(f"bert_tiny.{tag}", n, f"{ORT} quantize_static {tag.upper()}",
               "int8 weights, one stored element per parameter; activation scales apart", feed)  # fmt: skip

    seed(0)
    gpt = trained_norms(GPT2().eval())
    ids = torch.randint(0, 300, (1, 12))
    export(gpt, (ids,), "gpt2_tiny.onnx", ["input_ids"], {"input_ids": {0: "batch", 1: "seq"}})
    feed = {"input_ids": ids.numpy()}
    n = params(gpt)
    tied = (
        "lm_head is tied to wte (torch counts it once); the TorchScript exporter writes the "
        "tied weight a second time, transposed, for the lm_head MatMul: 300 x 64 = 19,200 "
        "duplicated elements"
    )
    dup = duplicated(out_path("gpt2_tiny.onnx"), gpt)
    assert dup == 300 * 64, dup  # the transposed copy of wte is in the file
    record("gpt2_tiny", n, "torch.onnx.export (TorchScript), opset 17", tied, feed,
           duplicated_elements=dup)  # fmt: skip
    opt = optimize_model(out_path("gpt2_tiny.onnx"), model_type="gpt2", num_heads=4, hidden_size=64)
    opt.save_model_to_file(out_path("gpt2_tiny.opt.onnx"))
    record("gpt2_tiny.opt", n, f"{ORT} optimize_model(model_type='gpt2')",
           f"{tied}; fused as the op list says", feed, duplicated_elements=300 * 64)  # fmt: skip
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quant = MatMulNBitsQuantizer(onnx.load(out_path("gpt2_tiny.opt.onnx")), block_size=32)
    quant.process()
    quant.model.save_model_to_file(out_path("gpt2_tiny.int4.onnx"))
    record("gpt2_tiny.int4", n, f"{ORT} MatMulNBitsQuantizer(block_size=32, 4 bits)",
           f"{tied}; every MatMul weight packed 4-bit (MatMulNBits, K x N logical elements)",
           feed, duplicated_elements=300 * 64)  # fmt: skip


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {ORT}, onnx {onnx.__version__}")
    crnn("lstm")
    crnn("gru")
    transformers()
