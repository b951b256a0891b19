"""The command line as users and CI run it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.report.serialize import report_from_data
from tests.conftest import ROOT, SAMPLES

GOLDEN = Path(__file__).parent / "golden"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_golden_table_for_seed_mlp(capsys, monkeypatch, update_golden) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(capsys, "sample_models/seed_mlp.onnx")
    golden = GOLDEN / "seed_mlp.table.txt"
    if update_golden:
        golden.write_text(out, encoding="utf-8")
    assert (code, err) == (0, "")
    assert out == golden.read_text(encoding="utf-8")
    assert "3,200 weights" in out and "288 weights" in out and "11.1x fewer" in out


def test_json_round_trips(capsys) -> None:
    for name in ("seed_mlp", "tied_lm", "qdq_cnn", "tiny_transformer"):
        code, out, _ = run(capsys, str(SAMPLES / f"{name}.onnx"), "--format", "json")
        data = json.loads(out)
        assert code == 0 and data["format_version"] == 2
        report = report_from_data(data)
        assert json.loads(json.dumps(data)) == data
        from analyzer.report.serialize import to_data

        modules = data.pop("modules")  # derived from the layers: the reader skips it
        assert to_data(report) == data
        assert modules[0]["path"] == [] and modules[0]["nodes"] == len(report.layers)
        assert modules[0]["params"] == sum(layer["params"] for layer in data["layers"])


def test_json_holds_totals_layers_findings(capsys) -> None:
    _, out, _ = run(capsys, str(SAMPLES / "seed_mlp.onnx"), "--format", "json")
    data = json.loads(out)
    assert data["totals"]["params"] == 3232
    assert data["layers"][0]["name"] == "dense"
    assert data["layers"][0]["macs"] == "3,200·N"
    finding, dominant = data["findings"]
    detail = finding["detail"]
    assert (finding["code"], detail["dense_weights"], detail["conv_weights"]) == (
        "ONX101",
        3200,
        288,
    )
    assert finding["params_saved"] == 3200 - 288
    assert dominant["code"] == "ONX104"  # the one Gemm holds all 3,232 parameters


def test_input_shape_fixes_dynamic_batch(capsys) -> None:
    _, out, _ = run(
        capsys,
        str(SAMPLES / "seed_mlp.onnx"),
        "--format",
        "json",
        "--input-shape",
        "image=4,1,10,10",
    )
    assert json.loads(out)["totals"]["macs"] == 4 * 3200


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"hello, this is text\n", "not an ONNX model"),
        (b"PK\x03\x04" + b"\x00" * 40, "zip archive"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(capsys, tmp_path, content, expected) -> None:
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("onnx-audit: error: ")
    assert expected in err and str(path) in err


def test_truncated_model_exits_2(capsys, tmp_path) -> None:
    data = (SAMPLES / "lenet5.onnx").read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, str(path))
    assert code == 2 and err.count("\n") == 1 and "truncated" in err


def test_bad_input_shape_is_a_usage_error(capsys) -> None:
    code, _, err = run(capsys, str(SAMPLES / "seed_mlp.onnx"), "--input-shape", "nope=1,2")
    assert code == 2 and "no graph input 'nope'" in err and "image" in err


def test_batch_goes_on_past_a_bad_file(capsys, tmp_path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    code, out, err = run(capsys, str(bad), str(SAMPLES / "seed_cnn.onnx"))
    assert code == 2 and "bad.onnx" in err and "seed_cnn" in out


def test_output_file_is_written(capsys, tmp_path) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run(
        capsys, str(SAMPLES / "seed_mlp.onnx"), "--format", "json", "-o", str(target)
    )
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["totals"]["params"] == 3232


def test_rules_and_explain(capsys) -> None:
    code, out, _ = run(capsys, "rules")
    assert code == 0 and "ONX101" in out and "dense-on-spatial-input" in out
    code, out, _ = run(capsys, "explain", "ONX101")
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in out


def test_installed_entry_point_and_module_agree() -> None:
    """`python -m analyzer` is the same program as the console script."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [str(SAMPLES / "seed_mlp.onnx"), "--format", "json"]
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["params"] == 3232
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", str(ROOT / "nope.onnx")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("to_file", [True, False])
def test_file_name_that_is_not_utf8(capsys, tmp_path, to_file) -> None:
    """Found by a red-team sweep: the path's surrogates crashed the writer with a traceback.
    They are written as JSON escapes, so the report still parses and names the same path."""
    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/name\xff\xfe.onnx")
    Path(path).write_bytes((SAMPLES / "seed_mlp.onnx").read_bytes())
    out = tmp_path / "report.json"
    code, stdout, err = run(capsys, path, "--format", "json", *(["-o", str(out)] * to_file))
    assert code == 0 and "Traceback" not in err
    text = out.read_text(encoding="utf-8") if to_file else stdout
    assert json.loads(text)["path"] == path


def test_stdout_that_cannot_encode_a_name(tmp_path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "ORT_DISABLE_TELEMETRY": "1"}
    path = tmp_path / "r\u00e9seau.onnx"
    path.write_bytes((SAMPLES / "seed_mlp.onnx").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", str(path)], env=env, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert b"r\\xe9seau.onnx" in done.stdout


def test_folder_without_models_is_reported_in_a_batch(capsys, tmp_path) -> None:
    empty = tmp_path / "empty.onnx"
    empty.mkdir()
    code, out, err = run(capsys, str(empty), str(SAMPLES / "seed_mlp.onnx"), "--format", "json")
    assert code == 2
    assert f"onnx-audit: error: {empty}: a folder without .onnx files (pass a .onnx file)" in err
    assert "seed_mlp.onnx" in out
