"""Hostile and broken model files: exit 0/1/2, one clear line, nothing read outside the folder.

Every file is built here, small, in tmp_path. Errors go through the CLI as CI runs it (the
sandboxed child included) and must be exactly one line `onnx-audit: error: <path>: <what>
(<hint>)`; files that can be analysed must give a report whose numbers are right.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import random
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import AttributeProto, ModelProto, TensorProto, helper

from analyzer import analyze
from analyzer.cli import main
from analyzer.core.errors import AuditError
from analyzer.core.protowalk import iter_graphs, repair_strings, strings_are_text
from analyzer.read import loader
from analyzer.read.order import sort_graphs
from analyzer.view.graph import build
from analyzer.view.shapes import infer

FLOAT = TensorProto.FLOAT


# --------------------------------------------------------------------------- helpers


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(capsys: pytest.CaptureFixture[str], path: Path, *words: str) -> str:
    """Exit 2 and one line `onnx-audit: error: <path>: <what> (<hint>)` naming every word."""
    code, out, err = cli(capsys, str(path), "--format", "json")
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith(")\n"), err
    assert err.startswith(f"onnx-audit: error: {path}: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    return err


def report(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> dict[str, Any]:
    """A model that must be analysed: exit 0, nothing on stderr, the JSON report."""
    code, out, err = cli(capsys, str(path), "--format", "json", *extra)
    assert (code, err) == (0, ""), err
    data: dict[str, Any] = json.loads(out)
    return data


def value(name: str, shape: list[int | str] | None = None, dtype: int = FLOAT) -> Any:
    return helper.make_tensor_value_info(name, dtype, shape)


def model(
    nodes: list[onnx.NodeProto],
    inputs: list[Any],
    outputs: list[Any],
    initializers: list[TensorProto] = (),  # type: ignore[assignment]
    opset: int = 17,
    **kwargs: Any,
) -> ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    kwargs.setdefault("opset_imports", [helper.make_opsetid("", opset)])
    return helper.make_model(graph, **kwargs)


def weight(name: str = "w", dims: tuple[int, ...] = (4, 3)) -> TensorProto:
    count = loader.element_count(dims)
    return helper.make_tensor(name, FLOAT, dims, [0.5] * count)


def matmul(w: TensorProto | None = None, **kwargs: Any) -> ModelProto:
    """x[1,4] @ w[4,3] -> y: 12 parameters when w is stored."""
    inits = [weight() if w is None else w]
    return model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [1, 4])],
        [value("y")],
        inits,
        **kwargs,
    )


def save(proto: ModelProto | bytes, path: Path) -> Path:
    data = proto if isinstance(proto, bytes) else proto.SerializeToString()
    path.write_bytes(data)
    return path


def external(
    location: str,
    *,
    offset: int | None = None,
    length: int | None = None,
    dims: tuple[int, ...] = (4, 3),
) -> ModelProto:
    """The MatMul model with w in external data at `location`."""
    tensor = TensorProto(name="w", data_type=FLOAT, dims=list(dims))
    tensor.data_location = TensorProto.EXTERNAL
    for key, text in (("location", location), ("offset", offset), ("length", length)):
        if text is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(text)
    return matmul(tensor, opset=17)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path this process opens (analyze() runs in-process; onnx C++ opens no files)."""
    seen: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path):
            seen.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, str | Path):
            seen.append(os.path.realpath(file))
        return real_os_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    yield seen


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No pyproject.toml config from the repo leaks into these runs."""
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- not a model


def test_empty_file(capsys, tmp_path) -> None:
    assert_error(capsys, save(b"", tmp_path / "empty.onnx"), "empty file")


def test_random_bytes(capsys, tmp_path) -> None:
    data = random.Random(7).randbytes(4096)
    assert_error(capsys, save(data, tmp_path / "random.onnx"), "not an ONNX model")


def test_random_bytes_that_start_like_onnx(capsys, tmp_path) -> None:
    """0x08 is ir_version's tag: still a clear line (truncated, corrupt or not ONNX)."""
    for seed in range(5):
        data = b"\x08\x08" + random.Random(seed).randbytes(2000)
        path = save(data, tmp_path / f"r{seed}.onnx")
        code, _, err = cli(capsys, str(path))
        assert code == 2 and err.count("\n") == 1 and "internal error" not in err


def test_text_file_named_onnx(capsys, tmp_path) -> None:
    text = b"import torch\nmodel = torch.load('model.pt')\n" * 20
    assert_error(capsys, save(text, tmp_path / "model.onnx"), "not an ONNX model", "text file")


