"""read_skeleton must equal the plain path (full parse + strip_payloads) on every model.

Models cover every place a TensorProto can sit, every payload field, external tensors, and
hand-crafted wire bytes protobuf accepts but onnx.helper never writes (fields out of order,
repeated singular messages, unknown fields and enum values). Corrupt files must fail fast.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import ModelProto, TensorProto, helper, numpy_helper

from analyzer.core.errors import AuditError, NotOnnxError, TruncatedError
from analyzer.read import skeleton, strip
from analyzer.read.loader import KEEP_ELEMENTS, read_model, strip_payloads
from analyzer.read.skeleton import read_skeleton
from analyzer.read.wire import CHUNK, WireFormatError

BIG = KEEP_ELEMENTS + 1


# -- wire helpers ---------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def fld(num: int, body: bytes | int, wire: int | None = None) -> bytes:
    """One field: ints become varints (wire 0), bytes become length-delimited (wire 2)."""
    if isinstance(body, int):
        return varint(num << 3 | (0 if wire is None else wire)) + varint(body)
    return varint(num << 3 | 2) + varint(len(body)) + body


def split_fields(data: bytes) -> list[bytes]:
    """Top-level fields of a serialized message, each with its tag (no groups)."""
    fields, pos = [], 0
    while pos < len(data):
        start = pos
        tag, pos = _dec(data, pos)
        wire = tag & 7
        if wire == 0:
            _, pos = _dec(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            size, pos = _dec(data, pos)
            pos += size
        fields.append(data[start:pos])
    return fields


def _dec(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


# -- model builders -------------------------------------------------------------------------


def model_of(graph: onnx.GraphProto, **kwargs: object) -> ModelProto:
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], **kwargs)


def arr(n: int, dtype: type = np.float32) -> np.ndarray:
    return np.arange(n).astype(dtype)


def bare(name: str, dims: list[int], dtype: int = TensorProto.FLOAT) -> TensorProto:
    """A tensor with dims and type but no data at all (helper.make_tensor refuses those)."""
    tensor = TensorProto(name=name, data_type=dtype)
    tensor.dims.extend(dims)
    return tensor


def tensor_zoo(prefix: str) -> list[TensorProto]:
    """Large and small tensors in every payload field, plus external and empty ones."""
    out = [
        numpy_helper.from_array(arr(BIG), f"{prefix}raw_big"),
        numpy_helper.from_array(arr(KEEP_ELEMENTS), f"{prefix}raw_small"),
        helper.make_tensor(f"{prefix}float_big", TensorProto.FLOAT, [BIG], arr(BIG).tolist()),
        helper.make_tensor(f"{prefix}float_small", TensorProto.FLOAT, [4], [1.0, 2, 3, 4]),
        helper.make_tensor(f"{prefix}i64_big", TensorProto.INT64, [2, BIG], [7] * (2 * BIG)),
        helper.make_tensor(f"{prefix}i32_big", TensorProto.INT32, [BIG], [3] * BIG),
        helper.make_tensor(f"{prefix}f64_big", TensorProto.DOUBLE, [BIG], [0.5] * BIG),
        helper.make_tensor(f"{prefix}u64_big", TensorProto.UINT64, [BIG], [9] * BIG),
        helper.make_tensor(f"{prefix}str_big", TensorProto.STRING, [BIG], [b"ab"] * BIG),
        helper.make_tensor(f"{prefix}i8_big", TensorProto.INT8, [BIG], [1] * BIG),
        bare(f"{prefix}nodata_big", [64, 64]),
        bare(f"{prefix}zero_dim", [0, 5000]),
        helper.make_tensor(f"{prefix}scalar", TensorProto.FLOAT, [], [1.5]),
    ]
    empty_raw = bare(f"{prefix}empty_raw_big", [BIG, 3])
    empty_raw.raw_data = b""  # present but empty: the plain path records length 0
    out.append(empty_raw)
    external = bare(f"{prefix}external", [64, 64])
    external.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", "16384")):
        entry = external.external_data.add()
        entry.key, entry.value = key, value
    # EXTERNAL with an embedded payload anyway: the plain path leaves it alone.
    odd = numpy_helper.from_array(arr(BIG), f"{prefix}external_with_raw")
    odd.data_location = TensorProto.EXTERNAL
    out += [external, odd]
    return out


def sparse(name: str, nnz: int, dense: int) -> onnx.SparseTensorProto:
    values = numpy_helper.from_array(arr(nnz), name)
    indices = numpy_helper.from_array(np.arange(nnz, dtype=np.int64), f"{name}_idx")
    return helper.make_sparse_tensor(values, indices, [dense])


def constant(out: str, value: TensorProto) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [out], value=value)


def rich_graph(prefix: str, depth: int = 0) -> onnx.GraphProto:
    """A graph using every tensor location, with If/Loop subgraphs down to depth."""
    nodes = [
        constant(f"{prefix}c_big", numpy_helper.from_array(arr(BIG), f"{prefix}cv_big")),
        constant(f"{prefix}c_small", numpy_helper.from_array(arr(3), f"{prefix}cv_small")),
        helper.make_node(
            "Constant", [], [f"{prefix}c_sparse"], sparse_value=sparse(f"{prefix}csp", BIG, 5000)
        ),
        helper.make_node(
            "Custom",
            [],
            [f"{prefix}custom"],
            domain="custom",
            tensors=[numpy_helper.from_array(arr(BIG), f"{prefix}ts{i}") for i in range(2)],
            sparse_tensors=[sparse(f"{prefix}sps", BIG, 5000)],
            ints=[1, 2, 3],
            s=b"text",
        ),
    ]
    if depth > 0:
        nodes.append(
            helper.make_node(
                "If",
                [f"{prefix}cond"],
                [f"{prefix}if_out"],
                then_branch=rich_graph(f"{prefix}t{depth}_", depth - 1),
                else_branch=rich_graph(f"{prefix}e{depth}_", depth - 1),
            )
        )
        nodes.append(
            helper.make_node(
                "Loop",
                ["", f"{prefix}cond"],
                [f"{prefix}loop_out"],
                body=rich_graph(f"{prefix}b{depth}_", depth - 1),
            )
        )
        nodes.append(
            helper.make_node(
                "Custom",
                [],
                [f"{prefix}multi"],
                domain="custom",
                graphs=[rich_graph(f"{prefix}g{depth}_", 0)],
            )
        )
    return helper.make_graph(
        nodes,
        f"{prefix}graph",
        [helper.make_tensor_value_info(f"{prefix}cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info(f"{prefix}c_big", TensorProto.FLOAT, [BIG])],
        initializer=tensor_zoo(prefix),
        sparse_initializer=[sparse(f"{prefix}sp_big", BIG, 10_000), sparse(f"{prefix}sp", 3, 9)],
        doc_string="doc",
    )


def rich_model() -> ModelProto:
    fn_body = [
        constant("k", numpy_helper.from_array(arr(BIG), "fn_k")),
        helper.make_node(
            "If", ["x"], ["y"], then_branch=rich_graph("fthen_"), else_branch=rich_graph("felse_")
        ),
    ]
    function = helper.make_function(
        "custom", "Fn", ["x"], ["y"], fn_body, [helper.make_opsetid("", 18)]
    )
    # FunctionProto.attribute_proto defaults are walked (and stripped) like node attributes.
    function.attribute_proto.append(
        helper.make_attribute("dflt", numpy_helper.from_array(arr(BIG), "dflt"))
    )
    model = model_of(rich_graph("", depth=2), functions=[function])
    info = model.training_info.add()
    info.initialization.CopyFrom(rich_graph("init_"))
    info.algorithm.CopyFrom(rich_graph("algo_", depth=1))
    info.initialization_binding.add(key="a", value="b")
    helper.set_model_props(model, {"author": "test"})
    return model


# -- helpers ---------------------------------------------------------------------------------


INLINE_SIZES = [0, 200, skeleton.INLINE_BYTES]
"""0 walks every message on the wire; 200 mixes walked and plain-stripped runs."""


@pytest.fixture(params=INLINE_SIZES, ids=["walk-all", "mixed", "default"])
def inline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(skeleton, "INLINE_BYTES", request.param)
    return int(request.param)


def write(tmp_path: Path, data: bytes | ModelProto, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.SerializeToString())
    return path


def plain(path: Path) -> ModelProto:
    return strip_payloads(read_model(path))


def assert_same(path: Path) -> ModelProto:
    ours = read_skeleton(path)
    expected = plain(path)
    assert ours == expected
    return ours


def graph_model_bytes(graph_fields: bytes) -> bytes:
    """A minimal ModelProto around hand-written GraphProto bytes."""
    return fld(1, 8) + fld(8, fld(2, 18)) + fld(7, graph_fields)


# -- equality with the plain path -----------------------------------------------------------


def test_rich_model_matches_plain_path(tmp_path: Path, inline: int) -> None:
    model = rich_model()
    path = write(tmp_path, model)
    ours = assert_same(path)
    assert ours.ByteSize() < model.ByteSize() // 3  # sparse_tensors attrs stay whole
    init = {t.name: t for t in ours.graph.initializer}
    assert not init["raw_big"].raw_data
    stripped = {e.key: e.value for e in init["raw_big"].external_data}
    assert stripped == {"location": "@embedded", "onnx-audit": "stripped", "length": str(4 * BIG)}
    assert "length" not in {e.key for e in init["float_big"].external_data}
    assert init["raw_small"].raw_data
    assert init["external"].external_data[0].value == "weights.bin"
    assert init["external_with_raw"].raw_data


def test_tiny_and_empty_graph(tmp_path: Path) -> None:
    assert_same(write(tmp_path, model_of(helper.make_graph([], "g", [], []))))


def test_large_payloads_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only headers and small fields are read: a 16 MB model costs a few read-ahead chunks."""
    inits = [numpy_helper.from_array(np.zeros(1 << 20, np.float32), f"w{i}") for i in range(4)]
    graph = helper.make_graph([], "g", [], [], initializer=inits)
    path = write(tmp_path, model_of(graph))
    read = 0
    real_pread = os.pread

    def counting(fd: int, count: int, offset: int) -> bytes:
        nonlocal read
        data = real_pread(fd, count, offset)
        read += len(data)
        return data

    monkeypatch.setattr(skeleton.os, "pread", counting)
    assert_same(path)
    assert read <= 5 * CHUNK


