"""Patterns held-out real models showed onnx-audit getting wrong, as small real exports
(sample_models/exported/heldout/export_heldout.py: torch's two exporters and onnxruntime's
optimizer). Expected numbers are hand arithmetic from the architectures in that script."""

from __future__ import annotations

import pytest

from analyzer import analyze
from tests.conftest import SAMPLES

HELDOUT = SAMPLES / "exported" / "heldout"


def _report(name: str, **shapes: tuple[int, ...]):  # type: ignore[no-untyped-def]
    return analyze(HELDOUT / f"{name}.onnx", input_shapes=shapes, strict=True)


@pytest.mark.parametrize("exporter", ["ts", "dynamo"])
def test_position_table_sliced_to_the_sequence(exporter: str) -> None:
    """Embedding(100, 16) + a learned [32, 16] table sliced to the sequence length."""
    assert _report(f"r1_pos_slice.{exporter}").totals.params == 100 * 16 + 32 * 16


@pytest.mark.parametrize("exporter", ["ts", "dynamo"])
def test_rotary_inverse_frequencies_are_a_buffer(exporter: str) -> None:
    """Linear(16, 16, bias=False) scaled by cos(positions x inv_freq): inv_freq is a buffer."""
    assert _report(f"r2_inv_freq.{exporter}").totals.params == 16 * 16


@pytest.mark.parametrize("name", ["r3_rms_base.ts", "r3_simplified_ln"])
def test_rmsnorm_plain_and_fused_by_the_optimizer(name: str) -> None:
    """RMSNorm weight [16] + Linear(16, 16, bias=False); at x=2,7,16 the Linear costs
    2 x 7 x 16 x 16 MACs, also after the optimizer fused RMSNorm into the onnx-domain
    SimplifiedLayerNormalization."""
    report = _report(name, x=(2, 7, 16))
    assert report.totals.params == 16 + 16 * 16
    assert report.totals.macs.value == 2 * 7 * 16 * 16
    assert not any("unhandled" in w for w in report.warnings)


@pytest.mark.parametrize("name", ["r4_patch_base.ts", "r4_nchwc_conv"])
def test_patch_embedding_plain_and_blocked_layout(name: str) -> None:
    """Conv2d(3, 16, 8, stride 8) on 32x32 -> 4x4 patches, then Linear(16, 16): the level-99
    optimizer's com.microsoft.nchwc Conv keeps the same numbers."""
    report = _report(name, x=(1, 3, 32, 32))
    assert report.totals.params == 16 * 3 * 8 * 8 + 16 + 16 * 16 + 16
    conv = 16 * 4 * 4 * (3 * 8 * 8)
    linear = 4 * 4 * 16 * 16
    assert report.totals.macs.value == conv + linear


@pytest.mark.parametrize("name", ["r5_dimexpr.dynamo", "r5_dimexpr_reshape.dynamo"])
def test_dynamo_dim_formulas_follow_the_input_shape(name: str) -> None:
    """Conv1d(8, 16, 3, stride 2, padding 1) on length 20 -> (20 + 2 - 3) // 2 + 1 = 10 steps,
    then Linear(16, 16) per step; dynamo declares the length as (((s53 - 1)//2)) + 1."""
    report = _report(name, x=(1, 8, 20))
    steps = (20 + 2 - 3) // 2 + 1
    assert report.totals.params == 16 * 8 * 3 + 16 + 16 * 16 + 16
    assert report.totals.macs.value == 16 * steps * 8 * 3 + steps * 16 * 16


def test_head_split_from_shape_arithmetic() -> None:
    """x [1, 7, 64] viewed as 4 heads of 64 // 4 = 16: q @ q^T per head."""
    assert _report("r6_shape_div.ts", x=(1, 7, 64)).totals.macs.value == 4 * 7 * 7 * 16


def test_a_head_of_the_tables_transposed_shape_is_counted_as_stored() -> None:
    """Embedding(64, 16) then an untied Linear(16, 64) writing the output: torch's count, and
    the copy note stays conditional (shapes alone cannot tell a copy; --inspect-weights can).
    An up-projection of that shape inside a network gets no note (tests/test_counting.py)."""
    report = _report("r7_false_tie.dynamo")
    assert report.totals.params == 64 * 16 + 16 * 64 + 64
    assert all("if the two are tied" in n for n in report.notes if "transposed" in n)


@pytest.mark.parametrize("exporter", ["ts", "dynamo"])
def test_batchnorm_folded_by_either_exporter_is_noted(exporter: str) -> None:
    """Depthwise Conv1d(8, 8, 3, groups=8) + BatchNorm1d(8): torch counts 8 x 3 + 8 + 2 x 8;
    both exporters fold the BatchNorm, storing 8 x 3 + 8, and the report says so."""
    report = _report(f"r8_bnfold.{exporter}")
    assert report.totals.params == 8 * 3 + 8 < 8 * 3 + 8 + 2 * 8
    assert any("folded" in note for note in report.notes)
