"""The rules on real torch exports (sample_models/exported/export_rules.py), both exporters.

Every expected number is hand arithmetic from the architectures in export_rules.py. A 3x3 conv
C -> F: 9*C*F weights vs 9*C + C*F separable, so it saves 9*C*F - 9*C - C*F.
"""

from __future__ import annotations

import pytest

from analyzer import Report, analyze
from analyzer.core.symbolic import Poly
from analyzer.rules.untied_head import UntiedHead
from tests.conftest import SAMPLES

EXPORTED = SAMPLES / "exported"
EXPORTERS = ("torchscript", "dynamo")


def saved(c: int, f: int) -> int:
    """ONX102's saving on a 3x3 conv C -> F."""
    return 9 * c * f - (9 * c + c * f)


def found(report: Report, code: str) -> list[tuple[int, object]]:
    return [(f.params_saved, f.macs_delta) for f in report.findings if f.code == code]


def node_of(report: Report, code: str) -> list[str]:
    return [f.node for f in report.findings if f.code == code]


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_vgg_style(exporter: str) -> None:
    report = analyze(EXPORTED / f"vgg_style.{exporter}.onnx", strict=True)
    # conv1 3*32*9+32 = 896, conv2 32*64*9+64 = 18,496, conv3 64*64*9+64 = 36,928,
    # fc1 2,304*64+64 = 147,520, fc2 64*10+10 = 650
    assert report.totals.params == 896 + 18_496 + 36_928 + 147_520 + 650 == 204_490
    # conv2 (32 -> 64) at 24x24 = 576 positions, conv3 (64 -> 64) at 12x12 = 144; the 3 -> 32
    # stem has fewer than 32 input channels
    assert [f.params_saved for f in report.findings if f.code == "ONX102"] == [
        saved(32, 64),  # 18,432 - 2,336 = 16,096
        saved(64, 64),  # 36,864 - 4,672 = 32,192
    ]
    convs = [f.detail for f in report.findings if f.code == "ONX102"]
    assert [(d.channels, d.filters, str(d.positions)) for d in convs] == [  # type: ignore[union-attr]
        (32, 64, "576·N"),
        (64, 64, "144·N"),
    ]
    assert [str(f.macs_delta) for f in report.findings if f.code == "ONX102"] == [
        f"{-saved(32, 64) * 576:,}·N",
        f"{-saved(64, 64) * 144:,}·N",
    ]
    (onx101,) = [f for f in report.findings if f.code == "ONX101"]
    (onx104,) = [f for f in report.findings if f.code == "ONX104"]
    assert onx101.node == onx104.node  # fc1
    assert onx101.params_saved == 2_304 * 64 - 9 * 64 * 64 == 110_592
    d = onx104.detail
    # share 147,520 / 204,490; r = floor(2,304*64 / (4*(2,304+64))) = floor(15.57) = 15
    assert (d.layer_params, d.model_params, d.rank) == (147_520, 204_490, 15)  # type: ignore[union-attr]
    assert d.low_rank_weights == 2_304 * 15 + 15 * 64 == 35_520  # type: ignore[union-attr]
    assert onx104.params_saved == 147_456 - 35_520
    assert "retraining" in onx104.message and "weights" in onx104.message


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_mobilenet_style_is_already_separable(exporter: str) -> None:
    report = analyze(EXPORTED / f"mobilenet_style.{exporter}.onnx", strict=True)
    # stem 896, dw1 32*9+32 = 320, pw1 32*64+64 = 2,112, dw2 64*9+64 = 640,
    # pw2 64*128+128 = 8,320, fc 128*10+10 = 1,290; the largest dense layer is fc (9.5%)
    assert report.totals.params == 896 + 320 + 2_112 + 640 + 8_320 + 1_290 == 13_578
    assert report.findings == ()


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_resnet_style(exporter: str) -> None:
    report = analyze(EXPORTED / f"resnet_style.{exporter}.onnx", strict=True)
    # layer1: two 3x3 32 -> 32 at 16x16 = 256 positions; layer2: 3x3 32 -> 64 stride 2 and
    # 3x3 64 -> 64, both at 8x8 = 64; the 3 -> 32 stem and the 1x1 shortcut are not flagged
    assert found(report, "ONX102") == [
        (saved(32, 32), _n(-saved(32, 32) * 256)),  # 9,216 - 1,312 = 7,904
        (saved(32, 32), _n(-saved(32, 32) * 256)),
        (saved(32, 64), _n(-saved(32, 64) * 64)),
        (saved(64, 64), _n(-saved(64, 64) * 64)),
    ]
    assert {f.code for f in report.findings} == {"ONX102"}