def test_zip_renamed_onnx(capsys, tmp_path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model.onnx", matmul().SerializeToString())
    path = save(buffer.getvalue(), tmp_path / "model.onnx")
    assert_error(capsys, path, "not an ONNX model", "zip archive")


def test_valid_model_truncated_at_half(capsys, tmp_path) -> None:
    data = matmul(weight(dims=(64, 64))).SerializeToString()
    path = save(data[: len(data) // 2], tmp_path / "half.onnx")
    assert_error(capsys, path, "truncated", "past the end of the file", "re-download")


def test_truncated_anywhere_is_one_clear_line(tmp_path) -> None:
    data = matmul(weight(dims=(8, 8))).SerializeToString()
    path = tmp_path / "cut.onnx"
    for end in range(1, len(data), 3):
        path.write_bytes(data[:end])
        try:
            analyze(path)
        except AuditError as exc:
            assert "\n" not in exc.line()


def test_flipped_bytes_never_crash(capsys, tmp_path) -> None:
    """Any outcome but a crash: a report, or one error line."""
    data = matmul(weight(dims=(8, 3))).SerializeToString()
    path = tmp_path / "flip.onnx"
    for position in range(0, len(data), 2):
        for mask in (0x01, 0x80, 0xFF):
            flipped = bytearray(data)
            flipped[position] ^= mask
            path.write_bytes(flipped)
            try:
                analyze(path)
            except AuditError as exc:
                assert "\n" not in exc.line()
    for position in (0, 1, 5, len(data) // 2, len(data) - 1):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        path.write_bytes(flipped)
        code, _, err = cli(capsys, str(path), "--format", "json")
        assert code in (0, 2) and "internal error" not in err and "Traceback" not in err


def test_invalid_utf8_names_are_escaped_not_a_crash(capsys, tmp_path) -> None:
    """Found by flipping bytes: protobuf hands back bytes for names that are not UTF-8."""
    proto = matmul(producer_name="xx")
    proto.graph.node[0].name = "AAAA"
    data = proto.SerializeToString().replace(b"AAAA", b"A\xffA\xfe").replace(b"xx", b"\xc3(")
    data = save(data, tmp_path / "utf8.onnx")
    result = report(capsys, data)
    assert result["totals"]["params"] == 12
    assert [layer["name"] for layer in result["layers"]] == ["A\\xffA\\xfe"]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _string_field_paths() -> Iterator[tuple[str, list[int], int]]:
    """Every string field of every message reachable from ModelProto: (label, path, number)."""
    queue = [(ModelProto.DESCRIPTOR, [], "ModelProto")]
    seen = set()
    while queue:
        message, path, label = queue.pop(0)
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        for field in message.fields:
            if field.type == field.TYPE_STRING:
                yield f"{label}.{field.name}", path, field.number
            elif field.type == field.TYPE_MESSAGE:
                queue.append((field.message_type, [*path, field.number], f"{label}.{field.name}"))


STRING_FIELDS = list(_string_field_paths())


@pytest.mark.parametrize(
    ("label", "path", "number"), STRING_FIELDS, ids=[f[0] for f in STRING_FIELDS]
)
def test_utf8_verification_covers_every_string_field(label, path, number) -> None:
    """The fast check says "text" only when the walk would find nothing to repair."""
    for payload, valid in ((b"ok", True), (b"o\xffk", False)):
        data = _varint(number << 3 | 2) + _varint(len(payload)) + payload
        for outer in reversed(path):
            data = _varint(outer << 3 | 2) + _varint(len(data)) + data
        proto = ModelProto()
        proto.ParseFromString(data)
        assert strings_are_text(data) is valid, label
        assert repair_strings(proto) == (0 if valid else 1), label


def test_model_without_graph(capsys, tmp_path) -> None:
    proto = ModelProto(ir_version=8)
    proto.opset_import.add().version = 17
    assert_error(capsys, save(proto, tmp_path / "nograph.onnx"), "no graph")


def test_graph_field_with_the_wrong_wire_type(capsys, tmp_path) -> None:
    """onnx.load returns a graph-less model for this: check_is_model catches it."""
    data = b"\x08\x08" + b"\x38\x01"  # ir_version 8, field 7 (graph) as a varint
    assert onnx.load_from_string(data).HasField("graph") is False
    assert_error(capsys, save(data, tmp_path / "wire.onnx"), "no graph")


def test_model_without_ir_version(capsys, tmp_path) -> None:
    proto = matmul()
    proto.ClearField("ir_version")
    assert_error(capsys, save(proto, tmp_path / "noir.onnx"), "no ir_version")


def test_not_a_regular_file(capsys, tmp_path) -> None:
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    assert_error(capsys, fifo, "not a regular file")


# --------------------------------------------------------------------------- malformed graphs


def test_cycle(capsys, tmp_path) -> None:
    proto = model(
        [
            helper.make_node("Add", ["x", "b"], ["a"], name="add"),
            helper.make_node("Relu", ["a"], ["b"], name="relu"),
            helper.make_node("Relu", ["a"], ["y"], name="out"),
        ],
        [value("x", [1, 4])],
        [value("y")],
    )
    assert_error(capsys, save(proto, tmp_path / "cycle.onnx"), "cycle through node")


def test_node_consuming_its_own_output(capsys, tmp_path) -> None:
    proto = model([helper.make_node("Add", ["x", "y"], ["y"], name="acc")], [value("x")], [])
    assert_error(capsys, save(proto, tmp_path / "self.onnx"), "'acc' consumes its own output")


def test_cycle_inside_a_subgraph(capsys, tmp_path) -> None:
    body = helper.make_graph(
        [helper.make_node("Neg", ["b"], ["a"]), helper.make_node("Neg", ["a"], ["b"])],
        "then_body",
        [],
        [value("a")],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["z"])], "else_body", [], [value("z")]
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=other)
    proto = model([node], [value("c", [], TensorProto.BOOL), value("x", [1])], [value("y")])
    assert_error(capsys, save(proto, tmp_path / "subcycle.onnx"), "then_body", "cycle")


def test_node_consuming_an_undefined_tensor(capsys, tmp_path) -> None:
    proto = model([helper.make_node("MatMul", ["x", "nope"], ["y"])], [value("x", [1, 4])], [])
    path = save(proto, tmp_path / "undefined.onnx")
    assert_error(capsys, path, "consumes undefined tensor 'nope'", "onnx.checker")


@pytest.mark.parametrize(
    ("nodes", "inits", "inputs"),
    [
        pytest.param(["y", "y"], [], ["x"], id="two-nodes-one-output"),
        pytest.param(["y"], ["w", "w"], ["x"], id="initializer-twice"),
        pytest.param(["w"], ["w"], ["x"], id="node-output-is-an-initializer"),
        pytest.param(["x"], [], ["x"], id="node-output-is-a-graph-input"),
        pytest.param(["y"], [], ["x", "x"], id="graph-input-twice"),
    ],
)
def test_duplicate_tensor_names(capsys, tmp_path, nodes, inits, inputs) -> None:
    graph_nodes = [helper.make_node("Relu", ["x"], [out]) for out in nodes]
    graph_nodes.append(helper.make_node("Identity", [nodes[0]], ["final"]))
    proto = model(
        graph_nodes,
        [value(n, [4, 3]) for n in inputs],
        [value("final")],
        [weight(n) for n in inits],
    )
    name = nodes[0] if len(nodes) > 1 or not inits else inits[0]
    name = inputs[0] if len(inputs) > 1 or nodes == ["x"] else name
    assert_error(capsys, save(proto, tmp_path / "dup.onnx"), f"tensor '{name}' is defined twice")


def test_long_and_multiline_names_stay_one_short_line(capsys, tmp_path) -> None:
    hostile = "evil\nname\r" + "x" * 1_000_000
    proto = model([helper.make_node("Relu", [hostile], ["y"])], [value("x")], [value("y")])
    err = assert_error(capsys, save(proto, tmp_path / "long.onnx"), "undefined tensor")
    assert len(err) < 600 and "evil\\nname\\r" in err


def test_forged_stripped_marker_is_rejected(capsys, tmp_path) -> None:
    """The loader's own marker must not let a file skip the external data checks."""
    proto = external("../secret.bin", length=48)
    entry = proto.graph.initializer[0].external_data.add()
    entry.key, entry.value = loader.MARK_KEY, "stripped"
    assert_error(capsys, save(proto, tmp_path / "forged.onnx"), "internal 'onnx-audit' marker")


def test_recursive_local_function(capsys, tmp_path) -> None:
    body = [helper.make_node("f", ["a"], ["b"], domain="local")]
    fn = helper.make_function("local", "f", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    proto = model(
        [helper.make_node("f", ["x"], ["y"], domain="local")],
        [value("x", [1])],
        [value("y")],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[fn],
    )
    assert_error(capsys, save(proto, tmp_path / "recursive.onnx"), "'local::f' calls itself")


@pytest.mark.parametrize("levels", [18, 20])
def test_exponential_function_nesting_is_capped(capsys, tmp_path, levels) -> None:
    """f20 calls f19 twice, ... : 2**20 copies of f0 if expanded naively. 2**18 (262,144
    nodes from a 5 KB file) is over the cap too: found by a red-team sweep, it took a minute."""
    opsets = [helper.make_opsetid("", 17)]
    functions = [
        helper.make_function(
            "local", "f0", ["a"], ["b"], [helper.make_node("Neg", ["a"], ["b"])], opsets
        )
    ]
    for level in range(1, levels + 1):
        calls = [
            helper.make_node(f"f{level - 1}", ["a"], ["t"], domain="local"),
            helper.make_node(f"f{level - 1}", ["t"], ["b"], domain="local"),
        ]
        functions.append(helper.make_function("local", f"f{level}", ["a"], ["b"], calls, opsets))
    proto = model(
        [helper.make_node(f"f{levels}", ["x"], ["y"], domain="local")],
        [value("x", [1])],
        [value("y")],
        opset_imports=[*opsets, helper.make_opsetid("local", 1)],
        functions=functions,
    )
    assert_error(capsys, save(proto, tmp_path / "bomb.onnx"), "functions expand to over")


# --------------------------------------------------------------------------- external data


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """tmp/model/ holds the models; tmp/secret.bin sits outside it."""
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 4096)
    inside = tmp_path / "model"
    inside.mkdir()
    (inside / "w.bin").write_bytes(b"\x00" * 48)
    return inside


def test_external_data_inside_the_folder_is_counted_not_read(capsys, folder, opened) -> None:
    path = save(external("w.bin", offset=0, length=48), folder / "ok.onnx")
    assert analyze(path).totals.params == 12
    assert str(folder / "w.bin") not in opened
    assert report(capsys, path)["totals"]["params"] == 12


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("../secret.bin", ("climbs out with '..'",)),
        ("sub/../../secret.bin", ("climbs out with '..'",)),
        ("..\\secret.bin", ("climbs out with '..'",)),
        ("SECRET_ABSOLUTE", ("is an absolute path",)),
        ("C:\\Windows\\secret.bin", ("is an absolute path",)),
        ("/dev/zero", ("is an absolute path",)),
        ("link.bin", ("leads outside the model's folder",)),
        ("linkdir/secret.bin", ("leads outside the model's folder",)),
        ("missing.bin", ("does not exist", "copy the weight files")),
        ("", ("external tensor without a location",)),
        ("subdir", ("is not a regular file",)),
    ],
)
def test_unsafe_external_data(capsys, folder, opened, location, words) -> None:
    secret = folder.parent / "secret.bin"
    (folder / "link.bin").symlink_to(secret)
    (folder / "linkdir").symlink_to(folder.parent)
    (folder / "subdir").mkdir()
    location = location.replace("SECRET_ABSOLUTE", str(secret))
    path = save(external(location, offset=0, length=48), folder / "bad.onnx")
    assert_error(capsys, path, *words)
    with pytest.raises(AuditError):
        analyze(path)
    assert not [p for p in opened if not p.startswith(str(folder))]


