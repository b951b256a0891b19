"""Models from real exporters (torch both exporters, tf2onnx, skl2onnx, onnxruntime quantization).

Expected numbers come from each framework, written by sample_models/exported/export_*.py into
<model>.counts.json; the adjustments below are the exporters' own doing, each explained.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from analyzer import analyze
from tests.conftest import SAMPLES, analyze_only

EXPORTED = SAMPLES / "exported"
MANIFEST = json.loads((EXPORTED / "manifest.json").read_text(encoding="utf-8"))["models"]
KERNEL_TAPS_2D, KERNEL_TAPS_1D = 3 * 3, 3

# The exporter folded BatchNorm into the conv: the file stores fewer values than the framework
# counts. Expected = every float initializer element, counted here with numpy, and a note.
FOLDED = {
    "bn_net_eval.torchscript.onnx",
    "bn_net_eval.dynamo.onnx",
    "keras_conv_gap_dense.onnx",
    "resnet_style.torchscript.onnx",
    "resnet_style.dynamo.onnx",
}
# The exporter stored the tied 100x32 embedding again, transposed, for the output MatMul.
TIED_COPY = {
    "tied_embedding.torchscript.onnx": 100 * 32,
    "tied_embedding.dynamo.onnx": 100 * 32,
    "gpt2_tied.torchscript.onnx": 1000 * 32,
}
# Keras LSTM(24) has one bias per gate; ONNX's LSTM B also holds the recurrent one, which
# tf2onnx fills with 4 x 24 zeros.
ZERO_RECURRENT_BIAS = {"keras_lstm_gru.onnx": 4 * 24}


def counts(entry: dict[str, str]) -> dict[str, object]:
    data: dict[str, object] = json.loads((EXPORTED / entry["counts"]).read_text(encoding="utf-8"))
    return data


def float_elements(path: Path) -> int:
    model = onnx.load(path)
    return sum(
        int(np.prod(t.dims, dtype=np.int64))
        for t in model.graph.initializer
        if numpy_helper.to_array(t).dtype.kind == "f"
    )


def expected_flagged(data: dict[str, object]) -> set[str]:
    """The framework-side list, kept where a 3x3 (or 3-tap) conv saves at least 2x (--min-ratio)."""
    shapes = data.get("flagged_shapes") or {}
    assert isinstance(shapes, dict)
    keep = set()
    for weight, shape in shapes.items():
        positions, taps = (
            (shape["H"] * shape["W"], KERNEL_TAPS_2D)
            if "H" in shape
            else (shape["L"], KERNEL_TAPS_1D)
        )
        if positions / taps >= 2:
            keep.add(weight)
    return keep


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["onnx"])
def test_totals_equal_the_frameworks_count(entry: dict[str, str]) -> None:
    data = counts(entry)
    report = analyze(EXPORTED / entry["onnx"], strict=True)
    name = entry["onnx"]
    params, bn = int(data["params"]), int(data.get("bn_buffers", 0))  # type: ignore[call-overload]
    distinct = int(data.get("params_distinct_values", params))  # type: ignore[call-overload]
    if name in FOLDED:
        assert report.totals.params == float_elements(EXPORTED / name) < params + bn
        assert any("folded" in note for note in report.notes)
    elif name in TIED_COPY:
        assert report.totals.params == params + TIED_COPY[name]
        assert any("transposed copy" in note for note in report.notes)
    elif name in ZERO_RECURRENT_BIAS:
        assert report.totals.params == params + ZERO_RECURRENT_BIAS[name]
        assert any(f"all zeros ({ZERO_RECURRENT_BIAS[name]} values)" in n for n in report.notes)
    else:
        # identical-valued tensors merged by the exporter are stored (and counted) once
        assert report.totals.params == distinct + bn
        assert report.totals.non_trainable == bn


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["onnx"])
def test_flagged_layers_are_exactly_the_dense_on_spatial_ones(entry: dict[str, str]) -> None:
    data = counts(entry)
    report = analyze_only("ONX101", EXPORTED / entry["onnx"], strict=True)
    layers = {layer.name: layer for layer in report.layers}
    flagged = {
        w.tensor for f in report.findings for w in layers[f.node].weights if w.role == "weight"
    }
    assert flagged == expected_flagged(data)
    shapes = data.get("flagged_shapes") or {}
    for finding in report.findings:
        weight = next(w.tensor for w in layers[finding.node].weights if w.role == "weight")
        shape = shapes[weight]  # type: ignore[index]
        spatial = (shape["H"], shape["W"]) if "H" in shape else (shape["L"],)
        assert finding.detail.spatial == spatial and finding.detail.units == shape["units"]
        if "C" in shape:
            assert finding.detail.channels == shape["C"]


@pytest.mark.parametrize(
    ("name", "scales"),
    [("quant_dynamic.onnx", 1 + 1 + 1 + 1), ("quant_dynamic_per_channel.onnx", 1 + 1 + 32 + 10)],
)
def test_dynamic_quantization_scales_are_quantization_constants(name: str, scales: int) -> None:
    """quantize_dynamic stores a scale and a zero point per weight (per tensor for conv1 and
    conv2; per channel for fc1's 32 and fc2's 10 units in the second file) and multiplies the
    scale into DynamicQuantizeLinear's: never a parameter."""
    totals = analyze(EXPORTED / name, strict=True).totals
    assert totals.quantization_constants == 2 * scales
    assert totals.other_constants == 2 * 4  # the conv biases' int64[4] reshape targets
