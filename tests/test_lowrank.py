"""The rank-r energy estimate against numpy's exact SVD (the independent source)."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer import analyze
from analyzer.read.values import spectrum
from analyzer.read.values.locate import locate
from analyzer.read.values.lowrank import energy_kept, read_matrix
from analyzer.rules.dominant_dense import NOT_READ, DominantDense


def _exact(matrix: np.ndarray, rank: int) -> float:
    values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    return float(np.sum(values[:rank] ** 2) / np.sum(values**2))


@pytest.mark.parametrize(("rows", "cols", "rank"), [(300, 120, 10), (64, 500, 16), (200, 200, 50)])
def test_matches_the_exact_svd(rows: int, cols: int, rank: int) -> None:
    rng = np.random.default_rng(1)
    decay = np.exp(-np.arange(min(rows, cols)) / 12.0)  # a trained layer's decaying spectrum
    left = np.linalg.qr(rng.standard_normal((rows, min(rows, cols))))[0]
    right = np.linalg.qr(rng.standard_normal((cols, min(rows, cols))))[0]
    matrix = (left * decay) @ right.T + 1e-3 * rng.standard_normal((rows, cols))
    assert energy_kept(matrix.astype(np.float32), rank) == pytest.approx(
        _exact(matrix, rank), abs=2e-3
    )


def test_exact_low_rank_keeps_everything_and_full_rank_is_one() -> None:
    rng = np.random.default_rng(2)
    matrix = rng.standard_normal((100, 5)) @ rng.standard_normal((5, 80))
    assert energy_kept(matrix, 5) == pytest.approx(1.0, abs=1e-5)
    assert energy_kept(matrix, 80) == 1.0
    assert energy_kept(np.zeros((4, 4)), 1) == 1.0


def test_reads_the_stored_matrix(tmp_path) -> None:
    array = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    graph = helper.make_graph(
        [],
        "g",
        [],
        [helper.make_tensor_value_info("w", TensorProto.FLOAT, [6, 4])],
        initializer=[numpy_helper.from_array(array, "w")],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    (tensor,) = locate(path)

    fd = os.open(path, os.O_RDONLY)
    try:
        read = read_matrix(fd, tensor, {}, (6, 4))
        wrong = read_matrix(fd, tensor, {}, (5, 4))
    finally:
        os.close(fd)
    assert isinstance(read, np.ndarray) and np.array_equal(read, array)
    assert isinstance(wrong, str)


def _low_rank_model(path: os.PathLike[str] | str, a_rank_4: np.ndarray) -> None:
    """x[N, 64] -> MatMul(w [64, 128]) -> y: one layer, the whole model (ONX104 fires)."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], "fc")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 128])],
        initializer=[numpy_helper.from_array(a_rank_4, "w")],
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _rank_4() -> np.ndarray:
    """W = U diag(4, 3, 2, 1) V^T with orthonormal U [64, 4], V [128, 4]: rank 4, its energy
    16 + 9 + 4 + 1 = 30."""
    rng = np.random.default_rng(4)
    left = np.linalg.qr(rng.standard_normal((64, 4)))[0]
    right = np.linalg.qr(rng.standard_normal((128, 4)))[0]
    return ((left * np.array([4.0, 3.0, 2.0, 1.0])) @ right.T).astype(np.float32)


def _onx104(path: os.PathLike[str] | str, **options: object) -> object:
    report = analyze(path, sandbox=False, **options)  # type: ignore[arg-type]
    (finding,) = [f for f in report.findings if f.code == "ONX104"]
    return finding.detail


def test_onx104_states_the_energy_kept_when_weights_are_read(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "fc.onnx")
    _low_rank_model(path, _rank_4())
    # default rank floor(64*128 / (4*(64+128))) = floor(8,192 / 768) = 10 >= 4: all 30 of 30
    detail = _onx104(path, inspect_weights=True)
    assert isinstance(detail, DominantDense) and detail.rank == 10
    assert detail.energy_kept == pytest.approx(1.0, abs=1e-4) and detail.energy_reason == ""
    assert any(
        label == "energy" and "rank 10 keeps 100.00%" in text for label, text in detail.lines()
    )
    # rank 2 keeps (16 + 9) / 30, rank 1 keeps 16 / 30
    for rank, share in ((2, 25 / 30), (1, 16 / 30)):
        detail = _onx104(path, inspect_weights=True, rank=rank)
        assert isinstance(detail, DominantDense)
        assert detail.energy_kept == pytest.approx(share, abs=1e-3)


def test_onx104_reads_nothing_without_inspect_weights(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a weight was read")

    monkeypatch.setattr(spectrum, "read_matrix", refuse)
    path = os.path.join(tmp_path, "fc.onnx")
    _low_rank_model(path, _rank_4())
    detail = _onx104(path)
    assert isinstance(detail, DominantDense)
    assert (detail.energy_kept, detail.energy_reason) == (None, NOT_READ)
    assert not any(label == "energy" for label, _ in detail.lines())


def test_onx104_says_when_a_layer_is_too_big(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spectrum, "MAX_ELEMENTS", 64 * 128 - 1)
    path = os.path.join(tmp_path, "fc.onnx")
    _low_rank_model(path, _rank_4())
    detail = _onx104(path, inspect_weights=True)
    assert isinstance(detail, DominantDense) and detail.energy_kept is None
    assert detail.energy_reason.startswith("too big to estimate: 8,192 weights")
    assert any("too big to estimate" in text for label, text in detail.lines() if label == "energy")