@pytest.mark.parametrize(
    "case",
    [
        (16, 48, (4, 3), ("bytes 16+48, beyond the file's 48",)),
        (4096, None, (4, 3), ("bytes 4,096+48",)),
        (0, None, (4, 3000), ("bytes 0+48,000, beyond",)),
        (0, 4800, (4, 3), ("stores 4,800 bytes where its dims need 48",)),
        (0, None, (2**31, 2**31), ("bytes 0+18,446,744,073,709,551,616",)),
        (2**70, 48, (4, 3), ("over 2**64",)),
        (-4, 48, (4, 3), ("negative external offset/length",)),
        ("0x10", 48, (4, 3), ("not a number",)),
    ],
)
def test_external_data_range_beyond_the_file(capsys, folder, case) -> None:
    offset, length, dims, words = case
    proto = external("w.bin", offset=offset, length=length, dims=dims)
    assert_error(capsys, save(proto, folder / "range.onnx"), *words)


def test_small_external_norm_values_are_not_read(capsys, folder, opened) -> None:
    """InstanceNormalization's scale decides by its values, but never reads external data."""
    proto = external("w.bin", offset=0, length=48, dims=(12,))
    graph = proto.graph
    del graph.node[:]
    graph.initializer.append(helper.make_tensor("b", FLOAT, [12], [0.0] * 12))
    graph.input[0].CopyFrom(value("x", [1, 12, 5]))
    graph.output[0].CopyFrom(value("y", [1, 12, 5]))
    graph.node.append(helper.make_node("InstanceNormalization", ["x", "w", "b"], ["y"]))
    path = save(proto, folder / "norm.onnx")
    opened.clear()
    assert analyze(path).totals.params == 12 + 12  # values unknown: counted as stored
    assert str(folder / "w.bin") not in opened


