"""The sandbox's off switch: --no-sandbox (or ONNX_AUDIT_NO_SANDBOX=1) runs in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import SAMPLES

from analyzer import analyze
from analyzer.cli import main
from analyzer.core import sandbox

MODEL = str(SAMPLES / "seed_mlp.onnx")


NOISY = """
import sys
from analyzer.cli import main
from analyzer.count.visitors import base

original = base._REGISTRY[("", "Gemm")]


def noisy(node, ctx):
    print(f"debugging {node.op_type}", file=sys.stderr)
    yield from original(node, ctx)


base._REGISTRY[("", "Gemm")] = noisy
sys.exit(main(sys.argv[1:]))
"""
"""A Gemm visitor that prints, as a developer debugging it would; in a fresh interpreter, so
stderr is the real fd 2 (pytest's capture would not see the child's silencing)."""


def _noisy_run(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", NOISY, MODEL, "-o", os.devnull, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=True,
    )
    return proc.stderr


def test_no_sandbox_shows_a_print_from_a_visitor() -> None:
    assert "debugging Gemm" in _noisy_run("--no-sandbox")
    assert "debugging Gemm" in _noisy_run(env={sandbox.ENV_OFF: "1"})
    assert "debugging Gemm" not in _noisy_run()  # the sandboxed child's stderr is silenced


def test_the_report_is_the_same_with_or_without_the_sandbox(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = str(SAMPLES / "exported" / "bert_tiny.opt.onnx")  # contrib ops: stand-ins
    assert analyze(model, sandbox=False) == analyze(model, sandbox=True)
    main([model, "--format", "json"])
    forked = json.loads(capsys.readouterr().out)
    main([model, "--format", "json", "--no-sandbox"])
    here = json.loads(capsys.readouterr().out)
    assert dict(here.pop("settings"))["memory_cap"] == "none (--no-sandbox)"
    forked.pop("settings")
    assert here == forked


def test_a_crash_in_process_is_an_outcome_not_an_exception() -> None:
    def job(notes: list[str]) -> None:
        notes.append("started")
        raise RuntimeError("boom")

    status, payload, notes, trace = sandbox.run_here(job)
    assert (status, payload, notes) == ("crash", "RuntimeError: boom", ["started"])
    assert "RuntimeError" in trace


@pytest.mark.parametrize("name", ["tied_lm.onnx", "qdq_cnn.onnx", "tiny_transformer.onnx"])
def test_report_pickles_back_equal(name: str) -> None:
    """The child sends its Report as plain rows (Report.__reduce__); the parent gets it back
    equal, records of the same types, shared weights and symbolic MACs included."""
    import pickle

    report = analyze(str(SAMPLES / name), sandbox=False)
    back = pickle.loads(pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == report
    assert type(back.layers) is tuple
    for old, new in zip(report.layers, back.layers, strict=True):
        assert type(new) is type(old) and type(new.macs) is type(old.macs)
        assert all(type(w) is type(v) for w, v in zip(new.weights, old.weights, strict=True))
