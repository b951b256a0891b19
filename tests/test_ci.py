"""CI mode: config, budgets, fail-on, selection, batch runs, diff, sandbox limits."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.cli.batch import Limits, run_jobs
from analyzer.cli.policy import parse_percent, parse_size
from analyzer.core.errors import LimitExceededError, UsageError
from tests.conftest import SAMPLES

LENET_PARAMS = 61_706  # conv 156 + 2,416; dense 48,120 + 10,164 + 850 (see test_samples)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A repository with models/ and a pyproject.toml, as the current directory."""
    models = tmp_path / "models"
    models.mkdir()
    for name in ("lenet5", "seed_cnn", "seed_mlp"):
        shutil.copy(SAMPLES / f"{name}.onnx", models)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(project: Path, text: str) -> None:
    (project / "pyproject.toml").write_text("[tool.onnx-audit]\n" + text, encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("25M", 25_000_000),
        ("1.5G", 1_500_000_000),
        ("300k", 300_000),
        ("2GiB", 2 * 1024**3),
        ("100MB", 10**8),
        ("42", 42),
    ],
)
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_bad_sizes_and_percentages() -> None:
    for bad in ("lots", "1.5X", "-3"):
        with pytest.raises(UsageError):
            parse_size(bad)
    assert parse_percent("5%") == pytest.approx(0.05)
    with pytest.raises(UsageError):
        parse_percent("five")


def test_budget_from_pyproject_fails_with_one_line_per_violation(project, capsys) -> None:
    write_config(project, 'max-params = "50k"\nmax-layer-params = "40k"\n')
    code, _, err = run(capsys, "models/lenet5.onnx", "--format", "json")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert "61,706" in lines[0] and "50,000" in lines[0]
    assert "fc1" in lines[1] and "48,120" in lines[1] and "40,000" in lines[1]


def test_under_budget_exits_0_and_cli_overrides_config(project, capsys) -> None:
    write_config(project, 'max-params = "50k"\n')
    assert run(capsys, "models/seed_cnn.onnx")[0] == 0
    assert run(capsys, "models/lenet5.onnx", "--max-params", "100k")[0] == 0


def test_config_walks_up_from_a_subfolder(project, capsys, monkeypatch) -> None:
    write_config(project, "max-params = 1000\n")
    sub = project / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert run(capsys, str(project / "models" / "seed_mlp.onnx"))[0] == 1


def test_explicit_config_file(project, capsys) -> None:
    other = project / "audit.toml"
    other.write_text('fail-on = ["ONX101"]\n', encoding="utf-8")
    code, _, _ = run(capsys, "models/seed_mlp.onnx", "--config", str(other))
    assert code == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ('max-params = "huge"\n', "bad size 'huge'"),
        ('kernel = "three"\n', "config key 'kernel'"),
        ('format = "pdf"\n', "is not one of"),
        ("max-params = [1, 2]\n", "takes one value"),
        ("[[[", "invalid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(project, capsys, text, message) -> None:
    write_config(project, text)
    code, out, err = run(capsys, "models/seed_mlp.onnx")
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_fail_on_by_code_or_name_and_ignore(project, capsys) -> None:
    assert run(capsys, "models/seed_mlp.onnx", "--fail-on", "ONX101")[0] == 1
    assert run(capsys, "models/seed_mlp.onnx", "--fail-on", "dense-on-spatial-input")[0] == 1
    assert run(capsys, "models/seed_cnn.onnx", "--fail-on", "ONX101")[0] == 0
    code, out, _ = run(
        capsys,
        "models/seed_mlp.onnx",
        "--fail-on",
        "ONX101",
        "--ignore",
        "ONX1",
        "--format",
        "json",
    )
    assert code == 0 and json.loads(out)["findings"] == []
    code, out, _ = run(capsys, "models/seed_mlp.onnx", "--select", "ONX999", "--format", "json")
    assert json.loads(out)["findings"] == []


def test_directory_with_a_broken_file_analyses_the_rest(project, capsys) -> None:
    (project / "models" / "sub").mkdir()
    (project / "models" / "sub" / "broken.onnx").write_bytes(b"\x08\x07junk")
    code, out, err = run(capsys, "models", "--format", "jsonl", "--jobs", "2")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [Path(r["path"]).name for r in records] == [
        "lenet5.onnx",
        "seed_cnn.onnx",
        "seed_mlp.onnx",
        "broken.onnx",
    ]
    assert records[-1]["error"]["kind"] in ("truncated", "not-onnx")
    assert err.count("error:") == 1 and "broken.onnx" in err
    assert records[0]["totals"]["params"] == LENET_PARAMS


def test_parallel_runs_match_serial_runs(project, capsys) -> None:
    _, serial, _ = run(capsys, "models", "--format", "json")
    _, parallel, _ = run(capsys, "models", "--format", "json", "--jobs", "3")
    assert serial == parallel and len(json.loads(serial)) == 3


def test_output_file_not_written_when_nothing_was_analysed(project, capsys) -> None:
    target = project / "report.json"
    target.write_text("previous", encoding="utf-8")
    code, _, _ = run(capsys, "models/missing.onnx", "--format", "json", "-o", str(target))
    assert code == 2 and target.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in project.iterdir() if p.name.startswith(".report")] == []


