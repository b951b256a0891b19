"""The onnxruntime features as the CLI exposes them: verify, --verify, --emit-candidate."""

from __future__ import annotations

import json

import onnx

from analyzer import analyze
from analyzer.cli import main
from tests.conftest import SAMPLES


def test_verify_runs_and_prices_each_finding(capsys) -> None:
    code = main(
        ["verify", str(SAMPLES / "seed_mlp.onnx"), "--format", "json", "--price-batch", "4"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["verification"]["ok"] is True
    assert data["verification"]["outputs"][0]["shape"] == [1, 32]
    price = data["findings"][0]["pricing"]
    assert price["batch"] == 4 and price["dense_ms"] > 0 and price["conv_ms"] > 0


def test_a_model_onnxruntime_cannot_run_exits_1(capsys, tmp_path) -> None:
    model = onnx.load(SAMPLES / "seed_cnn.onnx")
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("group", 5))  # 1 channel / 5
    path = tmp_path / "broken.onnx"
    onnx.save(model, path)
    code = main([str(path), "--verify", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out)["verification"]["ok"] is False
    assert err.count("\n") == 1 and "onnxruntime cannot run the model" in err


def test_emit_candidate_has_the_predicted_params_and_never_overwrites(capsys, tmp_path) -> None:
    out = tmp_path / "candidate.onnx"
    assert (
        main(
            [
                str(SAMPLES / "lenet5.onnx"),
                "--emit-candidate",
                str(out),
                "-o",
                str(tmp_path / "r.txt"),
            ]
        )
        == 0
    )
    # fc1 (400 -> 120 dense, 48,000 + 120) becomes a 3x3 conv with 120 filters (16*9*120 + 120)
    predicted = 61_706 - (400 * 120 + 120) + (16 * 9 * 120 + 120)
    assert analyze(out).totals.params == predicted
    onnx.checker.check_model(onnx.load(out), full_check=True)
    before = out.read_bytes()
    assert main([str(SAMPLES / "lenet5.onnx"), "--emit-candidate", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
