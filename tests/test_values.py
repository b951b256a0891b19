"""The weight-value reader: every stored tensor found, its values decoded and summarised exactly
as numpy computes them from onnx's own `numpy_helper.to_array` (the independent source)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import xxhash
from onnx import TensorProto, helper, numpy_helper

from analyzer.read.values import decode
from analyzer.read.values.locate import locate
from analyzer.read.values.scan import scan
from analyzer.read.values.stats import TensorStats


def _model(initializers, nodes=(), sparse=()):
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        initializer=list(initializers),
        sparse_initializer=list(sparse),
    )
    return helper.make_model(graph)


def _stats(path: Path, files=None) -> dict[str, TensorStats]:
    found = {}
    for item in scan(path, files or {}):
        assert isinstance(item, TensorStats), item
        found[item.name] = item
    return found


def _expect(stats: TensorStats, array: np.ndarray) -> None:
    values = array.astype(np.float64).reshape(-1)
    finite = values[np.isfinite(values)]
    assert stats.elements == values.size
    assert stats.nans == int(np.isnan(values).sum())
    assert stats.infs == int(np.isinf(values).sum())
    assert stats.zeros == int((finite == 0).sum())
    assert stats.minimum == pytest.approx(finite.min())
    assert stats.maximum == pytest.approx(finite.max())
    assert stats.mean == pytest.approx(finite.mean(), rel=1e-9, abs=1e-12)
    assert stats.std == pytest.approx(finite.std(), rel=1e-5, abs=1e-12)  # float32 sums


def test_raw_and_typed_float_tensors_match_numpy(tmp_path) -> None:
    rng = np.random.default_rng(0)
    big = rng.normal(size=(300, 700)).astype(np.float32)
    big[3, :] = 0.0
    big[:, 5] = 0.0
    typed = helper.make_tensor("typed", TensorProto.FLOAT, [3, 2], [1.0, -2.0, 0.0, 4.5, 0.0, 7.0])
    path = tmp_path / "m.onnx"
    onnx.save(_model([numpy_helper.from_array(big, "big"), typed]), path)
    stats = _stats(path)
    _expect(stats["big"], big)
    _expect(stats["typed"], numpy_helper.to_array(typed))
    assert stats["big"].location == "embedded" and stats["typed"].location == "typed"
    assert stats["big"].zero_rows == 1 and stats["big"].zero_columns == 1


def test_chunking_does_not_change_the_result(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    array = (rng.normal(size=(64, 1000)) * 1e3 + 5e3).astype(np.float32)
    path = tmp_path / "m.onnx"
    onnx.save(_model([numpy_helper.from_array(array, "w")]), path)
    whole = _stats(path)["w"]
    monkeypatch.setattr(decode, "CHUNK", 4096)  # 63 windows instead of one
    chunked = _stats(path)["w"]
    assert chunked.digest == whole.digest and chunked.zeros == whole.zeros
    assert chunked.mean == pytest.approx(whole.mean, rel=1e-12)
    assert chunked.std == pytest.approx(whole.std, rel=1e-5)
    _expect(chunked, array)


def test_nan_inf_and_fp16_limits(tmp_path) -> None:
    array = np.array([[1.0, np.nan, np.inf], [-np.inf, 70000.0, 1e-6]], dtype=np.float32)
    path = tmp_path / "m.onnx"
    onnx.save(_model([numpy_helper.from_array(array, "w")]), path)
    stats = _stats(path)["w"]
    _expect(stats, array)
    assert (stats.nans, stats.infs, stats.fp16_overflow, stats.fp16_underflow) == (1, 2, 1, 1)


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (TensorProto.FLOAT16, np.array([[1.5, -2.0], [0.0, 65504.0]], dtype=np.float16)),
        (TensorProto.DOUBLE, np.array([[1.5, -2.0], [0.0, 3.25]])),
        (TensorProto.INT8, np.array([[-128, 0], [5, 127]], dtype=np.int8)),
        (TensorProto.UINT8, np.array([[0, 0], [200, 3]], dtype=np.uint8)),
        (TensorProto.INT64, np.array([[-(2**40), 0], [7, 9]], dtype=np.int64)),
    ],
)
@pytest.mark.parametrize("raw", [True, False])
def test_number_types_raw_and_typed(tmp_path, dtype, values, raw) -> None:
    if raw:
        tensor = helper.make_tensor("w", dtype, values.shape, values.tobytes(), raw=True)
    else:
        tensor = helper.make_tensor("w", dtype, values.shape, values.reshape(-1).tolist())
    path = tmp_path / "m.onnx"
    onnx.save(_model([tensor]), path)
    stats = _stats(path)["w"]
    _expect(stats, numpy_helper.to_array(tensor))


def test_bfloat16_int4_and_uint4(tmp_path) -> None:
    floats = np.array([1.0, -2.5, 0.0, 3.0e38], dtype=np.float32)
    bf16 = helper.make_tensor("bf", TensorProto.BFLOAT16, [2, 2], floats.tolist())
    int4 = helper.make_tensor("i4", TensorProto.INT4, [5], [-8, -1, 0, 3, 7])
    uint4 = helper.make_tensor("u4", TensorProto.UINT4, [3], [15, 0, 9])
    path = tmp_path / "m.onnx"
    onnx.save(_model([bf16, int4, uint4]), path)
    stats = _stats(path)
    for name, tensor in (("bf", bf16), ("i4", int4), ("u4", uint4)):
        _expect(stats[name], numpy_helper.to_array(tensor).astype(np.float64))


def test_constant_nodes_subgraphs_and_sparse_tensors_are_found(tmp_path) -> None:
    const = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(np.ones((40, 40), np.float32), "")
    )
    inner = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["k"], value=numpy_helper.from_array(np.zeros(3, np.float32), "")
            )
        ],
        "then",
        [],
        [helper.make_tensor_value_info("k", TensorProto.FLOAT, [3])],
    )
    branch = helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=inner)
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([2.0, 3.0], np.float32), "sp"),
        numpy_helper.from_array(np.array([1, 7], np.int64), ""),
        [10],
    )
    path = tmp_path / "m.onnx"
    onnx.save(_model([], [const, branch], [sparse]), path)
    names = sorted(t.name for t in locate(path))
    assert names == ["", "c", "k", "k", "sp"]  # the sparse indices have no name of their own
    assert _stats(path)["c"].mean == 1.0


def test_external_data_is_read_through_the_descriptor_given(tmp_path) -> None:
    array = np.arange(5000, dtype=np.float32).reshape(50, 100) - 2500
    model = _model([numpy_helper.from_array(array, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, location="w.bin", size_threshold=0)
    skipped = list(scan(path, {}))
    assert skipped == [("w", "external data 'w.bin' was not opened")]
    fd = os.open(tmp_path / "w.bin", os.O_RDONLY)
    try:
        stats = _stats(path, {"w.bin": fd})["w"]
    finally:
        os.close(fd)
    _expect(stats, array)
    assert stats.location == "w.bin"


def test_a_cut_short_payload_is_skipped_with_a_reason(tmp_path) -> None:
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[64, 64], raw_data=b"\0" * 16)
    path = tmp_path / "m.onnx"
    path.write_bytes(_model([tensor]).SerializeToString())
    (item,) = scan(path, {})
    assert item == ("w", "16 stored bytes where its dims need 16,384")


def test_identical_tensors_share_a_digest(tmp_path) -> None:
    array = np.random.default_rng(2).normal(size=(20, 30)).astype(np.float32)
    other = array.copy()
    other[0, 0] += 1
    tensors = [numpy_helper.from_array(a, n) for a, n in ((array, "a"), (array, "b"), (other, "c"))]
    path = tmp_path / "m.onnx"
    onnx.save(_model(tensors), path)
    stats = _stats(path)
    assert stats["a"].digest == stats["b"].digest != stats["c"].digest
    # the digest is XXH3-128 of the stored bytes, computed here by xxhash directly
    assert stats["c"].digest == "xxh3-128:" + xxhash.xxh3_128(other.tobytes()).hexdigest()
    assert not math.isnan(stats["a"].std)