def test_fields_out_of_order_and_merged(tmp_path: Path, inline: int) -> None:
    """Wire orders onnx never writes: payload before dims, dims split, repeated singulars."""
    raw = np.zeros(BIG, np.float32).tobytes()
    tensors = [
        # raw_data first, dims last, name in the middle; two raw_data: the last one wins.
        fld(9, b"xx") + fld(8, b"late") + fld(2, 1) + fld(9, raw) + fld(1, BIG),
        # dims split between packed and unpacked occurrences: [2, 3, 200] -> 1200 elements
        fld(1, varint(2) + varint(3)) + fld(8, b"split") + fld(2, 1) + fld(1, 200),
        # data_location EXTERNAL after the payload; then DEFAULT again: last valid one wins
        fld(1, BIG) + fld(9, raw) + fld(14, 1) + fld(8, b"loc") + fld(14, 0),
        fld(1, BIG) + fld(14, 0) + fld(9, raw) + fld(8, b"loc_ext") + fld(14, 1),
        # unknown data_location value 7 is an unknown field, not EXTERNAL
        fld(1, BIG) + fld(14, 7) + fld(9, raw) + fld(8, b"loc7"),
        # negative and huge dims
        fld(1, -1) + fld(1, -2000) + fld(8, b"neg") + fld(9, raw),
        fld(1, -1) + fld(1, 2000) + fld(8, b"neg1") + fld(9, raw),
        fld(1, 1 << 62) + fld(1, 1 << 62) + fld(1, 0) + fld(8, b"zero"),
        fld(1, 1 << 40) + fld(1, 1 << 40) + fld(8, b"huge"),
        # unpacked floats, an unknown field, a group, and raw_data with the wrong wire type
        fld(1, BIG)
        + b"".join(b"\x25" + bytes(4) for _ in range(BIG))
        + fld(99, b"unknown")
        + b"\xab\x01\x08\x01\xac\x01"
        + fld(9, 5)
        + fld(8, b"unpacked"),
        # packed int64 split in two occurrences, then unpacked ones
        fld(1, BIG) + fld(7, bytes(600)) + fld(7, bytes(600)) + fld(7, 3) + fld(8, b"i64"),
    ]
    graph = b"".join(fld(5, t) for t in tensors) + fld(2, b"g")
    # An attribute carrying `t` twice (protobuf merges them) with its type after the tensors.
    half = fld(1, BIG // 2 + 1)
    attr = fld(1, b"value") + fld(5, half + fld(9, raw)) + fld(5, fld(1, 2)) + fld(20, 4)
    attr_undefined = fld(1, b"value") + fld(5, fld(1, BIG) + fld(9, raw))  # type missing
    attr_wrong = fld(1, b"value") + fld(5, fld(1, BIG) + fld(9, raw)) + fld(20, 1)
    for i, body in enumerate((attr, attr_undefined, attr_wrong)):
        graph += fld(1, fld(2, f"c{i}".encode()) + fld(4, b"Constant") + fld(5, body))
    # sparse_value given twice: values and indices of both merge
    values = fld(1, 600) + fld(9, bytes(2400))
    sp = fld(1, values) + fld(3, 5000)
    sp2 = fld(1, fld(1, 2) + fld(8, b"v2")) + fld(2, fld(1, 600) + fld(2, 7) + fld(9, bytes(4800)))
    attr_sp = fld(1, b"sparse_value") + fld(22, sp) + fld(20, 11) + fld(22, sp2)
    graph += fld(1, fld(4, b"Constant") + fld(5, attr_sp))
    # the main graph given twice: protobuf merges the two graphs
    model = graph_model_bytes(graph) + fld(7, fld(5, fld(1, BIG) + fld(9, raw) + fld(8, b"2nd")))
    ours = assert_same(write(tmp_path, model))
    names = {t.name: t for t in ours.graph.initializer}
    assert {e.key: e.value for e in names["late"].external_data}["length"] == str(len(raw))
    assert list(names["split"].dims) == [2, 3, 200] and names["split"].external_data
    assert names["loc"].external_data and not names["loc"].raw_data
    assert not names["loc_ext"].external_data and names["loc_ext"].raw_data
    assert names["loc7"].external_data and names["neg"].external_data  # (-1) * (-2000)
    assert not names["neg1"].external_data and not names["zero"].external_data
    assert names["huge"].external_data and names["unpacked"].external_data
    merged_t = ours.graph.node[0].attribute[0].t
    assert list(merged_t.dims) == [BIG // 2 + 1, 2] and not merged_t.raw_data
    assert not ours.graph.node[1].attribute[0].t.external_data  # type UNDEFINED: not walked
    assert not ours.graph.node[2].attribute[0].t.external_data  # type FLOAT: not walked
    merged_sp = ours.graph.node[3].attribute[0].sparse_tensor
    assert list(merged_sp.values.dims) == [600, 2] and merged_sp.values.external_data


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.sampled_from(INLINE_SIZES))
def test_shuffled_tensor_fields(
    tmp_path_factory: pytest.TempPathFactory, rnd: random.Random, size: int
) -> None:
    """Any permutation of each tensor's fields, split in two occurrences: both paths agree."""
    graph = b""
    for tensor in tensor_zoo("z"):
        fields = split_fields(tensor.SerializeToString())
        rnd.shuffle(fields)
        cut = rnd.randrange(len(fields) + 1)
        graph += fld(5, b"".join(fields[:cut])) if rnd.random() < 0.5 else b""
        graph += fld(5, b"".join(fields[cut:]))
    path = write(tmp_path_factory.mktemp("shuffle"), graph_model_bytes(graph))
    saved = skeleton.INLINE_BYTES
    skeleton.INLINE_BYTES = size
    try:
        assert_same(path)
    finally:
        skeleton.INLINE_BYTES = saved


def test_external_file_never_opened(tmp_path: Path, inline: int) -> None:
    """External data files stay unread (here: unreadable); only the model file is opened."""
    ext = bare("w", [256, 256])
    ext.data_location = TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="weights.bin")
    path = write(tmp_path, model_of(helper.make_graph([], "g", [], [], initializer=[ext])))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(256 * 256 * 4))
    weights.chmod(0)
    try:
        assert_same(path)
    finally:
        weights.chmod(0o644)