def _with_default_tensor(tensor: TensorProto) -> ModelProto:
    """The MatMul model plus a local function whose default attribute holds `tensor`."""
    proto = matmul()
    body = [helper.make_node("Constant", [], ["k"])]
    body[0].attribute.add(name="value", ref_attr_name="w", type=AttributeProto.TENSOR)
    function = helper.make_function("local", "Fn", [], ["k"], body, [helper.make_opsetid("", 17)])
    function.attribute_proto.append(helper.make_attribute("w", tensor))
    proto.functions.append(function)
    proto.opset_import.add(domain="local", version=1)
    return proto


def _outside(name: str, dims: list[int]) -> TensorProto:
    tensor = TensorProto(name=name, data_type=FLOAT, dims=dims)
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../secret.bin")
    return tensor


@pytest.mark.parametrize("where", ["function default", "sparse_tensors attribute"])
def test_every_tensor_location_is_checked(capsys, folder, where) -> None:
    """Found by a red-team sweep: these tensors escaped the loader's checks, so `verify` let
    onnxruntime read an external file from outside the folder."""
    if where == "function default":
        proto = _with_default_tensor(_outside("d", [4, 3]))
    else:
        proto = matmul()
        sparse = helper.make_sparse_tensor(
            _outside("v", [2]), helper.make_tensor("i", TensorProto.INT64, [2], [0, 5]), [4, 3]
        )
        node = helper.make_node("Identity", ["x"], ["x2"])
        node.attribute.append(helper.make_attribute("extra", [sparse]))
        proto.graph.node.append(node)
    path = save(proto, folder / "hidden.onnx")
    assert_error(capsys, path, "'../secret.bin' climbs out")


def test_function_default_tensor_dims_are_checked(capsys, tmp_path) -> None:
    tensor = helper.make_tensor("d", FLOAT, [4, 3], [0.0] * 12)
    tensor.dims[0] = -4
    assert_error(capsys, save(_with_default_tensor(tensor), tmp_path / "neg.onnx"), "negative dim")


def test_hard_link_is_stat_only_for_the_analysis(capsys, folder, opened) -> None:
    """The analysis never opens external data, so a hard link is not read (verify refuses it)."""
    os.link(folder.parent / "secret.bin", folder / "hard.bin")
    path = save(external("hard.bin", offset=0, length=48), folder / "hard.onnx")
    assert analyze(path).totals.params == 12
    assert not [p for p in opened if "secret" in p or "hard.bin" in p]


def test_model_over_2gb_through_external_data(capsys, folder, opened) -> None:
    """2.5 GiB of weights in a sparse file: counted exactly, never read."""
    rows, cols = 655_360, 1024
    size = rows * cols * 4
    with (folder / "big.bin").open("wb") as handle:
        handle.truncate(size)
    proto = matmul(
        external("big.bin", offset=0, length=size, dims=(rows, cols)).graph.initializer[0]
    )
    proto.graph.input[0].CopyFrom(value("x", [1, rows]))
    path = save(proto, folder / "big.onnx")
    opened.clear()
    result = analyze(path)
    assert result.totals.params == rows * cols == 671_088_640
    assert result.totals.param_bytes == size > 2**31
    assert not [p for p in opened if p.endswith("big.bin")]
    data = report(capsys, path)
    assert data["totals"]["params"] == 671_088_640
    assert data["totals"]["macs"] == rows * cols