def _n(coeff: int) -> object:

    return Poly.product(["N", coeff])


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_gpt2_untied_head(exporter: str) -> None:
    report = analyze(EXPORTED / f"gpt2_untied.{exporter}.onnx", strict=True)
    (finding,) = [f for f in report.findings if f.code == "ONX103"]
    assert finding.params_saved == 1_000 * 32 == 32_000
    assert (finding.detail.vocab, finding.detail.dim) == (1_000, 32)  # type: ignore[union-attr]
    assert finding.detail.table == "wte.weight"  # type: ignore[union-attr]
    # wte 32,000, wpe 2,048, three LayerNorms 3*64, attn 32*96+96 = 3,168, proj 1,056,
    # fc 4,224, out 4,128, lm_head 32,000: lm_head is 40.6%, under ONX104's half
    assert report.totals.params == 32_000 + 2_048 + 192 + 3_168 + 1_056 + 4_224 + 4_128 + 32_000
    assert not [f for f in report.findings if f.code == "ONX104"]


def test_gpt2_tied_one_stored_table_is_not_flagged() -> None:
    report = analyze(EXPORTED / "gpt2_tied.dynamo.onnx", strict=True)
    assert report.totals.params == 78_816 - 32_000  # the table is stored once
    assert report.findings == ()  # the tied head's weight is shared: no ONX103, no ONX104


def test_gpt2_tied_torchscript_copy_is_flagged_with_the_copy_wording() -> None:
    report = analyze(EXPORTED / "gpt2_tied.torchscript.onnx", strict=True)
    (finding,) = report.findings
    assert (finding.code, finding.params_saved) == ("ONX103", 32_000)
    assert "copy of the table" in finding.message and "--inspect-weights" in finding.message
    assert finding.confidence == "medium"


def test_gpt2_tied_torchscript_copy_read_is_called_a_duplicate() -> None:
    """With the weights read, the head's [32, 1000] tensor is the table transposed value for
    value: the file stores a tied table twice (32,000 float32 values, 128,000 bytes)."""
    report = analyze(EXPORTED / "gpt2_tied.torchscript.onnx", strict=True, inspect_weights=True)
    (finding,) = [f for f in report.findings if f.code == "ONX103"]
    detail = finding.detail
    assert isinstance(detail, UntiedHead)
    assert (detail.head_copy, detail.stored_transposed) == (True, True)
    # the saving is the duplicate's, counted once: by ONX203, not by ONX103 too
    assert (finding.params_saved, detail.head_bytes) == (0, 32_000 * 4)
    assert finding.confidence == "high"
    assert "duplicate of the table" in finding.message and "128,000 bytes" in finding.message
    assert "untied" not in finding.message
    assert any(label == "saving" for label, _ in detail.lines())
    assert "ONX203" in finding.message
    # ONX203 names the same copy and holds its 1,000 x 32 values
    (copy,) = [f for f in report.findings if f.code == "ONX203"]
    assert (copy.node, copy.params_saved) == (finding.node, 32_000)
    assert sum(f.params_saved for f in report.findings) == 32_000


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_gpt2_untied_read_is_called_untied(exporter: str) -> None:
    report = analyze(EXPORTED / f"gpt2_untied.{exporter}.onnx", strict=True, inspect_weights=True)
    (finding,) = [f for f in report.findings if f.code == "ONX103"]
    detail = finding.detail
    assert isinstance(detail, UntiedHead) and detail.head_copy is False
    assert finding.params_saved == 1_000 * 32
    assert "the head is untied" in finding.message and "1,000*32 = 32,000" in finding.message
    assert "copy" not in finding.message
    assert not [f for f in report.findings if f.code == "ONX203"]


