"""Every bundled hand-built sample, with expected numbers from hand arithmetic."""

from __future__ import annotations

import pytest

from analyzer import analyze
from tests.conftest import SAMPLES, layer


def dense(k: int, f: int) -> int:
    """Weights + bias of a dense layer."""
    return k * f + f


def conv(c: int, f: int, kh: int, kw: int) -> int:
    return c * f * kh * kw + f


EXPECTED = {
    # name: (total params, flagged node names)
    "seed_mlp": (dense(100, 32), {"dense"}),
    "seed_cnn": (conv(1, 32, 3, 3), set()),
    "lenet5": (
        conv(1, 6, 5, 5) + conv(6, 16, 5, 5) + dense(400, 120) + dense(120, 84) + dense(84, 10),
        {"fc1"},
    ),
    "gap_cnn": (conv(3, 8, 3, 3) + conv(8, 16, 3, 3) + dense(16, 10), set()),
    # token table 50x16, positions 8x16, 2 LayerNorms, 4 projections 16x16, MLP 16->32->16
    "tiny_transformer": (
        50 * 16 + 8 * 16 + 2 * 32 + 4 * dense(16, 16) + dense(16, 32) + dense(32, 16),
        set(),
    ),
    # the 100x16 table is used by the embedding and (transposed) by the head: counted once
    "tied_lm": (100 * 16 + 32, set()),
    # int8 conv 8x1x3x3 + bias 8, int8 dense 512x10 + bias 10; scales/zero points apart
    "qdq_cnn": (8 * 9 + 8 + 512 * 10 + 10, {"fc"}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_totals_and_findings(name: str) -> None:
    report = analyze(SAMPLES / f"{name}.onnx", strict=True)
    total, flagged = EXPECTED[name]
    assert report.totals.params == total
    assert report.totals.trainable == total
    assert {f.node for f in report.findings} == flagged
    assert not report.warnings


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_stored_element_is_accounted_once(name: str) -> None:
    t = analyze(SAMPLES / f"{name}.onnx", strict=True).totals
    assert t.params + t.quantization_constants + t.other_constants == t.stored_elements
    assert t.param_bytes + t.quantization_bytes + t.other_bytes == t.stored_bytes


def test_tied_weight_is_shared_on_both_users() -> None:
    report = analyze(SAMPLES / "tied_lm.onnx", strict=True)
    assert layer(report, "embed").shared and layer(report, "lm_head").shared
    assert layer(report, "embed").params == layer(report, "lm_head").params == 1600
    assert not layer(report, "ln").shared


def test_qdq_quantization_constants_are_apart() -> None:
    t = analyze(SAMPLES / "qdq_cnn.onnx", strict=True).totals
    # conv: 8 scales + 8 zero points; dense: 1 + 1; input activation: 1 + 1
    assert t.quantization_constants == 8 + 8 + 1 + 1 + 1 + 1
    assert t.other_constants == 0


def test_external_data_model_counts_without_reading_weights(tmp_path) -> None:
    report = analyze(SAMPLES / "external" / "lenet5_external.onnx", strict=True)
    assert report.totals.params == EXPECTED["lenet5"][0]
    assert any(w.location.startswith("external:") for entry in report.layers for w in entry.weights)


def test_lenet_macs_by_hand() -> None:
    report = analyze(SAMPLES / "lenet5.onnx", strict=True)
    conv1 = 6 * 28 * 28 * (1 * 5 * 5)
    conv2 = 16 * 10 * 10 * (6 * 5 * 5)
    fcs = 400 * 120 + 120 * 84 + 84 * 10
    assert report.totals.macs.value == conv1 + conv2 + fcs
    assert layer(report, "conv1").macs.value == conv1