def test_diff_matches_renamed_layers_by_position(tmp_path, capsys) -> None:
    import onnx

    old = onnx.load(SAMPLES / "lenet5.onnx")
    new = onnx.load(SAMPLES / "lenet5.onnx")
    for node in new.graph.node:
        node.name = "renamed_" + node.name
    old_path, new_path = tmp_path / "old.onnx", tmp_path / "new.onnx"
    onnx.save(old, old_path)
    onnx.save(new, new_path)
    code, out, _ = run(capsys, "diff", str(old_path), str(new_path), "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert {d["status"] for d in data["layers"]} == {"same"}
    assert {d["matched_by"] for d in data["layers"]} == {"position"}
    assert data["new_findings"] == [] and data["fixed_findings"] == []


def test_diff_growth_policy(capsys) -> None:
    old, new = str(SAMPLES / "seed_cnn.onnx"), str(SAMPLES / "seed_mlp.onnx")
    code, out, err = run(capsys, "diff", old, new, "--max-growth", "5%", "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["growth"] == pytest.approx((3232 - 320) / 320)
    # seed_mlp's one Gemm is on a flattened image (ONX101) and all of its parameters (ONX104)
    assert [(f["code"], f["node"]) for f in data["new_findings"]] == [
        ("ONX101", "dense"),
        ("ONX104", "dense"),
    ]
    assert "max-growth" not in err or "grew" in err
    code, _, _ = run(capsys, "diff", new, old, "--max-growth", "5%")
    assert code == 0  # shrinking is fine
    _, out, _ = run(capsys, "diff", new, old, "--format", "json")
    assert [f["code"] for f in json.loads(out)["fixed_findings"]] == ["ONX101", "ONX104"]


def _sleep(notes: list[str]) -> int:
    time.sleep(30)
    return 0


def _hog(notes: list[str]) -> int:
    blocks = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB
    return len(blocks)


def test_sandbox_stops_time_and_memory_hogs() -> None:
    (slow,) = run_jobs([("slow", _sleep)], Limits(max_memory=None, timeout=0.5))
    assert isinstance(slow.error, LimitExceededError) and "over 0.5 s" in slow.error.what
    (hog,) = run_jobs([("hog", _hog)], Limits(max_memory=1024**3, timeout=30))
    assert isinstance(hog.error, LimitExceededError) and "memory" in hog.error.what


def _vanish(notes: list[str]) -> int:
    os._exit(1)  # what a child does when even sending its error fails


def test_child_exiting_without_a_result_gets_a_hint() -> None:
    (gone,) = run_jobs([("gone", _vanish)], Limits(max_memory=1024**3, timeout=30))
    assert gone.error is not None
    line = gone.error.line()
    assert "exited with 1 without a result" in line and "--max-memory" in line
    assert "internal error" not in line


def test_preview_rules_run_only_when_asked() -> None:
    from analyzer.cli.options import parse_settings, rule_filter
    from analyzer.rules import Rule

    preview = Rule(
        code="ONX999", name="some-preview-heuristic", summary="s", what="w", why="y",
        example="e", instead="i", check=lambda ctx: iter(()), preview=True,
    )  # fmt: skip
    stable = Rule(
        code="ONX101", name="dense-on-spatial-input", summary="s", what="w", why="y",
        example="e", instead="i", check=lambda ctx: iter(()),
    )  # fmt: skip
    default = rule_filter(parse_settings("check", ["m.onnx"]))
    assert default(stable) and not default(preview)
    assert rule_filter(parse_settings("check", ["m.onnx", "--preview"]))(preview)
    assert rule_filter(parse_settings("check", ["m.onnx", "--select", "ONX999"]))(preview)
    assert not rule_filter(parse_settings("check", ["m.onnx", "--ignore", "ONX1"]))(stable)


def test_progress_bar_only_on_a_terminal(project, capsys, monkeypatch) -> None:
    for index in range(4):
        shutil.copy(SAMPLES / "seed_cnn.onnx", project / "models" / f"extra{index}.onnx")
    _, _, quiet = run(capsys, "models", "--format", "jsonl")
    assert quiet == ""  # not a terminal: silent
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    code, _, err = run(capsys, "models", "--format", "jsonl")
    assert code == 0 and "[7/7]" in err