def test_model_file_over_2gb_is_refused_clearly(capsys, tmp_path) -> None:
    path = tmp_path / "huge.onnx"
    with path.open("wb") as handle:
        handle.truncate(2**31 + 10)
    code, out, err = cli(capsys, str(path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "internal error" not in err and str(path) in err


# --------------------------------------------------------------------------- hostile dims


def test_huge_dims_without_data(capsys, tmp_path) -> None:
    tensor = TensorProto(name="w", data_type=FLOAT, dims=[2**31, 2**31])
    path = save(matmul(tensor), tmp_path / "huge.onnx")
    words = ("tensor 'w' holds no data", "need 4,611,686,018,427,387,904")
    assert_error(capsys, path, *words, "data is missing")
    code, _, err = cli(capsys, str(path), "--max-memory", "1GiB")  # same under a small cap
    assert code == 2 and words[0] in err


def test_huge_dims_in_a_constant_node(capsys, tmp_path) -> None:
    tensor = TensorProto(name="c", data_type=FLOAT, dims=[2**40, 2**40, 2**40])
    nodes = [
        helper.make_node("Constant", [], ["c"], value=tensor),
        helper.make_node("MatMul", ["x", "c"], ["y"]),
    ]
    proto = model(nodes, [value("x", [1, 4])], [value("y")])
    assert_error(capsys, save(proto, tmp_path / "const.onnx"), "tensor 'c' holds no data")


def test_huge_dims_after_stripping_are_bounded_by_the_file_size() -> None:
    """The skeleton reader cannot count typed payloads: the file size bounds them instead."""
    tensor = TensorProto(name="w", data_type=FLOAT, dims=[2**31, 2**31])
    tensor.float_data.extend([1.0] * 2000)
    loader.strip_tensor(tensor)
    with pytest.raises(AuditError, match="more than the 10,000-byte file can hold"):
        loader.check_tensor(tensor, "w", file_size=10_000)


def test_huge_rank_is_linear_time(capsys, tmp_path) -> None:
    """A rank-50,000 tensor of huge dims: element_count saturates instead of going quadratic."""
    tensor = TensorProto(name="w", data_type=FLOAT, dims=[2**62] * 50_000)
    assert loader.element_count(tensor.dims) == loader.COUNT_CAP  # was minutes of big ints
    assert_error(capsys, save(matmul(tensor), tmp_path / "rank.onnx"), "holds no data", "dims)")


def test_huge_declared_shapes_are_counted_without_allocating(capsys, tmp_path) -> None:
    """Weights as a graph input of [2**31, 2**31], a Reshape to [2**40, 2**20]: Python ints."""
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [2**40, 2**20])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Reshape", ["h", "s"], ["y"]),
    ]
    proto = model(
        nodes,
        [value("x", [2**30, 2**31]), value("w", [2**31, 2**31])],
        [value("y")],
        [shape],
    )
    data = report(capsys, save(proto, tmp_path / "shapes.onnx"), "--max-memory", "1GiB")
    assert data["totals"]["unknown_weights"] == 2**62
    assert data["totals"]["macs"] == 2**30 * 2**31 * 2**31
    assert any("graph input" in warning for warning in data["warnings"])


def test_negative_dims(capsys, tmp_path) -> None:
    tensor = TensorProto(name="w", data_type=FLOAT, dims=[-4, -3])
    assert_error(capsys, save(matmul(tensor), tmp_path / "neg.onnx"), "negative dim [-4, -3]")


def test_negative_dim_of_a_graph_input_is_unknown_not_negative(capsys, tmp_path) -> None:
    proto = matmul()
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -5
    data = report(capsys, save(proto, tmp_path / "negin.onnx"))
    assert data["totals"]["params"] == 12
    assert data["model"]["inputs"][0] == ["x", ["?", 4]]


def test_negative_sparse_dims(capsys, tmp_path) -> None:
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("w", FLOAT, [2], [1.0, 2.0]),
        helper.make_tensor("wi", TensorProto.INT64, [2], [0, 1]),
        [-4, 3],
    )
    proto = matmul()
    del proto.graph.initializer[:]
    proto.graph.sparse_initializer.append(sparse)
    assert_error(capsys, save(proto, tmp_path / "sparse.onnx"), "sparse tensor 'w'", "negative")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"raw_data": b"\x00" * 20}, ("holds 20 bytes where its dims [4, 3] need 48",)),
        ({"float_data": [1.0] * 5}, ("holds 5 values where its dims [4, 3] need 12",)),
        ({"float_data": [1.0] * 100, "dims": [40, 300]}, ("holds 100 values", "need 12,000")),
        ({"raw_data": b"\x00" * 64, "dims": [40, 300]}, ("holds 64 bytes", "need 48,000")),
        ({}, ("holds no data",)),
    ],
)
def test_short_tensor_data(capsys, tmp_path, payload, words) -> None:
    tensor = TensorProto(name="w", data_type=FLOAT, dims=payload.pop("dims", [4, 3]))
    for field, content in payload.items():
        if field == "raw_data":
            tensor.raw_data = content
        else:
            getattr(tensor, field).extend(content)
    assert_error(capsys, save(matmul(tensor), tmp_path / "short.onnx"), *words)


def test_value_info_of_absurd_rank_is_ignored_with_a_warning(capsys, tmp_path) -> None:
    proto = matmul()
    proto.graph.output[0].CopyFrom(value("y", [2**62] * 5000))
    data = report(capsys, save(proto, tmp_path / "rank.onnx"))
    assert data["totals"]["params"] == 12
    assert any("5,000 dims" in warning for warning in data["warnings"])