def test_bert_tiny_has_no_head_to_tie() -> None:
    """bert_tiny is the encoder alone (no masked-LM head): nothing to tie, nothing flagged."""
    assert analyze(EXPORTED / "bert_tiny.onnx", strict=True).findings == ()


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_small_vgg(exporter: str) -> None:
    """export_torch.py's SmallVGG: convs 3->16, 16->16, 16->32, 32->32, then 512 -> 64 -> 10."""
    report = analyze(EXPORTED / f"small_vgg.{exporter}.onnx", strict=True)
    total = 448 + 2_320 + 4_640 + 9_248 + (512 * 64 + 64) + 650
    assert report.totals.params == total == 50_138
    # only the 32 -> 32 conv has 32 input channels
    assert [f.params_saved for f in report.findings if f.code == "ONX102"] == [saved(32, 32)]
    # the classifier holds 32,832 of 50,138 (65%); r = floor(512*64 / (4*576)) = 14:
    # 512*14 + 14*64 = 8,064 instead of 32,768. ONX101: 32,768 vs 9*32*64 = 18,432 is < 2x
    (dominant,) = [f for f in report.findings if f.code == "ONX104"]
    assert (dominant.detail.rank, dominant.params_saved) == (14, 32_768 - 8_064)  # type: ignore[union-attr]
    assert not [f for f in report.findings if f.code == "ONX101"]


@pytest.mark.parametrize(
    ("form", "op"),
    [("float", "Conv"), ("qdq", "Conv"), ("qoperator", "QLinearConv"), ("dynamic", "ConvInteger")],
)
def test_quantized_convs_save_what_the_float_convs_save(form: str, op: str) -> None:
    """export_quantized_cnn.py: one ResNet-style CNN, float and quantized by onnxruntime
    (QDQ: DequantizeLinear -> Conv; QOperator: QLinearConv; dynamic: ConvInteger). An int8
    kernel is the same count of weights, so ONX102 gives the float model's numbers."""
    report = analyze(EXPORTED / f"qcnn_{form}.onnx", strict=True)
    # stem 3*32*9+32 = 896, block convs 2 x (32*32*9+32) = 18,496, down 32*48*9+48 = 13,872,
    # 1x1 shortcut 32*48+48 = 1,584, fc 48*10+10 = 490 (BatchNorm folded into the convs)
    assert report.totals.params == 896 + 18_496 + 13_872 + 1_584 + 490 == 35_338
    flagged = [(f.node.removesuffix("_quant"), f.op_type, f.params_saved) for f in report.findings
               if f.code == "ONX102"]  # fmt: skip
    # the 3-channel stem and the 1x1 shortcut are not flagged
    assert flagged == [
        ("/block_a/block_a.0/Conv", op, saved(32, 32)),
        ("/block_b/block_b.0/Conv", op, saved(32, 32)),
        ("/down/down.0/Conv", op, saved(32, 48)),
    ]
    assert saved(32, 32) == 9_216 - 1_312 == 7_904 and saved(32, 48) == 13_824 - 1_824 == 12_000
    # 8x8 output positions after the stride-2 stem and down conv, 16x16 before: MACs per sample
    macs = [f.detail.conv_macs for f in report.findings if f.code == "ONX102"]
    assert macs == [Poly.of(256 * 9_216), Poly.of(256 * 9_216), Poly.of(64 * 13_824)]


def test_keras_separable_cnn_flags_only_its_full_conv() -> None:
    """tf2onnx export (export_keras.py): stem 3 -> 32 (too few input channels), DepthwiseConv2D
    (already depthwise), SeparableConv2D (depthwise + 1x1), then a full 3x3 64 -> 64 conv."""
    report = analyze(EXPORTED / "keras_separable_cnn.onnx", strict=True)
    # Keras's count: stem 3*9*32+32 = 896, dw 9*32+32 = 320, sep 9*32 + 32*64 + 64 = 2,400,
    # full 9*64*64+64 = 36,928, fc 64*10+10 = 650
    assert report.totals.params == 896 + 320 + 2_400 + 36_928 + 650 == 41_194
    (onx102,) = [f for f in report.findings if f.code == "ONX102"]
    assert "full" in onx102.node
    assert onx102.params_saved == saved(64, 64) == 36_864 - 4_672
    assert {f.code for f in report.findings} == {"ONX102"}  # fc is 1.6%: no ONX104


def test_keras_mha_block_counts_every_projection_bias() -> None:
    """tf2onnx writes MultiHeadAttention as MatMul + Add per projection and LayerNorm op by op;
    with every weight non-zero and distinct the file holds exactly Keras's count."""
    report = analyze(EXPORTED / "keras_mha_block.onnx", strict=True)
    # q, k, v: 32*2*16 + 2*16 each; output 2*16*32 + 32; two LayerNorms 2*32 each;
    # up 32*64+64, down 64*32+32, fc 32*2+2
    expected = 3 * (1_024 + 32) + (1_024 + 32) + 2 * 64 + 2_112 + 2_080 + 66
    assert report.totals.params == expected == 8_610
    assert report.findings == ()