def test_long_chain_and_deep_nesting(tmp_path: Path) -> None:
    node = helper.make_node("Relu", ["a"], ["a"], name="n").SerializeToString()
    chain = fld(1, node) * 100_000 + fld(2, b"chain")
    data = graph_model_bytes(chain)
    path = write(tmp_path, data, "chain.onnx")
    with path.open("rb") as handle:  # the walk alone: read_skeleton adds the loader's checks
        ours, _ = skeleton.skeleton_bytes(handle.fileno(), len(data))
    assert ModelProto.FromString(bytes(ours)) == ModelProto.FromString(data)

    # If nested 400 deep: protobuf stops at depth 100; both paths refuse, neither recurses.
    inner = fld(2, b"leaf")
    for _ in range(400):
        attr = fld(1, b"then_branch") + fld(20, 5) + fld(6, inner)
        inner = fld(1, fld(4, b"If") + fld(5, attr))
    path = write(tmp_path, graph_model_bytes(inner), "deep.onnx")
    with pytest.raises(WireFormatError) as ours:
        read_skeleton(path)
    assert ours.value.kind == "depth"
    with pytest.raises(AuditError):
        read_model(path)


def test_moderate_nesting_matches(tmp_path: Path, inline: int) -> None:
    inner = fld(5, fld(1, BIG) + fld(9, bytes(4 * BIG))) + fld(2, b"leaf")
    for _ in range(30):
        attr = fld(1, b"then_branch") + fld(20, 5) + fld(6, inner)
        inner = fld(1, fld(4, b"If") + fld(5, attr))
    assert_same(write(tmp_path, graph_model_bytes(inner)))