# --------------------------------------------------------------------------- unknown parts


def test_weights_as_graph_inputs_are_unknown_not_zero(capsys, tmp_path) -> None:
    proto = model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [value("x", [1, 4]), value("w", [4, 3])],
        [value("y")],
    )
    data = report(capsys, save(proto, tmp_path / "inputs.onnx"))
    assert data["totals"]["params"] == 0
    assert data["totals"]["unknown_weights"] == 12
    assert any("'w'" in w and "graph input" in w for w in data["warnings"])


def test_unknown_op_domain_is_counted_with_a_warning(capsys, tmp_path) -> None:
    proto = model(
        [helper.make_node("Mystery", ["x", "w"], ["y"], domain="evil.corp")],
        [value("x", [1, 4])],
        [value("y")],
        [weight()],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.corp", 3)],
    )
    data = report(capsys, save(proto, tmp_path / "domain.onnx"))
    assert data["totals"]["params"] == 12
    assert any("unhandled op with weights: evil.corp::Mystery" in w for w in data["warnings"])


def test_unknown_domain_without_an_opset_import(capsys, tmp_path) -> None:
    proto = model(
        [helper.make_node("Mystery", ["x", "w"], ["y"], domain="evil.corp")],
        [value("x", [1, 4])],
        [value("y")],
        [weight()],
    )
    data = report(capsys, save(proto, tmp_path / "noimport.onnx"))
    assert data["totals"]["params"] == 12
    assert any("'evil.corp' not in opset_import" in w for w in data["warnings"])


def test_opset_1(capsys, tmp_path) -> None:
    data = report(capsys, save(matmul(opset=1), tmp_path / "opset1.onnx"))
    assert data["totals"]["params"] == 12 and data["totals"]["macs"] == 12


@pytest.mark.parametrize("version", [99, 2**62])
def test_opset_from_the_future_is_a_warning(capsys, tmp_path, version) -> None:
    data = report(capsys, save(matmul(opset=version), tmp_path / "future.onnx"))
    assert data["totals"]["params"] == 12
    newest = onnx.defs.onnx_opset_version()
    assert f"opset ai.onnx {version} is newer than onnx" in " ".join(data["warnings"])
    assert f"shapes follow opset {newest} rules" in " ".join(data["warnings"])


def test_ir_version_from_the_future_is_a_warning(capsys, tmp_path) -> None:
    proto = matmul()
    proto.ir_version = 99
    data = report(capsys, save(proto, tmp_path / "ir99.onnx"))
    assert data["totals"]["params"] == 12
    assert any("IR version 99 is newer" in w for w in data["warnings"])


def test_no_opset_import(capsys, tmp_path) -> None:
    proto = matmul()
    del proto.opset_import[:]
    data = report(capsys, save(proto, tmp_path / "noopset.onnx"))
    assert data["totals"]["params"] == 12
    assert "imports no ai.onnx opset" in data["warnings"][0]


# --------------------------------------------------------------------------- size and depth


def _wire(field: int, payload: bytes) -> bytes:
    return loader_varint((field << 3) | 2) + loader_varint(len(payload)) + payload


def loader_varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def nested_if_bytes(depth: int) -> bytes:
    """A serialized model whose If nodes nest `depth` deep, written directly on the wire.

    protobuf's Python API refuses to build past its nesting limit, so the file is composed by
    hand: Graph{node: If{attribute: then_branch{g: Graph{...}}}}.
    """
    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "leaf", [], [value("y")])
    graph = leaf.SerializeToString()
    for level in range(depth):
        attribute = _wire(1, b"then_branch") + _wire(6, graph) + b"\xa0\x01\x05"  # type GRAPH
        node = _wire(1, b"c") + _wire(2, b"y") + _wire(4, b"If") + _wire(5, attribute)
        graph = _wire(1, node) + _wire(2, f"g{level}".encode())
    inputs = _wire(11, value("c", [], TensorProto.BOOL).SerializeToString())
    inputs += _wire(11, value("x", [1]).SerializeToString())
    opset = b"\x10\x11"  # version 17
    return b"\x08\x08" + _wire(8, opset) + _wire(7, graph + inputs)


def test_if_nesting_beyond_protobufs_limit_is_a_clear_error(capsys, tmp_path) -> None:
    path = save(nested_if_bytes(500), tmp_path / "deep.onnx")
    assert_error(capsys, path, "nest deeper than protobuf's limit", "flatten")


def test_if_nesting_at_protobufs_limit_is_analysed(capsys, tmp_path) -> None:
    path = save(nested_if_bytes(30), tmp_path / "deep30.onnx")
    data = report(capsys, path)
    assert data["model"]["nodes"] == 31


def test_pipeline_walks_500_nested_subgraphs_without_recursion(tmp_path) -> None:
    """Files cannot nest this deep (protobuf stops at ~32 Ifs), but our walks must not care."""
    proto = ModelProto(ir_version=8)
    proto.opset_import.add().version = 17
    graph = proto.graph
    graph.input.extend([value("c", [], TensorProto.BOOL), value("x", [1])])
    graph.output.append(value("y0", [1]))
    for level in range(500):
        node = graph.node.add(op_type="If", input=["c"], output=[f"y{level}"])
        attribute = node.attribute.add(name="then_branch", type=AttributeProto.GRAPH)
        attribute.g.output.append(value(f"y{level + 1}", [1]))
        graph = attribute.g
    graph.node.add(op_type="Identity", input=["x"], output=["y500"])
    assert len(list(iter_graphs(proto))) == 501
    repair_strings(proto)
    sort_graphs(proto)
    table, warnings = infer(proto)  # onnx's own parser refuses: a warning, not a crash
    assert warnings
    assert len(build(proto, lambda: table).nodes) == 501


