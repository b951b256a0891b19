"""Every op the installed onnx defines, and every op onnxruntime registers (any domain), is
decided: a visitor handles it, or ops.WEIGHT_FREE / ops.ATTRIBUTE_MODELS list it. A new onnx or
onnxruntime release that adds an op fails here until someone reads its schema and decides."""

from __future__ import annotations

import os

import onnx
import pytest

from analyzer.count import ops
from analyzer.count.visitors import registered

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

DECIDED = set(registered()) | ops.WEIGHT_FREE | ops.ATTRIBUTE_MODELS
TRAINING = "ai.onnx.preview.training"


def _ort_ops() -> set[tuple[str, str]]:
    """Every op onnxruntime registers, in every domain: com.microsoft, its layout domains
    (com.microsoft.nchwc, com.ms.internal.nhwc) and the extras it adds to the onnx domain."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

    return {
        ("" if s.domain == "ai.onnx" else s.domain, s.name) for s in ort_c.get_all_operator_schema()
    }


def test_every_onnx_op_is_decided() -> None:
    defined = {(s.domain, s.name) for s in onnx.defs.get_all_schemas_with_history()}
    defined = {("" if d == "ai.onnx" else d, n) for d, n in defined}
    missing = sorted(defined - DECIDED)
    assert not missing, f"ops of onnx {onnx.__version__} nobody decided on: {missing}"


def test_every_onnxruntime_op_is_decided() -> None:
    found = _ort_ops()
    assert {ops.MS, "com.microsoft.nchwc", ""} <= {domain for domain, _ in found}
    missing = sorted(found - DECIDED)
    assert not missing, f"onnxruntime ops nobody decided on: {missing}"


def test_no_op_is_both_weight_free_and_described_with_weights() -> None:
    with_weights = {k for k, spec in ops.CATALOGUE.items() if spec.weights}
    assert not with_weights & ops.WEIGHT_FREE


@pytest.mark.parametrize(("key", "spec"), sorted(ops.CATALOGUE.items()))
def test_catalogue_positions_exist_in_the_schema(key: tuple[str, str], spec: ops.OpSpec) -> None:
    """A described position must be a real input of the op (catches off-by-one tables)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

    schemas = [s for s in ort_c.get_all_operator_schema() if (s.domain, s.name) == key]
    if not schemas:
        schemas = [s for s in onnx.defs.get_all_schemas() if (s.domain, s.name) == key]
    assert schemas, f"{key} has no schema"
    count = max(len(s.inputs) for s in schemas)
    variadic = any(str(i.option).endswith("Variadic") for s in schemas for i in s.inputs)
    positions = set(spec.weights) | spec.quant | spec.other
    assert variadic or max(positions, default=0) < count, (key, sorted(positions), count)
