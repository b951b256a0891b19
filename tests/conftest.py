"""Shared test helpers: models as readable text, strict analysis, golden files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import onnx.parser
import pytest

from analyzer import Report, analyze

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/golden/* from current output"
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def parse(text: str) -> onnx.ModelProto:
    """A model from onnx.parser text, checked so fixtures stay valid ONNX."""
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def audit(tmp_path: Path) -> Callable[..., Report]:
    """Save a model (text or proto) and analyse it in strict mode."""
    counter = iter(range(1_000_000))

    def run(model: str | onnx.ModelProto, **options: object) -> Report:
        proto = parse(model) if isinstance(model, str) else model
        path = tmp_path / f"model{next(counter)}.onnx"
        onnx.save_model(proto, path)
        options.setdefault("strict", True)
        return analyze(path, **options)  # type: ignore[arg-type]

    return run


def layer(report: Report, name: str):
    found = [entry for entry in report.layers if entry.name == name]
    assert found, f"no layer {name!r} in {[entry.name for entry in report.layers]}"
    return found[0]


def with_weights(text: str, *names: str) -> onnx.ModelProto:
    """Parse `text`, then turn the named graph inputs into zero initializers of their shape.

    Lets a fixture declare weights with shapes alone: `float[64, 10] w` in the input list.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    model = onnx.parser.parse_model(text)
    keep, inits = [], []
    for value in model.graph.input:
        if value.name not in names:
            keep.append(value)
            continue
        tensor_type = value.type.tensor_type
        shape = [d.dim_value for d in tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        inits.append(numpy_helper.from_array(np.zeros(shape, dtype), value.name))
    missing = set(names) - {t.name for t in inits}
    assert not missing, f"no graph inputs named {missing}"
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.graph.initializer.extend(inits)
    onnx.checker.check_model(model)
    return model


def analyze_only(code: str, path: str | Path, **options: object) -> Report:
    """analyze() with one rule enabled: a test about ONX101 is not about the other rules (ONX104
    also flags a model's lone dense layer)."""
    return analyze(path, rule_filter=lambda rule: rule.code == code, **options)  # type: ignore[arg-type]
