"""Models as onnxruntime's own tools write them (sample_models/exported/export_ort_tools.py):
transformers through `onnxruntime.transformers.optimizer`, dynamic / static / 4-bit
quantization, and a CRNN whose LSTM the quantizer turns into com.microsoft::DynamicQuantizeLSTM.

Expected totals are torch's `sum(p.numel())` from each counts.json, adjusted only by what the
export script measured the tools did: folded BatchNorm affine values (stored no more) and a tied
weight written a second time (stored twice).
"""

from __future__ import annotations

import json

import pytest

from analyzer import analyze
from tests.conftest import SAMPLES

EXPORTED = SAMPLES / "exported"
MODELS = sorted(
    p.name
    for p in EXPORTED.glob("*.onnx")
    if p.name.startswith(("bert_tiny", "gpt2_tiny", "crnn_"))
)
PACKED = {"gpt2_tiny.int4.onnx"}
"""MatMulNBits stores K x N weights in K x N / 2 bytes: params count K x N, stored elements
count the bytes, so only the params side is compared for it."""


def _counts(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (EXPORTED / name.replace(".onnx", ".counts.json")).read_text(encoding="utf-8")
    )
    return data


def test_the_real_tool_samples_are_here() -> None:
    assert len(MODELS) == 13, MODELS


@pytest.mark.parametrize("name", MODELS)
def test_totals_equal_torchs_count(name: str) -> None:
    data = _counts(name)
    report = analyze(EXPORTED / name, strict=True)  # strict: an unhandled op with weights fails
    expected = int(data["params"])  # type: ignore[call-overload]
    expected -= int(data.get("folded_elements", 0))  # type: ignore[call-overload]
    expected += int(data.get("duplicated_elements", 0))  # type: ignore[call-overload]
    assert report.totals.params == expected
    assert not [w for w in report.warnings if "unhandled" in w]
    totals = report.totals
    if name not in PACKED:
        accounted = totals.params + totals.quantization_constants + totals.other_constants
        assert accounted == totals.stored_elements


@pytest.mark.parametrize("name", MODELS)
def test_nothing_is_flagged(name: str) -> None:
    """None of these has a dense layer on a flattened image; the CRNN's classifier reads LSTM
    features per time step. The CRNNs' third conv (3x3, 32 -> 32, features.6) is ONX102's:
    9*32*32 = 9,216 weights vs 9*32 + 32*32 = 288 + 1,024 = 1,312, saving 7,904."""
    assert _counts(name)["flagged_weights"] == []
    findings = analyze(EXPORTED / name).findings
    assert not [f for f in findings if f.code == "ONX101"]
    # the .qdyn CRNNs hold the same conv as ConvInteger (onnxruntime names it ..._quant):
    # its int8 kernel is the same 9,216 parameters, so the same saving
    expected = {
        "crnn_gru.onnx": [("/features/features.6/Conv", 7_904)],
        "crnn_lstm.onnx": [("/features/features.6/Conv", 7_904)],
        "crnn_gru.qdyn.onnx": [("/features/features.6/Conv_quant", 7_904)],
        "crnn_lstm.qdyn.onnx": [("/features/features.6/Conv_quant", 7_904)],
    }.get(name, [])
    assert [(f.node, f.params_saved) for f in findings if f.code == "ONX102"] == expected


@pytest.mark.parametrize("name", ["crnn_lstm.qdyn.onnx", "crnn_gru.qdyn.onnx"])
def test_quantized_recurrent_weights_are_parameters(name: str) -> None:
    """int8 W and R of a bidirectional 2-layer LSTM(32 -> 48), GRU the same: W is
    gates*48 x input per direction, R gates*48 x 48; layer 1's input is 32, layer 2's 96."""
    gates = 4 if "lstm" in name else 3
    w_and_r = sum(2 * gates * 48 * (inp + 48) for inp in (32, 96))
    report = analyze(EXPORTED / name)
    recurrent = [
        layer for layer in report.layers if layer.op_type in ("DynamicQuantizeLSTM", "GRU")
    ]
    assert len(recurrent) == 2
    stored_wr = sum(
        w.elements for layer in recurrent for w in layer.weights if w.role in ("W", "R")
    )
    assert stored_wr == w_and_r


def test_fused_bert_ops_are_counted() -> None:
    """optimize_model fuses the embeddings into EmbedLayerNormalization (300x64 words, 64x64
    positions, 2x64 segments, 2x64 norm) and q/k/v into one Attention weight 64 x 192."""
    report = analyze(EXPORTED / "bert_tiny.opt.onnx")
    by_op: dict[str, int] = {}
    for layer in report.layers:
        by_op[layer.op_type] = by_op.get(layer.op_type, 0) + layer.params
    assert by_op["EmbedLayerNormalization"] == 300 * 64 + 64 * 64 + 2 * 64 + 2 * 64
    assert by_op["Attention"] == 2 * (64 * 192 + 192)
    attention = next(layer for layer in report.layers if layer.op_type == "Attention")
    # batch and sequence are dynamic: projections 64*192 per token, scores + context 2*s*64
    assert "64" in str(attention.macs) or attention.macs.value is None


def _bert_macs(s: int) -> int:
    """Per layer: q, k, v, out (4 x s x 64 x 64), FFN (2 x s x 64 x 256), scores and context
    (2 x s x s x 64); two layers; the pooler reads token 0 (64 x 64)."""
    return 2 * (4 * s * 64 * 64 + 2 * s * 64 * 256 + 2 * s * s * 64) + 64 * 64


def _gpt2_macs(s: int) -> int:
    """Per layer: fused qkv (s x 64 x 192), out, MLP, scores and context; lm_head s x 64 x 300."""
    per_layer = s * 64 * 192 + s * 64 * 64 + 2 * s * 64 * 256 + 2 * s * s * 64
    return 2 * per_layer + s * 64 * 300


def _crnn_macs(width: int) -> int:
    """Three 3x3 convs (1->16 at 32xW, 16->32 at 16xW/2, 32->32 at 8xW/4), a 2-layer
    bidirectional LSTM(48) over T = W/4 steps (W + R elements per step), the classifier."""
    convs = 16 * 32 * width * 9 + 32 * 16 * (width // 2) * 144 + 32 * 8 * (width // 4) * 288
    steps = width // 4
    lstm = sum(steps * 2 * (4 * 48 * inp + 4 * 48 * 48) for inp in (32, 96))
    return convs + lstm + steps * 96 * 40


SEQ = {"input_ids": (1, 16), "attention_mask": (1, 16), "token_type_ids": (1, 16)}
MACS = [
    *((n, SEQ, _bert_macs(16)) for n in MODELS if n.startswith("bert_tiny")),
    *((n, {"input_ids": (1, 16)}, _gpt2_macs(16)) for n in MODELS if n.startswith("gpt2")),
    *((n, {"image": (1, 1, 32, 64)}, _crnn_macs(64)) for n in MODELS if "lstm" in n),
]


@pytest.mark.parametrize(("name", "shapes", "macs"), MACS, ids=[m[0] for m in MACS])
def test_macs_survive_fusion_and_quantization(name: str, shapes, macs: int) -> None:
    """Shapes flow through the fused and quantized contrib ops (onnx cannot infer them), so
    the optimized and quantized files count the same MACs as the plain export."""
    report = analyze(EXPORTED / name, input_shapes=shapes)
    assert report.totals.macs.value == macs
