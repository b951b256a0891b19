"""onnxruntime features: verify, reading-time external data checks, pricing, no telemetry."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime  # noqa: F401  (the test extra installs it: missing must fail, not skip)
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer import analyze
from analyzer.core.errors import MissingExternalDataError, UnsafeExternalDataError
from analyzer.runtime import pricing, reading
from analyzer.runtime import verify as runtime
from tests.conftest import analyze_only

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


@pytest.mark.parametrize(
    ("name", "outputs"),
    [
        ("seed_mlp.onnx", {"logits": (1, 32)}),
        ("lenet5.onnx", {"y": (1, 10)}),
        ("tiny_transformer.onnx", {"y": (1, 8, 16)}),  # int64 ids: zeros are valid indices
        ("qdq_cnn.onnx", {"y": (1, 10)}),
        ("external/lenet5_external.onnx", {"y": (1, 10)}),
    ],
)
def test_verify_sample_models(name: str, outputs: dict[str, tuple[int, ...]]) -> None:
    path = SAMPLES / name
    result = runtime.verify(path, {}, analyze(path))
    assert result.ok, result.error
    assert result.error == ""
    assert result.runtime.startswith("onnxruntime ")
    assert {o.name: o.shape for o in result.outputs} == outputs
    for check in result.outputs:
        assert check.matches, check
        assert check.dtype == "float"
        assert (check.nan, check.inf) == (0, 0)


def test_verify_uses_input_shapes_for_dynamic_dims() -> None:
    path = SAMPLES / "seed_mlp.onnx"
    shapes = {"image": (3, 1, 10, 10)}
    result = runtime.verify(path, shapes, analyze(path, input_shapes=shapes))
    assert result.ok
    (check,) = result.outputs
    assert check.shape == (3, 32)
    assert check.expected == (3, 32)
    assert check.matches


def test_verify_flags_a_shape_that_disagrees_with_static_inference() -> None:
    path = SAMPLES / "seed_mlp.onnx"
    report = analyze(path, input_shapes={"image": (2, 1, 10, 10)})
    result = runtime.verify(path, {}, report)  # the run uses batch 1, the report says 2
    assert result.ok
    assert not result.outputs[0].matches


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save_model(model, path)
    return path


def _relu_model(op: str = "Relu", domain: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], domain=domain)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def test_verify_reports_a_load_failure_in_one_line(tmp_path: Path) -> None:
    path = _save(_relu_model("NoSuchOp", "com.example"), tmp_path / "custom.onnx")
    result = runtime.verify(path, {})
    assert not result.ok
    assert result.error.startswith("load failed: ")
    assert "NoSuchOp" in result.error
    assert "\n" not in result.error
    assert result.outputs == ()


def test_verify_reports_a_run_failure_in_one_line(tmp_path: Path) -> None:
    shape = numpy_helper.from_array(np.array([4, -1], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    result = runtime.verify(_save(model, tmp_path / "reshape.onnx"), {})  # 6 values into [4, -1]
    assert not result.ok
    assert result.error.startswith("run failed: ")
    assert "\n" not in result.error


def test_verify_counts_nan_and_inf(tmp_path: Path) -> None:
    log = _save(_relu_model("Log"), tmp_path / "log.onnx")  # log of normal samples: NaN, -inf
    result = runtime.verify(log, {"x": (64, 4)})
    assert result.ok
    (check,) = result.outputs
    assert check.nan > 0
    assert check.nan + check.inf <= 256


NO_NETWORK = textwrap.dedent(
    """
    import json, os, socket, sys

    seen = {}

    class Watch:
        def find_spec(self, name, path=None, target=None):
            if name == "onnxruntime" and "env" not in seen:
                seen["env"] = os.environ.get("ORT_DISABLE_TELEMETRY")
            return None

    sys.meta_path.insert(0, Watch())
    calls = []

    def refuse(*args, **kwargs):
        calls.append(repr(args)[:80])
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse

    import analyzer
    from analyzer.runtime import pricing

    from analyzer.runtime import verify as runtime
    report = analyzer.analyze(sys.argv[1])
    static_imported = "onnxruntime" in sys.modules
    result = runtime.verify(sys.argv[1], {}, report)
    priced = pricing.price_findings(report, batch=2, budget_s=0.01)
    sockets = []
    for fd in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            sockets.append(target)
    print(json.dumps({
        "env": seen.get("env"), "ok": result.ok, "calls": calls, "sockets": sockets,
        "static_imported": static_imported,
        "priced": priced.findings[0].pricing is not None,
    }))
    """
)


def test_import_and_verify_open_no_socket_and_write_no_cache(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(NO_NETWORK)
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        ORT_DISABLE_TELEMETRY="0",  # a user's opt-in must not win: the audit never phones home
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, str(script), str(SAMPLES / "seed_mlp.onnx")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["env"] == "1", "ORT_DISABLE_TELEMETRY must be 1 before onnxruntime is imported"
    assert not found["static_imported"], "analyze() must not import onnxruntime"
    assert found["ok"]
    assert found["priced"]
    assert found["calls"] == []
    assert found["sockets"] == []
    assert list(home.iterdir()) == [], "onnxruntime telemetry wrote under HOME"


def test_missing_onnxruntime_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer.core.errors import UsageError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(UsageError) as caught:
        runtime.import_onnxruntime()
    assert "pip install 'onnx-audit[runtime]'" in caught.value.line()


# --------------------------------------------------------------------------- external data


def _external_model(folder: Path, location: str = "weights.bin") -> tuple[Path, np.ndarray]:
    weight = np.arange(64 * 10, dtype=np.float32).reshape(64, 10) / 100.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location=location, size_threshold=0)
    return path, weight


def test_plain_external_data_passes_and_reads_the_same_bytes(tmp_path: Path) -> None:
    path, weight = _external_model(tmp_path / "m")
    reading.check_external_data_for_reading(path)
    model = reading.load_model_for_reading(path)
    (tensor,) = model.graph.initializer
    assert tensor.data_location == TensorProto.DEFAULT
    np.testing.assert_array_equal(numpy_helper.to_array(tensor), weight)
    assert runtime.verify(path, {}).ok


def test_hard_linked_external_data_is_refused(tmp_path: Path) -> None:
    path, _ = _external_model(tmp_path / "m")
    os.link(tmp_path / "m" / "weights.bin", tmp_path / "elsewhere.bin")
    with pytest.raises(UnsafeExternalDataError, match="hard link"):
        reading.check_external_data_for_reading(path)
    with pytest.raises(UnsafeExternalDataError, match="hard link"):
        runtime.verify(path, {})  # onnxruntime never sees it
    with pytest.raises(UnsafeExternalDataError):
        reading.load_model_for_reading(path)


def test_symlinked_external_data_is_refused_even_inside_the_folder(tmp_path: Path) -> None:
    path, _ = _external_model(tmp_path / "m")
    real = tmp_path / "m" / "real.bin"
    (tmp_path / "m" / "weights.bin").rename(real)
    (tmp_path / "m" / "weights.bin").symlink_to(real)
    with pytest.raises(UnsafeExternalDataError, match="symbolic link"):
        reading.check_external_data_for_reading(path)


def test_symlinked_folder_on_the_way_is_refused(tmp_path: Path) -> None:
    path, _ = _external_model(tmp_path / "m", location="sub/weights.bin")
    (tmp_path / "m" / "sub").rename(tmp_path / "m" / "real_sub")
    (tmp_path / "m" / "sub").symlink_to(tmp_path / "m" / "real_sub")
    with pytest.raises(UnsafeExternalDataError, match="symbolic link"):
        reading.check_external_data_for_reading(path)


def test_symlinked_model_with_external_data_is_refused(tmp_path: Path) -> None:
    path, _ = _external_model(tmp_path / "m")
    link = tmp_path / "m" / "link.onnx"
    link.symlink_to(path)
    with pytest.raises(UnsafeExternalDataError, match="symbolic link"):
        reading.check_external_data_for_reading(link)


def test_external_data_outside_the_folder_missing_or_over_the_cap(tmp_path: Path) -> None:
    path, _ = _external_model(tmp_path / "m")
    with pytest.raises(UnsafeExternalDataError, match="over 100 bytes"):
        reading.check_external_data_for_reading(path, max_bytes=100)
    (tmp_path / "m" / "weights.bin").rename(tmp_path / "outside.bin")
    with pytest.raises(MissingExternalDataError):
        reading.check_external_data_for_reading(path)
    (tmp_path / "m" / "weights.bin").symlink_to(tmp_path / "outside.bin")
    with pytest.raises(UnsafeExternalDataError):
        reading.check_external_data_for_reading(path)


def test_truncated_external_data_is_refused(tmp_path: Path) -> None:
    path, _ = _external_model(tmp_path / "m")
    data = tmp_path / "m" / "weights.bin"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(UnsafeExternalDataError, match="beyond"):
        reading.check_external_data_for_reading(path)


# --------------------------------------------------------------------------- pricing


def test_pricing_fills_both_latencies() -> None:
    report = analyze_only("ONX101", SAMPLES / "seed_mlp.onnx")
    priced = pricing.price_findings(report, batch=4, budget_s=0.01)
    (finding,) = priced.findings
    price = finding.pricing
    assert price is not None
    assert price.batch == 4
    for value in (price.dense_ms, price.conv_ms, price.dense_ms_batch, price.conv_ms_batch):
        assert value > 0
    assert price.runtime.startswith("onnxruntime ")
    assert "CPUs" in price.machine
    assert priced.layers == report.layers
    assert report.findings[0].pricing is None  # the input report is untouched


@pytest.mark.parametrize("sample", ["seed_mlp.onnx", "lenet5.onnx", "qdq_cnn.onnx"])
@pytest.mark.parametrize("kernel", [3, 2])
def test_priced_models_agree_in_output_shape(sample: str, kernel: int) -> None:
    ort = runtime.import_onnxruntime()
    (finding,) = analyze_only("ONX101", SAMPLES / sample, kernel=kernel).findings
    dense = ort.InferenceSession(pricing.dense_model(finding), providers=["CPUExecutionProvider"])
    conv = ort.InferenceSession(
        pricing.conv_block_model(finding), providers=["CPUExecutionProvider"]
    )
    batch = 3
    rng = np.random.default_rng(0)
    for session in (dense, conv):
        dims = [batch if isinstance(d, str) else d for d in session.get_inputs()[0].shape]
        (out,) = session.run(None, {"x": rng.standard_normal(dims).astype(np.float32)})
        assert out.shape == (batch, finding.detail.units)


@pytest.mark.parametrize(
    ("layout", "channels", "spatial", "dense_input"),
    [
        ("NHWC", 3, (4, 5), [4, 5, 3]),
        ("NLC", 6, (7,), [7, 6]),
        ("NCL", 6, (7,), [6, 7]),
        ("image", 1, (6, 6), [6, 6]),
    ],
)
def test_priced_models_follow_the_layout(
    layout: str, channels: int, spatial: tuple[int, ...], dense_input: list[int]
) -> None:
    base = analyze_only("ONX101", SAMPLES / "seed_mlp.onnx").findings[0]
    features = channels * int(np.prod(spatial))
    detail = dataclasses.replace(
        base.detail,
        layout=layout,
        channels=channels,
        spatial=spatial,
        in_features=features,
        units=5,
    )
    finding = dataclasses.replace(base, detail=detail)
    dense = onnx.load_from_string(pricing.dense_model(finding))
    dims = [d.dim_value for d in dense.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert dims == dense_input
    priced = pricing.price_finding(finding, batch=2, budget_s=0.005)
    assert priced.conv_ms > 0
