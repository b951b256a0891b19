"""The rank-r energy estimate against numpy's exact SVD (the independent source)."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from analyzer.read.values.locate import locate
from analyzer.read.values.lowrank import energy_kept, read_matrix


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
