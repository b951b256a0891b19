"""--inspect-weights end to end: each hand-built defect fires exactly its weight rule
(ONX201-ONX205), clean real exports fire none, the report round-trips, --fail-on ONX201 fails
CI, and the default path never opens a weight byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer import analyze
from analyzer.cli.app import main
from analyzer.core.results import Finding, Report
from analyzer.report.reporters import render
from analyzer.report.reporters.json_reporter import render_json
from analyzer.report.serialize import report_from_data

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
RNG = np.random.default_rng(16)
WEIGHT_RULES = ("ONX201", "ONX202", "ONX203", "ONX204", "ONX205")


def weight_findings(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.code in WEIGHT_RULES]


def _normal(*dims: int) -> np.ndarray:
    """Weights in [0.5, 1.5) with random signs: nothing near zero, nothing near float16's max."""
    values = RNG.uniform(0.5, 1.5, size=dims) * RNG.choice([-1.0, 1.0], size=dims)
    return values.astype(np.float32)


def _dense_model(weights: dict[str, np.ndarray], trans_b: bool = False) -> onnx.ModelProto:
    """x [N, K] -> one MatMul per weight (Gemm when trans_b), outputs y0, y1, ..."""
    nodes, outputs = [], []
    for i, (name, weight) in enumerate(weights.items()):
        if trans_b:
            nodes.append(helper.make_node("Gemm", ["x", name], [f"y{i}"], f"gemm{i}", transB=1))
            units = weight.shape[0]
        else:
            nodes.append(helper.make_node("MatMul", ["x", name], [f"y{i}"], f"dense{i}"))
            units = weight.shape[1]
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["N", units]))
    k = next(iter(weights.values())).shape[1 if trans_b else 0]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k])],
        outputs,
        initializer=[numpy_helper.from_array(w, n) for n, w in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _issues(tmp_path: Path, model: onnx.ModelProto) -> list[tuple[str, str]]:
    path = tmp_path / "m.onnx"
    onnx.save_model(model, path)
    report = analyze(path, inspect_weights=True, sandbox=False)
    assert report.weights is not None
    return [(f.code, getattr(f.detail, "tensor", "")) for f in weight_findings(report)]


def test_nan_fires_onx201_only(tmp_path: Path) -> None:
    weight = _normal(64, 32)
    weight[3, 5] = np.nan
    assert _issues(tmp_path, _dense_model({"w": weight})) == [("ONX201", "w")]


def test_inf_fires_onx201_only(tmp_path: Path) -> None:
    weight = _normal(64, 32)
    weight[0, 0] = -np.inf
    path = tmp_path / "m.onnx"
    onnx.save_model(_dense_model({"w": weight}), path)
    report = analyze(path, inspect_weights=True, sandbox=False)
    (issue,) = weight_findings(report)
    assert (issue.code, issue.node, getattr(issue.detail, "layers", ())) == (
        "ONX201",
        "dense0",
        ("dense0",),
    )
    assert "0 NaN and 1 Inf" in issue.message


def test_all_zero_conv_fires_onx202_only(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "k"], ["y"], "conv", pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        initializer=[numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "k")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert _issues(tmp_path, model) == [("ONX202", "k")]


def test_zero_output_channels_follow_the_op_axis(tmp_path: Path) -> None:
    gemm = _normal(16, 32)  # transB=1: 16 output channels are rows
    gemm[[2, 5], :] = 0.0
    path = tmp_path / "gemm.onnx"
    onnx.save_model(_dense_model({"g": gemm}, trans_b=True), path)
    (issue,) = weight_findings(analyze(path, inspect_weights=True, sandbox=False))
    assert issue.code == "ONX202" and "2 of 16 output channels" in issue.message
    assert issue.params_saved == 2 * 32  # two rows of 32 weights

    matmul = _normal(32, 16)  # MatMul: 16 output channels are columns
    matmul[:, [1, 7, 9]] = 0.0
    inputs_only = _normal(32, 16)  # zero rows of a MatMul weight are inputs, not outputs
    inputs_only[[0, 4], :] = 0.0
    path = tmp_path / "matmul.onnx"
    onnx.save_model(_dense_model({"m": matmul, "rows": inputs_only}), path)
    (issue,) = weight_findings(analyze(path, inspect_weights=True, sandbox=False))
    assert (issue.code, getattr(issue.detail, "tensor", "")) == ("ONX202", "m")
    assert "3 of 16 output channels" in issue.message
    assert issue.params_saved == 3 * 32  # three columns of 32 weights


def test_duplicate_fires_onx203_on_the_copy_only(tmp_path: Path) -> None:
    weight = _normal(64, 32)
    model = _dense_model({"a": weight, "b": weight.copy()})
    assert _issues(tmp_path, model) == [("ONX203", "b")]


def test_transposed_copy_fires_onx203(tmp_path: Path) -> None:
    table = _normal(100, 32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["emb", "ids"], ["h"], "embed"),
            helper.make_node("MatMul", ["h", "head"], ["y"], "lm_head"),
        ],
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 100])],
        initializer=[
            numpy_helper.from_array(table, "emb"),
            numpy_helper.from_array(np.ascontiguousarray(table.T), "head"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save_model(model, path)
    report = analyze(path, inspect_weights=True, sandbox=False)
    (issue,) = weight_findings(report)
    assert (issue.code, issue.node, getattr(issue.detail, "tensor", "")) == (
        "ONX203",
        "lm_head",
        "head",
    )
    assert "transpose of 'emb'" in issue.message and f"{100 * 32 * 4:,} bytes" in issue.message
    assert issue.params_saved == 100 * 32
    assert report.weights is not None
    assert {t.name: t.layers for t in report.weights} == {
        "emb": ("embed",),
        "head": ("lm_head",),
    }


def test_almost_transposed_copy_is_not_claimed(tmp_path: Path) -> None:
    table = _normal(100, 32)
    head = np.ascontiguousarray(table.T)
    head[7, 3], head[8, 3] = head[8, 3], head[7, 3]  # same statistics, different layout
    model = _dense_model({"a": table, "b": _normal(100, 32)})
    model.graph.initializer.append(numpy_helper.from_array(head, "head"))
    assert _issues(tmp_path, model) == []


def test_fp16_overflow_and_underflow_fire_onx204_only(tmp_path: Path) -> None:
    over = _normal(64, 32)
    over[10, 10] = 1e5
    under = _normal(64, 32)
    under.reshape(-1)[: under.size // 5] = 1e-6  # 20% below float16's smallest normal
    few = _normal(64, 32)
    few.reshape(-1)[: few.size // 20] = 1e-6  # 5%: float16 keeps them as subnormals, no finding
    model = _dense_model({"over": over, "under": under, "few": few})
    assert _issues(tmp_path, model) == [("ONX204", "over"), ("ONX204", "under")]


def test_ninety_percent_sparse_layer_fires_onx205_only(tmp_path: Path) -> None:
    weight = _normal(200, 100)
    weight[RNG.random((200, 100)) < 0.9] = 0.0
    assert (weight == 0).all(axis=0).sum() == 0 and (weight == 0).all(axis=1).sum() == 0
    assert _issues(tmp_path, _dense_model({"w": weight})) == [("ONX205", "w")]


CLEAN = (
    "lenet5.torchscript.onnx",
    "resnet_style.dynamo.onnx",
    "bert_tiny.onnx",
    "crnn_lstm.onnx",
    "bn_net_eval.torchscript.onnx",
    "quant_static_qdq.onnx",
)


@pytest.mark.parametrize("name", CLEAN)
def test_clean_real_exports_fire_nothing(name: str) -> None:
    report = analyze(SAMPLES / "exported" / name, inspect_weights=True)
    assert report.weights, name
    assert weight_findings(report) == [], [f.message for f in weight_findings(report)]
    assert report.unread_weights == ()


def test_legacy_tied_embedding_export_is_found_transposed() -> None:
    """The torchscript export of a tied embedding stores the head as a transposed copy."""
    report = analyze(SAMPLES / "exported" / "tied_embedding.torchscript.onnx", inspect_weights=True)
    found = [(f.code, "transpose of 'emb.weight'" in f.message) for f in weight_findings(report)]
    assert found == [("ONX203", True)]


def test_report_with_weights_round_trips_through_json(tmp_path: Path) -> None:
    weight = _normal(64, 32)
    weight[0, 0] = np.nan
    path = tmp_path / "m.onnx"
    onnx.save_model(_dense_model({"w": weight, "z": np.zeros((64, 8), np.float32)}), path)
    report = analyze(path, inspect_weights=True, sandbox=False)
    assert report.weights is not None and weight_findings(report)
    assert report_from_data(json.loads(render_json(report))) == report
    plain = analyze(path, sandbox=False)
    assert plain.weights is None
    assert report_from_data(json.loads(render_json(plain))) == plain


def _external_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(
        _dense_model({"w": _normal(64, 32)}),
        path,
        save_as_external_data=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    return path


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process; as root, without capabilities, so chmod 000 binds."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root without setpriv: chmod 000 would not stop a read")
        prefix = [setpriv, "--bounding-set", "-all", "--inh-caps", "-all"]
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_default_path_never_opens_weight_bytes(tmp_path: Path) -> None:
    path = _external_model(tmp_path / "model")
    data = path.with_name("model.onnx.data")
    data.chmod(0o000)
    plain = _cli([str(path), "--format", "json"], tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["weights"] is None
    inspected = _cli([str(path), "--inspect-weights"], tmp_path)
    assert inspected.returncode == 2
    assert "Traceback" not in inspected.stderr
    (line,) = inspected.stderr.strip().splitlines()
    assert "cannot open external data 'model.onnx.data'" in line and "ermission denied" in line


def test_default_path_opens_no_file_beside_the_model_in_process(tmp_path: Path) -> None:
    """An audit hook sees every open() Python makes: the static analysis never names .data."""
    path = _external_model(tmp_path / "model")
    opened: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if active[0] and event == "open" and args and isinstance(args[0], str | bytes | Path):
            opened.append(os.fsdecode(args[0]))  # type: ignore[arg-type]

    sys.addaudithook(hook)
    try:
        analyze(path, sandbox=False)
        assert not [p for p in opened if p.endswith(".data")]
        analyze(path, sandbox=False, inspect_weights=True)
        assert [p for p in opened if p.endswith("model.onnx.data")]
    finally:
        active[0] = False


def test_fifo_external_data_is_a_clean_error(tmp_path: Path) -> None:
    path = _external_model(tmp_path / "model")
    data = path.with_name("model.onnx.data")
    data.unlink()
    os.mkfifo(data)
    result = _cli([str(path), "--inspect-weights"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a regular file" in result.stderr


def test_symlinked_external_data_is_refused(tmp_path: Path) -> None:
    path = _external_model(tmp_path / "model")
    data = path.with_name("model.onnx.data")
    data.rename(tmp_path / "model" / "real.data")
    data.symlink_to("real.data")
    assert main([str(path), "--inspect-weights", "--no-sandbox"]) == 2


def test_lenet5_external_with_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    path = SAMPLES / "external" / "lenet5_external.onnx"
    assert main([str(path), "--inspect-weights", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    stored = {t.name for t in onnx.load(str(path), load_external_data=False).graph.initializer}
    assert {t["name"] for t in data["weights"]} >= stored
    assert any(t["location"] == "lenet5_external.onnx.data" for t in data["weights"])
    assert data["unread_weights"] == []
    assert not [f for f in data["findings"] if f["code"] in WEIGHT_RULES]


def test_table_summary_fits_80_columns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weight = _normal(64, 32)
    weight[1, 1] = np.nan
    path = tmp_path / "a_rather_long_model_name_for_the_table.onnx"
    onnx.save_model(_dense_model({"w": weight, "copy": weight.copy()}), path)
    monkeypatch.setenv("COLUMNS", "80")
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", str(path), "--inspect-weights"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "ORT_DISABLE_TELEMETRY": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    start = lines.index(next(line for line in lines if line.startswith("Weights:")))
    block = lines[start : lines.index("", start)]
    assert block[0] == "Weights: 2 tensors read, 16.0 KB"
    assert "NaN 2, Inf 0 (in 2 tensors)" in block[1]
    assert "  copies of another tensor: 1 (8.0 KB)" in block
    start = lines.index(next(line for line in lines if line.startswith("Findings")))
    findings = [*lines[start:], ""]
    findings = findings[: findings.index("")]
    # the NaN in both 'w' and its copy; the copy: 64*32 float32 = 8,192 bytes
    assert sum(line.startswith("ONX201 non-finite-weights: ") for line in findings) == 2
    assert any(line.startswith("ONX203 duplicate-weights: dense1") for line in findings)


def test_inspect_weights_under_a_2gb_address_space_limit(tmp_path: Path) -> None:
    path = SAMPLES / "external" / "lenet5_external.onnx"
    command = f"ulimit -v 2000000 && '{sys.executable}' -m analyzer '{path}' --inspect-weights"
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Weights:" in result.stdout


def test_config_key_inspect_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.onnx-audit]\ninspect-weights = true\n")
    path = SAMPLES / "external" / "lenet5_external.onnx"
    config = str(tmp_path / "pyproject.toml")
    assert main([str(path), "--config", config, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights"]


def test_fail_on_onx201_fails_ci_on_a_broken_checkpoint(tmp_path: Path) -> None:
    """Through the CLI in its own process: exit 1 with --fail-on ONX201, 0 without it, and the
    rule finds nothing (exit 0) when the weights are not read."""
    weight = _normal(64, 32)
    weight[2, 2] = np.nan
    path = tmp_path / "broken.onnx"
    onnx.save_model(_dense_model({"w": weight}), path)
    failing = _cli([str(path), "--inspect-weights", "--fail-on", "ONX201"], tmp_path)
    assert failing.returncode == 1, failing.stderr
    assert "ONX201 non-finite-weights" in failing.stdout and "fail-on" in failing.stdout
    assert _cli([str(path), "--inspect-weights"], tmp_path).returncode == 0
    unread = _cli([str(path), "--fail-on", "ONX201", "--format", "json"], tmp_path)
    assert unread.returncode == 0, unread.stderr
    assert not [f for f in json.loads(unread.stdout)["findings"] if f["code"] in WEIGHT_RULES]


def test_weight_rules_obey_select_and_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SAMPLES / "rules" / "ONX201" / "bad.onnx")
    main([path, "--inspect-weights", "--format", "json", "--ignore", "ONX201"])
    assert "ONX201" not in {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
    main([path, "--inspect-weights", "--format", "sarif", "--select", "ONX201"])
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    (result,) = run["results"]
    assert (result["ruleId"], result["level"]) == ("ONX201", "error")
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["ONX201"]["defaultConfiguration"] == {"level": "error"}
    assert rules["ONX205"]["defaultConfiguration"] == {"level": "note"}
    assert rules["ONX203"]["properties"]["readsWeights"] is True


def test_diff_tells_two_weight_findings_on_one_layer_apart(tmp_path: Path) -> None:
    """A Gemm with NaN in both its weight and its bias: two ONX201 findings on one node. When
    the next version fixes the bias only, `diff` reports that one fixed and keeps the other."""
    from analyzer.report.diff import diff

    def gemm(bias: np.ndarray) -> Report:
        weight = _normal(8, 16)
        weight[0, 0] = np.nan
        graph = helper.make_graph(
            [helper.make_node("Gemm", ["x", "w", "b"], ["y"], "fc", transB=1)],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
            initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
        )
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.onnx"
        onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return analyze(path, inspect_weights=True, sandbox=False)

    broken = _normal(8)
    broken[2] = np.inf
    old, new = gemm(broken), gemm(_normal(8))
    assert sorted(f.detail.subject() for f in old.findings if f.code == "ONX201") == ["b", "w"]
    result = diff(old, new, None)
    assert [f.detail.subject() for f in result.fixed_findings if f.code == "ONX201"] == ["b"]
    assert not [f for f in result.new_findings if f.code == "ONX201"]


def test_table_summary_counts_fp16_unsafe_tensors_that_are_no_layers_weight(tmp_path) -> None:
    under = _normal(64, 32)
    under.reshape(-1)[: under.size // 5] = 1e-6  # 20% below float16's smallest normal
    model = _dense_model({"under": under})
    # y0 / eps: the eps scalar (1e-6, all of it below 2^-14) is stored but is no layer's weight
    model.graph.initializer.append(numpy_helper.from_array(np.array(1e-6, np.float32), "eps"))
    model.graph.node.append(helper.make_node("Div", ["y0", "eps"], ["z"], "scale"))
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    path = tmp_path / "m.onnx"
    onnx.save_model(model, path)
    text = render(analyze(path, inspect_weights=True, sandbox=False), "table")
    assert "fp16-unsafe float32 tensors: 2 (1 of them no layer's weight)" in text