# -- corrupt input --------------------------------------------------------------------------


def test_every_truncation_agrees_with_plain_path(tmp_path: Path, inline: int) -> None:
    """Each prefix of a model either parses to the plain path's result or raises."""
    model = model_of(rich_graph("", depth=0)).SerializeToString()
    step = max(1, len(model) // 150)
    for cut in [*range(1, len(model), step), len(model) - 1]:
        path = write(tmp_path, model[:cut])
        try:
            expected = plain(path)
        except AuditError as exc:
            with pytest.raises((WireFormatError, NotOnnxError)) as ours:
                read_skeleton(path)
            if isinstance(exc, TruncatedError):  # the kind tells the loader which error to raise
                assert isinstance(ours.value, WireFormatError) and ours.value.kind == "truncated"
            continue
        assert read_skeleton(path) == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x08" + b"\xff" * 11, id="varint-too-long"),
        pytest.param(b"\x08\x07\x3a\xff\xff\xff\xff\xff\x0f", id="length-past-eof"),
        pytest.param(b"\x08\x07\x3a" + varint(1 << 62) + b"abc", id="length-huge"),
        pytest.param(b"\x08\x07\x3a\x04\x2a\x10\x00\x00", id="nested-length-past-parent"),
        pytest.param(b"\x08\x07\x0e", id="wire-type-6"),
        pytest.param(b"\x08\x07\x0c", id="stray-end-group"),
        pytest.param(b"\x08\x07\x3b\x08\x01", id="unterminated-group"),
        pytest.param(b"\x00\x01", id="field-zero"),
        pytest.param(b"\x08\x07\x3a\x05\x2a\x03\x22\x03\x00", id="packed-float-bad-length"),
        pytest.param(b"\x08\x07\x3a\x03\x2a\x01\x08", id="truncated-dims"),
    ],
)
def test_corrupt_input_raises(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(WireFormatError) as ours:
        read_skeleton(path)
    assert ours.value.kind in ("truncated", "corrupt")
    with pytest.raises(AuditError):
        read_model(path)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    """Garbage raises a documented error or parses to the plain path's result.

    The one allowed difference: a stripped payload is never read, so corruption inside it
    (a bad varint in packed int64_data) fails only the plain path.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "r.onnx")
        path.write_bytes(data)
        try:
            expected = plain(path)
        except AuditError:
            expected = None
        try:
            ours = read_skeleton(path)
        except (WireFormatError, AuditError):
            assert expected is None
            return
        assert expected is None or ours == expected


def test_file_errors_match_read_model(tmp_path: Path) -> None:
    cases = [
        tmp_path / "missing.onnx",
        write(tmp_path, b"", "empty.onnx"),
        tmp_path,
        write(tmp_path, b"\x12\x03abc", "nograph.onnx"),  # parses, but is no model
        write(tmp_path, fld(1, 8), "noir.onnx"),
    ]
    for path in cases:
        with pytest.raises(AuditError) as expected:
            read_model(path)
        with pytest.raises(AuditError) as ours:
            read_skeleton(path)
        assert type(ours.value) is type(expected.value)  # the wording is the loader's to change


def test_forged_marker_is_refused_like_read_model(tmp_path: Path, inline: int) -> None:
    """The marker key is reserved: an input tensor carrying it fails on both paths."""
    for size in (3, BIG):
        forged = numpy_helper.from_array(arr(size), f"forged{size}")
        forged.external_data.add(key="onnx-audit", value="stripped")
        nodes = [constant("c", forged)]
        path = write(tmp_path, model_of(helper.make_graph(nodes, "g", [], [])))
        with pytest.raises(AuditError) as expected:
            read_model(path)
        with pytest.raises(AuditError) as ours:
            read_skeleton(path)
        assert type(ours.value) is type(expected.value)
        assert f"forged{size}" in str(ours.value)


def test_is_large_matches_element_count() -> None:
    from analyzer.read.loader import element_count

    rng = np.random.default_rng(0)
    for _ in range(2000):
        dims = [int(d) for d in rng.integers(-40, 40, size=rng.integers(0, 5))]
        assert strip._is_large(dims) == (element_count(dims) > KEEP_ELEMENTS)


# -- over 2 GiB (a sparse file: no bytes are written or read) -------------------------------


def test_single_file_over_2gib(tmp_path: Path) -> None:
    """A 2.5 GB embedded model (a sparse file): protobuf refuses it, the skeleton does not."""
    count = 625_000_000  # float32 -> 2.5e9 bytes
    head = fld(1, count) + fld(2, 1) + fld(8, b"huge")
    tensor_len = len(head) + len(varint(9 << 3 | 2)) + len(varint(4 * count)) + 4 * count
    graph_prefix = fld(2, b"g") + varint(5 << 3 | 2) + varint(tensor_len) + head
    graph_prefix += varint(9 << 3 | 2) + varint(4 * count)
    graph_len = len(graph_prefix) + 4 * count
    prefix = fld(1, 8) + fld(8, fld(2, 18)) + varint(7 << 3 | 2) + varint(graph_len)
    path = tmp_path / "huge.onnx"
    with path.open("wb") as handle:
        handle.write(prefix + graph_prefix)
        handle.truncate(len(prefix) + graph_len)
    assert path.stat().st_size > 2**31
    model = read_skeleton(path)
    tensor = model.graph.initializer[0]
    assert list(tensor.dims) == [count]
    assert {e.key: e.value for e in tensor.external_data}["length"] == str(4 * count)
    assert model.graph.name == "g"
