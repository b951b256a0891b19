"""The terminal table people read (issue 15): it fits the width, dims get short aliases whose
legend evaluates like the exact formulas in the JSON, and --depth folds rows into modules whose
sums are the layers' sums. Expected numbers come from plain Python arithmetic on the exporters'
own dim expressions, never from the reporter."""

from __future__ import annotations

import contextlib
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import analyze
from analyzer.cli import main
from analyzer.core.results import LayerTally
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import aliases as al
from analyzer.report.reporters import expressions as ex
from analyzer.report.reporters import layout, modtree, render
from analyzer.report.reporters.layout import View, viewing
from tests.conftest import ROOT, SAMPLES

EXPORTED = SAMPLES / "exported"
YOLO_DYNAMO = EXPORTED / "yolo_tiny_dyn.dynamo.onnx"
YOLO_TS = EXPORTED / "yolo_tiny_dyn.torchscript.onnx"

# --- dim expressions -------------------------------------------------------------------------


def _python(expr: str, **sizes: int) -> int:
    """The exporter's expression evaluated by Python itself (// and floor/ceil as written)."""
    value = eval(expr, {"floor": math.floor, "ceil": math.ceil, "__builtins__": {}}, sizes)
    return int(value)


@pytest.mark.parametrize(
    ("expr", "shown", "reference"),
    [
        ("floor(height/2 - 1/2) + 1", "ceil(height/2)", lambda h: (h - 1) // 2 + 1),  # sympy
        ("(((height - 1)//2)) + 1", "ceil(height/2)", lambda h: (h - 1) // 2 + 1),  # dynamo
        ("(((height - 1)//4)) + 1", "ceil(height/4)", lambda h: (h - 1) // 4 + 1),
        ("ceil(ceil(height/2)/2)", "ceil(height/4)", lambda h: math.ceil(math.ceil(h / 2) / 2)),
        # two stride-2 convs as sympy writes them: H1 = floor(height/2 - 1/2) + 1, then
        # floor(H1/2 - 1/2) + 1 = floor(floor(height/2 - 1/2)/2) + 1
        ("floor(floor(height/2 - 1/2)/2) + 1", "ceil(height/4)", lambda h: (h - 1) // 4 + 1),
        (
            "floor(floor(height/2 - 1/2)/2 - 1/2) + 1",
            "floor((height + 1)/4)",
            lambda h: ((h - 1) // 2 - 1) // 2 + 1,
        ),
        ("height//2", "floor(height/2)", lambda h: h // 2),
        ("batch", "batch", lambda h: 1),
        ("2*height + 1", "2*height + 1", lambda h: 2 * h + 1),
    ],
)
def test_dim_expressions_simplify_exactly(expr: str, shown: str, reference) -> None:
    value = ex.parse(expr)
    assert value is not None and ex.text(value) == shown
    for h in range(1, 300):
        assert ex.evaluate(value, {"height": h}) == reference(h), (expr, h)


def test_unparsed_dims_stay_whole() -> None:
    assert ex.parse("Max(1, h)") is None
    aliases = al.Aliases()
    assert aliases.name("Max(1, h)") == "M1"
    assert aliases.legend == [("M1", "Max(1, h)")]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    kernel=st.integers(1, 7),
    stride=st.integers(1, 4),
    pad=st.integers(0, 3),
    kernel2=st.integers(1, 5),
    stride2=st.integers(1, 3),
    size=st.integers(8, 700),
)
def test_stacked_conv_sizes_evaluate_like_python(  # noqa: PLR0917  (hypothesis draws)
    kernel: int, stride: int, pad: int, kernel2: int, stride2: int, size: int
) -> None:
    """Two convs in a row, written as torch's dynamo exporter writes them, then as sympy."""
    inner = f"((height + {2 * pad - kernel})//{stride}) + 1"
    outer = f"(({inner} + {2 * pad - kernel2})//{stride2}) + 1"
    sympy_inner = f"floor(height/{stride} + {2 * pad - kernel}/{stride}) + 1"
    for expr in (inner, outer, sympy_inner):
        value = ex.parse(expr)
        assert value is not None
        expected = _python(expr, height=size) if "floor" not in expr else _sympy(expr, size)
        assert ex.evaluate(value, {"height": size}) == expected
        again = ex.parse(ex.text(value))  # what the legend shows means the same number
        assert again is not None and ex.evaluate(again, {"height": size}) == expected


def _sympy(expr: str, size: int) -> int:
    from fractions import Fraction

    text = re.sub(r"(\d+)/(\d+)", r"Fraction(\1, \2)", expr.replace("height/", "Fraction(height)/"))
    env = {"floor": math.floor, "Fraction": Fraction, "__builtins__": {}}
    return int(eval(text, env, {"height": size}))


# --- widths ----------------------------------------------------------------------------------


def test_ellipsize_keeps_both_ends_and_the_op() -> None:
    name = "/model.22/cv2.1/cv2.1.2/very_long_module_name/act (Relu)"
    short = layout.ellipsize(name, 30, keep_suffix=True)
    assert len(short) == 30 and short.startswith("/model.2") and short.endswith("/act (Relu)")
    # a last part that only repeats the op goes before anything is cut
    repeated = "/blocks.0/ln1/LayerNormalization (LayerNormalization)"
    assert layout.ellipsize(repeated, 34, keep_suffix=True) == "/blocks.0/ln1 (LayerNormalization)"
    assert ".." in short and short.isascii()
    assert layout.ellipsize("abc", 3) == "abc"
    assert layout.width(layout.ellipsize("漢字漢字漢字漢字", 7)) <= 7


def _widest(text: str) -> int:
    return max(layout.width(line) for line in text.splitlines())


REAL = sorted(
    p
    for p in (*EXPORTED.glob("*.onnx"), *SAMPLES.glob("*.onnx"))
    if p.name.startswith(
        ("bert_tiny", "gpt2_tiny", "crnn_", "small_vgg", "yolo_", "transformer_encoder", "lenet")
    )
    or p.parent == SAMPLES
)


@pytest.fixture(scope="module")
def real_reports() -> dict[str, object]:
    with contextlib.chdir(ROOT):
        return {p.name: analyze(p) for p in REAL}


@pytest.mark.parametrize("columns", [80, 120])
def test_every_real_model_fits_the_width(real_reports: dict, columns: int) -> None:
    assert len(real_reports) >= 20
    for name, report in real_reports.items():
        for depth in (None, 0, 1):
            with viewing(View(width=columns, depth=depth)):
                text = render(report, "table")
            assert _widest(text) <= columns, (name, depth, columns)


def test_cli_reads_columns_and_was_too_wide_before(capsys, monkeypatch) -> None:
    """bert_tiny's rows were 214 columns; COLUMNS=80 now holds the whole report."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main([str(EXPORTED / "bert_tiny.onnx")]) == 0
    out = capsys.readouterr().out
    assert _widest(out) <= 80
    # the exporter's made-up `LayerNormalizationonnx::Gather_242_dim_0` is gone: inference
    # names the pooler's batch dim, and the sequence dim reaches every layer through the Range
    assert "Gather_242" not in out and "unk__" not in out
    assert "(batch, 64)" in out and "(batch, seq, 64)" in out
    monkeypatch.setenv("COLUMNS", "120")
    main([str(EXPORTED / "bert_tiny.onnx")])
    wide = capsys.readouterr().out
    assert 80 < _widest(wide) <= 120 or _widest(wide) <= 80


def _cell_value(cell: str, legend: dict[str, str], sizes: dict[str, int]) -> int:
    """A MACs cell of the table (`1,152*batch*H2*W2^2`), evaluated through the legend."""
    total = 0
    for term in cell.split(" + "):
        product = 1
        for raw in term.split("*"):
            factor = raw.replace(",", "")
            if factor.isdigit():
                product *= int(factor)
                continue
            name, _, exponent = factor.partition("^")
            power = int(exponent or 1)
            if name in legend:
                expr = legend[name]
                value = eval(expr, {"ceil": math.ceil, "floor": math.floor}, dict(sizes))
            else:
                value = sizes[name]
            product *= int(value) ** power
        total += product
    return total


def _exact(macs: int | str, sizes: dict[str, int]) -> int:
    """The JSON's formula, each factor (a dim as the exporter wrote it) evaluated by Python."""
    if isinstance(macs, int):
        return macs
    total = 0
    for term in _top_level(macs, " + "):
        product = 1
        for factor in _top_level(term, "·"):
            product *= _python(factor.replace(",", ""), **sizes)
        total += product
    return total


def _top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside parentheses."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i = start = i + len(separator)
            continue
        i += 1
    return [*parts, text[start:]]


def test_table_numbers_are_the_json_numbers(capsys, monkeypatch) -> None:
    """Each row's params and its MACs at a real size (through the legend) equal the JSON's
    exact formula evaluated by Python at that size: `(((height - 1)//2)) + 1` as written."""
    monkeypatch.setenv("COLUMNS", "100")
    main([str(YOLO_DYNAMO), "--depth", "0"])
    table = capsys.readouterr().out
    main([str(YOLO_DYNAMO), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    legend = dict(re.findall(r"^  ([A-Z]\d+) += (.+)$", table, re.M))
    assert legend["H1"] == "ceil(height/2)" and legend["W2"] == "ceil(width/4)"
    rows = [line for line in table.splitlines() if line.startswith("node_")]
    assert len(rows) == len(data["layers"]) == 41
    sizes = {"batch": 3, "height": 480, "width": 640}
    for line, layer in zip(rows, data["layers"], strict=True):
        cells = re.split(r"\s{2,}", line.strip())
        assert int(cells[2].replace(",", "")) == layer["params"]
        assert _cell_value(cells[3], legend, sizes) == _exact(layer["macs"], sizes), line
    total = data["totals"]["macs"]
    assert isinstance(total, str) and "height" in total
    assert re.search(r"^MACs: batch\*\(", table, re.M)  # one short formula, factored
    ones = {"batch": 1, "height": 1, "width": 1}
    at_one = sum(_exact(layer["macs"], ones) for layer in data["layers"])
    assert f"MACs at every dynamic dim = 1: {at_one:,}" in table


# --- depth -----------------------------------------------------------------------------------


def test_split_names_like_exporters_write_them() -> None:
    assert modtree.split_name("/model.22/cv2.1/cv2.1.2/Conv") == [
        "model.22",
        "cv2.1",
        "cv2.1.2",
        "Conv",
    ]
    assert modtree.split_name("encoder.layer.3.attention") == ["encoder", "layer.3", "attention"]
    assert modtree.split_name("dense_1/MatMul") == ["dense_1", "MatMul"]
    assert modtree.split_name("features.0") == ["features.0"]
    assert modtree.split_name("node_conv2d_3") == ["node_conv2d_3"]


def _layers(names: list[str]) -> tuple[LayerTally, ...]:
    return tuple(
        LayerTally(name=n, op_type="MatMul", params=i + 1, macs=Poly.product([i + 1, "N"]))
        for i, n in enumerate(names)
    )


def test_default_depth_is_the_deepest_under_sixty_rows() -> None:
    # 100 nodes: /enc/blocks.{b}/fc{f}/MatMul. Depth 1: 1 row; depth 2: enc + 10 blocks = 11;
    # depth 3: 1 + 10 + 100 fc modules of one node each, folded = 11 + 100 = 111 > 60.
    names = [f"/enc/blocks.{i // 10}/fc{i % 10}/MatMul" for i in range(100)]
    root = modtree.build(_layers(names))
    assert [modtree.count_rows(root, d) for d in (1, 2, 3)] == [1, 11, 111]
    assert modtree.auto_depth(root, 100) == 2
    # depth 2 has 11 rows, over 10; depth 1 is a single row, which says nothing: depth 2 it is
    assert modtree.auto_depth(root, 100, limit=10) == 2
    assert modtree.auto_depth(root, 100, limit=2) == 1  # 11 rows > 4 x 2: stays folded
    assert modtree.auto_depth(modtree.build(_layers(names[:50])), 50) == 0  # fits: every node
    flat = modtree.build(_layers([f"Gemm_{i}" for i in range(100)]))
    assert modtree.auto_depth(flat, 100) == 0  # no structure: one row per node
    # Paddle2ONNX names every node p2o.<Op>.<n>: depth 1 is one row, depth 2 p2o and its 67 nodes
    paddle = modtree.build(_layers([f"p2o.{('Conv', 'Add')[i % 2]}.{i}" for i in range(67)]))
    assert [modtree.count_rows(paddle, d) for d in (1, 2)] == [1, 68]
    assert modtree.auto_depth(paddle, 67) == 0  # every node, not one p2o row


def test_folded_rows_sum_to_the_layers(capsys, monkeypatch) -> None:
    """YOLO's top level (model.0 ... model.12, no weights in the Upsample model.8): 12 rows,
    whose params add up to every layer's params, and --depth 0 lists the 41 convs."""
    monkeypatch.setenv("COLUMNS", "80")
    main([str(YOLO_TS), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    main([str(YOLO_TS), "--depth", "1"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"model\.\d+ \(", line)]
    assert [r.split(" ")[0] for r in rows] == [f"model.{i}" for i in range(13) if i != 8]
    params = [int(re.split(r"\s{2,}", r)[2].replace(",", "")) for r in rows]
    assert sum(params) == sum(layer["params"] for layer in data["layers"])
    assert "model.12 (Conv x12)" in out  # Detect: 2 scales x (3 box + 3 class convs)
    tree = {tuple(m["path"]): m for m in data["modules"]}
    assert tree[("model.12",)]["params"] == params[-1] and tree[("model.12",)]["nodes"] == 12
    assert tree[()]["nodes"] == len(data["layers"]) == 41
    main([str(YOLO_TS), "--depth", "0"])
    flat = capsys.readouterr().out
    assert sum(line.startswith("/model.") for line in flat.splitlines()) == 41


def test_expanded_modules_show_no_sums(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    main([str(YOLO_TS), "--depth", "2"])
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model.12 "))
    assert header.split() == ["model.12", "--", "--"]
    assert "  cv2.0 (Conv x3)" in out


# --- colour ----------------------------------------------------------------------------------


def test_color_only_when_asked_or_on_a_terminal(capsys, monkeypatch) -> None:
    path = str(SAMPLES / "seed_mlp.onnx")
    main([path])
    assert "\x1b[" not in capsys.readouterr().out  # not a terminal
    main([path, "--color", "always"])
    colored = capsys.readouterr().out
    assert "\x1b[1mTotal params" in colored and "\x1b[33mONX101" in colored
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert layout.use_color("auto", stream_is_tty=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not layout.use_color("auto", stream_is_tty=True)
    assert not layout.use_color("never", stream_is_tty=True)
    assert not layout.use_color("auto", stream_is_tty=False)


def test_unknown_dims_share_one_legend_line() -> None:
    """onnx names the dims it cannot infer unk__N; their aliases keep the number."""
    aliases = al.Aliases()
    assert aliases.shape(("unk__3", 4, "batch", "unk__12")) == "(u3, 4, batch, u12)"
    assert aliases.unnamed == ["unk__3", "unk__12"] and aliases.legend == []


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="hw0123456789+-*/()_ fliceorflr.:", max_size=40) | st.text(max_size=30))
def test_any_dim_name_parses_or_stays_whole(dim: str) -> None:
    """A dim name from a file is never an error: an expression, or one opaque name."""
    value = ex.parse(dim)
    if value is not None:
        ex.evaluate(value, {"h": 7, "w": 3})
    aliases = al.Aliases()
    name = aliases.name(dim)
    assert name and aliases.name(dim) == name


def test_dynamo_exports_group_by_the_module_path_in_node_metadata() -> None:
    """torch's dynamo names nodes `node_Conv_93` and records the module in metadata
    (`pkg.torch.onnx.name_scopes`). resnet_style (sample_models/exported/export_rules.py),
    BatchNorm folded into each conv's bias: layer1 = two 3x3 32->32 convs, layer2 = 3x3
    32->64, 3x3 64->64 and a 1x1 32->64 shortcut."""
    from analyzer import analyze
    from analyzer.report.reporters.modtree import module_records

    report = analyze(SAMPLES / "exported" / "resnet_style.dynamo.onnx")
    top = {tuple(r["path"]): r["params"] for r in module_records(report) if r["depth"] == 1}
    assert top[("layer1",)] == 2 * (9 * 32 * 32 + 32)
    assert top[("layer2",)] == (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64) + (32 * 64 + 64)
    assert top[("fc",)] == 64 * 10 + 10
    assert sum(top.values()) == report.totals.params
