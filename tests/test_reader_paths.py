"""The pread skeleton reader and the plain protobuf parse give the very same Report."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import analyze
from tests.conftest import SAMPLES

ALL_SAMPLES = sorted(p for p in SAMPLES.rglob("*.onnx") if "_pre" not in p.name)


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_both_readers_give_the_same_report(path: Path) -> None:
    assert analyze(path, reader="skeleton") == analyze(path, reader="plain")