def _chain(count: int, order: Callable[[range], Any] = iter, name: str | None = None) -> ModelProto:
    nodes = [
        helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=name or f"n{i}")
        for i in order(range(count))
    ]
    return model(nodes, [value("t0", ["N", 4])], [value(f"t{count}")])


def test_100k_node_chain(capsys, tmp_path) -> None:
    path = save(_chain(100_000), tmp_path / "chain.onnx")
    data = report(capsys, path)
    assert data["model"]["nodes"] == 100_000
    assert data["model"]["outputs"][0][1] == ["N", 4]


def test_20k_nodes_backwards_with_one_name(capsys, tmp_path) -> None:
    """Reversed file order forces the topological sort; one shared name forces renaming."""
    path = save(_chain(20_000, reversed, name="same"), tmp_path / "same.onnx")
    data = report(capsys, path)
    assert data["model"]["nodes"] == 20_000
    assert data["model"]["outputs"][0][1] == ["N", 4]


# --------------------------------------------------------------------------- --debug


def test_debug_shows_the_traceback(capsys, tmp_path) -> None:
    path = save(b"", tmp_path / "empty.onnx")
    code, _, err = cli(capsys, str(path), "--debug")
    assert code == 2 and "Traceback" in err and "empty file" in err


# --------------------------------------------------------------------------- constant subgraphs


