"""The CLI under a memory limit set by its caller (ulimit -v, prlimit, a container).

The analysis child caps its own address space at --max-memory; a hard limit it inherited is
never raised, so every analysis must still work, and the report says which cap was in force.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES

MODELS = [
    SAMPLES / "seed_mlp.onnx",
    SAMPLES / "qdq_cnn.onnx",
    SAMPLES / "external" / "lenet5_external.onnx",
    SAMPLES / "exported" / "crnn_lstm.qdyn.onnx",
    SAMPLES / "exported" / "bert_tiny.opt.onnx",
    SAMPLES / "exported" / "subgraph_loop_matmul.onnx",
]
"""One of each path: plain, QDQ, external data, contrib ops, a subgraph (the whole suite runs
under prlimit in CI as well)."""


def _run_capped(cap: int, *args: str) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("cap", [2_000_000 * 1024, 3_000_000_000], ids=["ulimit-v", "prlimit"])
def test_sample_models_under_an_inherited_cap(cap: int) -> None:
    """Below the 4 GiB default of --max-memory: the inherited cap wins, and is reported."""
    proc = _run_capped(cap, *map(str, MODELS), "--format", "jsonl")
    assert proc.returncode in (0, 1), proc.stderr
    assert "internal error" not in proc.stderr
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reports) == len(MODELS)
    for report in reports:
        assert dict(report["settings"])["memory_cap"] == f"{cap} bytes (inherited limit)"


def test_a_smaller_max_memory_than_the_inherited_cap_is_used() -> None:
    proc = _run_capped(
        3_000_000_000, str(SAMPLES / "seed_mlp.onnx"), "--format", "json", "--max-memory", "2GiB"
    )
    assert proc.returncode in (0, 1), proc.stderr
    settings = dict(json.loads(proc.stdout)["settings"])
    assert settings["memory_cap"] == f"{2 * 1024**3} bytes (--max-memory)"


def test_verify_under_an_inherited_cap(tmp_path: Path) -> None:
    """onnxruntime runs in the child too: it must start under the caller's limit."""
    proc = _run_capped(3_000_000_000, "verify", str(SAMPLES / "lenet5.onnx"), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    assert "internal error" not in proc.stderr
