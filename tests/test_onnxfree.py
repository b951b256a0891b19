"""The pipeline without `import onnx`: message classes, helpers and the inference engine that
stand in for onnx's Python package, checked against it, and the fallback to the package."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from analyzer.core import onnxproto, protohelp
from analyzer.read.values.decode import tensor_values
from analyzer.view import engine
from tests.conftest import SAMPLES


def _run(code: str, **env: str) -> str:
    """stdout of `code` in a fresh interpreter with these extra environment variables."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return out.stdout.strip()


def test_the_classes_are_onnxs_own() -> None:
    """One class per descriptor: messages pass between onnx and the pipeline either way."""
    assert onnxproto.ModelProto is onnx.ModelProto
    assert onnxproto.TensorProto is onnx.TensorProto
    assert onnxproto.IR_VERSION == onnx.IR_VERSION


def test_loaded_by_path_then_onnx_imports_and_shares_them() -> None:
    code = (
        "import sys\n"
        "from analyzer.core import onnxproto\n"
        "assert 'onnx' not in sys.modules and onnxproto.SOURCE == 'onnx_ml_pb2'\n"
        "import onnx, onnx.helper\n"
        "m = onnxproto.ModelProto()\n"
        "m.graph.node.append(onnx.helper.make_node('Relu', ['x'], ['y']))\n"
        "back = onnx.ModelProto.FromString(m.SerializeToString())\n"
        "print(onnxproto.ModelProto is onnx.ModelProto, len(back.graph.node))\n"
    )
    assert _run(code) == "True 1"


@pytest.mark.parametrize("how", ["env", "layout"])
def test_the_plain_import_is_the_fallback(how: str) -> None:
    """ONNX_AUDIT_PROTO=onnx, or an onnx whose files are laid out otherwise: `import onnx`,
    and the same report."""
    model = str(SAMPLES / "seed_cnn.onnx")
    patch = ""
    if how == "layout":  # neither the generated module nor the extension is where expected
        patch = (
            "import os\n"
            "real = os.path.isfile\n"
            "os.path.isfile = lambda p: False if str(p).endswith(('onnx_ml_pb2.py', '.so')) "
            "and 'site-packages/onnx/' in str(p) else real(p)\n"
        )
    code = (
        f"{patch}import sys, analyzer, json\n"
        "from analyzer.core import onnxproto\n"
        "from analyzer.view import engine\n"
        f"report = analyzer.analyze({model!r})\n"
        "from analyzer.report.serialize import dumps\n"
        "print(onnxproto.SOURCE, engine.load(True).source, 'onnx' in sys.modules)\n"
        "print(dumps(report))\n"
    )
    env = {"ONNX_AUDIT_PROTO": "onnx"} if how == "env" else {}
    fallback = _run(code, **env).split("\n", 1)
    default = _run(code.replace(patch, "")).split("\n", 1)
    assert fallback[0] == "onnx onnx True"
    assert default[0] == "onnx_ml_pb2 extension False"
    assert fallback[1] == default[1]


def test_the_extension_alone_agrees_with_onnx() -> None:
    """What the inference child loads gives the versions onnx gives, and leaves `import onnx`
    working in that process."""
    code = (
        "import sys\n"
        "from analyzer.view import engine\n"
        "e = engine.load(True)\n"
        "print(e.source, 'onnx' in sys.modules, 'ml_dtypes' in sys.modules)\n"
        "import onnx\n"
        "p = engine.load(True)\n"
        "same = (e.version, e.ir_version, e.opsets) == (p.version, p.ir_version, p.opsets)\n"
        "print(p.source, same)\n"
    )
    assert _run(code).splitlines() == ["extension False False", "onnx True"]


def test_the_engine_infers_as_onnx_does() -> None:
    model = onnx.load(SAMPLES / "seed_cnn.onnx")
    plain = engine.load(False)
    ours = plain.infer_shapes(model, strict_mode=True, data_prop=False)
    theirs = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert ours.SerializeToString() == theirs.SerializeToString()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([1.5, -2.0], dtype=np.float16),
        np.array([[1, -2]], dtype=np.int64),
        np.array(7, dtype=np.int32),
        np.array([True, False]),
        np.array([3, 250], dtype=np.uint8),
        np.array([-0.5, 2.0], dtype=np.float64),
    ],
)
@pytest.mark.parametrize("raw", [True, False])
def test_tensor_values_match_numpy_helper(array: np.ndarray, raw: bool) -> None:
    tensor = numpy_helper.from_array(array, "t")
    if not raw:  # the typed fields
        tensor = helper.make_tensor("t", tensor.data_type, array.shape, array.reshape(-1))
    expected = numpy_helper.to_array(tensor)
    got = tensor_values(tensor)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_bfloat16_and_int4_values_are_read_as_numbers() -> None:
    bf16 = helper.make_tensor("b", onnx.TensorProto.BFLOAT16, [2], [1.0, -2.5])
    assert tensor_values(bf16).tolist() == [1.0, -2.5]
    int4 = helper.make_tensor("i", onnx.TensorProto.INT4, [3], [-1, 2, 7])
    assert tensor_values(int4).tolist() == [-1, 2, 7]
    with pytest.raises(ValueError):
        tensor_values(helper.make_tensor("s", onnx.TensorProto.STRING, [1], [b"x"]))


def test_helpers_match_onnx_helper() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1], alpha=0.5, mode="same")
    copied = protohelp.make_node("Conv", ["x", "w"], ["y"], node.attribute)
    assert copied == helper.make_node(
        "Conv", ["x", "w"], ["y"], pads=[1, 1], alpha=0.5, mode="same"
    )
    assert protohelp.make_node("Cast", ["x"], ["y"], to=1) == helper.make_node(
        "Cast", ["x"], ["y"], to=1
    )
    assert protohelp.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1]) == helper.make_node(
        "Transpose", ["x"], ["y"], perm=[0, 2, 1]
    )
    for attr in node.attribute:
        assert protohelp.attribute_value(attr) == helper.get_attribute_value(attr)
    for dims in ([2, 3], []):
        assert protohelp.make_tensor_value_info("v", 1, dims) == helper.make_tensor_value_info(
            "v", 1, dims
        )
    assert protohelp.int64_tensor("s", [0, -1, 8]) == numpy_helper.from_array(
        np.array([0, -1, 8], np.int64), "s"
    )