def _constant_chain(length: int, consumers: int, op: str = "Add") -> ModelProto:
    """t_i = t_(i-1) + v_i over `length` stored tensors; `consumers` MatMuls read t_i's."""
    inits = [weight(f"v{i}", (4, 4)) for i in range(length if op == "Add" else 1)]
    nodes = [helper.make_node(op, ["v0", "v1"] if op == "Add" else ["v0"], ["t1"])]
    for i in range(2, length):
        inputs = [f"t{i - 1}", f"v{i}"] if op == "Add" else [f"t{i - 1}"]
        nodes.append(helper.make_node(op, inputs, [f"t{i}"]))
    step = max(1, (length - 1) // consumers)
    outputs = []
    for i in range(length - 1, 0, -step)[:consumers]:
        nodes.append(helper.make_node("MatMul", ["x", f"t{i}"], [f"y{i}"]))
        outputs.append(value(f"y{i}"))
    return model(nodes, [value("x", [1, 4])], outputs, inits)


def test_long_constant_chain_is_linear_and_via_is_capped(tmp_path) -> None:
    """w -> 20,000 Identities -> MatMul: one walk, `via` keeps the ops nearest the tensor."""
    path = save(_constant_chain(20_000, 1, op="Identity"), tmp_path / "ids.onnx")
    result = analyze(path)
    assert result.totals.params == 16
    (ref,) = [w for layer in result.layers for w in layer.weights if w.kind == "trainable"]
    assert len(ref.via) == 17 and ref.via[-1] == "..." and set(ref.via[:-1]) == {"Identity"}


def test_quadratic_constant_sharing_is_capped(tmp_path, monkeypatch) -> None:
    """n layers each reading a constant built from n stored tensors: n*n steps and report rows."""
    from analyzer.count import weights

    path = save(_constant_chain(400, 400), tmp_path / "adds.onnx")
    assert analyze(path).totals.params == 400 * 16  # 80,000 steps: fine
    monkeypatch.setattr(weights, "MAX_WALK_STEPS", 20_000)
    with pytest.raises(AuditError, match="constants reach the layers through over 20,000 steps"):
        analyze(path)


def test_input_shape_beyond_int64_is_a_usage_error(capsys, tmp_path) -> None:
    path = save(matmul(), tmp_path / "m.onnx")
    code, _, err = cli(capsys, str(path), "--input-shape", f"x=1,{2**70}")
    assert code == 2 and err.count("\n") == 1 and "below 2**63" in err
    with pytest.raises(AuditError, match=r"1\.\.2\*\*63-1"):
        analyze(path, input_shapes={"x": (1, 2**64)})


def test_declared_length_of_a_shape_vector_does_not_size_shape_inference(capsys, tmp_path) -> None:
    """Found by fuzzing: onnx's data propagation allocates by a declared 1-D int64 length."""
    starts = helper.make_tensor("s", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("e", TensorProto.INT64, [1], [1])
    proto = model(
        [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Slice", ["shape", "s", "e"], ["y"]),
        ],
        [value("x", ["N", 12, 16])],
        [value("y", [2**31 - 1], TensorProto.INT64)],
        [starts, ends],
    )
    proto.graph.value_info.append(value("shape", [2**31 - 1], TensorProto.INT64))
    data = report(capsys, save(proto, tmp_path / "shapevec.onnx"), "--max-memory", "1GiB")
    assert any("declared length 2,147,483,647 of 1-D tensor" in w for w in data["warnings"])
    assert data["model"]["outputs"][0][1] == [1]


def test_dense_layer_with_a_zero_dim_weight(capsys, tmp_path) -> None:
    """Found by fuzzing: ONX101 divided by the conv alternative's 0 weights."""
    conv_w = helper.make_tensor("cw", FLOAT, [4, 1, 3, 3], [0.1] * 36)
    nodes = [
        helper.make_node("Conv", ["x", "cw"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["y"]),
    ]
    empty = TensorProto(name="w", data_type=FLOAT, dims=[256, 0])
    proto = model(nodes, [value("x", [1, 1, 8, 8])], [value("y")], [conv_w, empty])
    data = report(capsys, save(proto, tmp_path / "zero.onnx"))
    assert data["totals"]["params"] == 36


def _slice_of_negative_dim() -> ModelProto:
    """Slice of an input declared [-5]: onnx's std::clamp assertion aborts the process."""
    starts = helper.make_tensor("s", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("e", TensorProto.INT64, [1], [1])
    return model(
        [helper.make_node("Slice", ["x", "s", "e"], ["y"])],
        [value("x", [-5])],
        [value("y")],
        [starts, ends],
    )


def test_negative_declared_dim_does_not_abort_shape_inference(capsys, tmp_path) -> None:
    """Found by fuzzing: the CLI said 'resource limit exceeded' plus a C++ assertion line."""
    data = report(capsys, save(_slice_of_negative_dim(), tmp_path / "abort.onnx"))
    assert "negative declared dims of 'x' treated as unknown" in data["warnings"]


def test_a_crash_inside_shape_inference_is_a_warning(tmp_path, monkeypatch, capfd) -> None:
    """Whatever else makes onnx's C++ abort: the forked inference dies, the analysis goes on."""
    from analyzer.view import shapes

    monkeypatch.setattr(shapes, "clear_negative_dims", lambda model: [])
    result = analyze(save(_slice_of_negative_dim(), tmp_path / "abort.onnx"))
    assert "shape inference crashed (SIGABRT); shapes and MACs are partial" in result.warnings
    assert capfd.readouterr().err == ""  # the assertion text stays in the child


def test_a_hang_inside_shape_inference_is_a_warning(tmp_path, monkeypatch) -> None:
    from analyzer.view import shapes

    def hang(model: ModelProto, engine: object) -> tuple[ModelProto, list[str]]:
        time.sleep(60)
        return model, []

    monkeypatch.setattr(shapes, "_infer_here", hang)
    monkeypatch.setattr(shapes, "SHAPE_TIMEOUT", 0.5)
    result = analyze(save(matmul(), tmp_path / "m.onnx"))
    assert result.totals.params == 12
    assert "shape inference took over 0.5 s; shapes and MACs are partial" in result.warnings


def test_a_hung_shape_child_ends_itself_when_nobody_waits(monkeypatch) -> None:
    """The analysis child can be killed (timeout) while its inference child hangs in C++."""
    from analyzer.view import shapes

    def hang(model: ModelProto, engine: object) -> tuple[ModelProto, list[str]]:
        time.sleep(60)
        return model, []

    monkeypatch.setattr(shapes, "_infer_here", hang)
    monkeypatch.setattr(shapes, "SHAPE_TIMEOUT", 0.5)
    inference = shapes.Inference(matmul())
    assert inference.child is not None
    pid = inference.child.pid
    deadline = time.monotonic() + 10
    status = 0
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM
    os.close(inference.child.reader)
    inference.child = None  # reaped here


def test_attribute_of_the_wrong_kind_falls_back_to_the_default(capsys, tmp_path) -> None:
    """Found by fuzzing: MatMulNBits' K given as a tensor reached int(None)."""
    node = helper.make_node(
        "MatMulNBits", ["x", "b", "s"], ["y"], domain="com.microsoft", N=3, bits=4, block_size=16
    )
    node.attribute.append(helper.make_attribute("K", helper.make_tensor("k", FLOAT, [1], [4.0])))
    packed = helper.make_tensor("b", TensorProto.UINT8, [3, 1, 8], [0] * 24)
    scales = helper.make_tensor("s", FLOAT, [3], [1.0] * 3)
    proto = model(
        [node],
        [value("x", [1, 4])],
        [value("y")],
        [packed, scales],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    code, out, err = cli(capsys, str(save(proto, tmp_path / "nbits.onnx")), "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["layers"][0]["op_type"] == "MatMulNBits"


@pytest.mark.parametrize("dtype", [TensorProto.UNDEFINED, 999])
def test_huge_dims_of_an_unknown_element_type(capsys, tmp_path, dtype) -> None:
    tensor = TensorProto(name="w", data_type=dtype, dims=[2**31, 2**31])
    assert_error(capsys, save(matmul(tensor), tmp_path / "dtype.onnx"), "file can hold")


def test_inferred_huge_1d_length_skips_data_propagation(capsys, tmp_path) -> None:
    """Found by fuzzing: Reshape to [2**63 - 1], then Cast: data propagation allocated by it."""
    target = helper.make_tensor("t", TensorProto.INT64, [1], [2**63 - 1])
    nodes = [
        helper.make_node("Reshape", ["a", "t"], ["r"]),
        helper.make_node("Cast", ["r"], ["y"], to=FLOAT),
        helper.make_node("Shape", ["a"], ["s"]),  # gives data propagation a start
    ]
    proto = model(nodes, [value("a", ["N"])], [value("y")], [target])
    data = report(capsys, save(proto, tmp_path / "reshape.onnx"), "--max-memory", "1GiB")
    skipped = "shape data propagation skipped: 'r' is a 1-D tensor of 9,223,372,036,854,775,807"
    assert any(w.startswith(skipped) for w in data["warnings"])
