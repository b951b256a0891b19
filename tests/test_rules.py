"""Every rule: its two samples through the one-line harness, and what every rule must obey
(--select/--ignore/--fail-on/--preview, `rules`, `explain`, SARIF, diff, JSON round trip).

Expected numbers are hand arithmetic from the sample's shapes (sample_models/rules/build_rules.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from analyzer import analyze
from analyzer.cli import main
from analyzer.core.results import Finding
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import render
from analyzer.report.serialize import report_from_data, to_data
from analyzer.rules import all_rules
from tests.conftest import ROOT, SAMPLES

RULES = SAMPLES / "rules"
CODES = (
    "ONX101", "ONX102", "ONX103", "ONX104", "ONX201", "ONX202", "ONX203", "ONX204", "ONX205"
)  # fmt: skip
READS_WEIGHTS = {rule.code for rule in all_rules() if rule.reads_weights}
"""The weight rules' samples are analysed with --inspect-weights (they find nothing without)."""


def _flags(code: str) -> list[str]:
    return ["--inspect-weights"] if code in READS_WEIGHTS else []


def _value(finding: Finding, key: str) -> Any:
    """A core field of the finding, else a field of its rule's payload."""
    if key in Finding.__dataclass_fields__:
        return getattr(finding, key)
    return getattr(finding.detail, key)


def assert_findings(code: str, sample: str, *expected: dict[str, Any]) -> None:
    """The sample gives exactly these findings of `code`, in graph order (none when none given);
    each dict names core fields (node, params_saved, ...) or fields of the rule's payload."""
    report = analyze(RULES / code / sample, strict=True, inspect_weights=code in READS_WEIGHTS)
    found = [f for f in report.findings if f.code == code]
    assert len(found) == len(expected), [(f.node, f.message) for f in found]
    for finding, fields in zip(found, expected, strict=True):
        assert {key: _value(finding, key) for key in fields} == fields


# fmt: off
HARNESS = [
    # seed_mlp: Gemm 100 -> 32 on a flattened 1x10x10 image: 3,200 weights vs a 3x3 conv's 9*32
    ("ONX101", "bad.onnx", {"node": "dense", "params_saved": 3_200 - 288, "conv_weights": 288}),
    ("ONX101", "good.onnx"),  # seed_cnn: conv -> global average pool -> dense
    # Conv 3x3 64 -> 64: 9*64*64 = 36,864 vs 9*64 + 64*64 = 576 + 4,096 = 4,672 at 8x8=64·N places
    ("ONX102", "bad.onnx", {"node": "conv", "params_saved": 36_864 - 4_672,
                            "separable_weights": 4_672,
                            "macs_delta": Poly.product(["N", -32_192 * 64])}),
    ("ONX102", "good.onnx"),  # a 3-channel stem, then depthwise 3x3 + pointwise 1x1
    # Gather(table[1000, 16]) and MatMul(head[16, 1000]) stored apart: tying saves 1,000*16
    ("ONX103", "bad.onnx", {"node": "lm_head", "params_saved": 16_000, "table": "table",
                            "head_weight": "head", "stored_transposed": True}),
    ("ONX103", "good.onnx"),  # MatMul(h, Transpose(table)): one stored table
    # fc1 256 -> 512: 131,072 + 512 of 131,584 + 5,130 = 136,714 params; r = floor(131,072 /
    # (4*768)) = 42: 256*42 + 42*512 = 10,752 + 21,504 = 32,256
    ("ONX104", "bad.onnx", {"node": "fc1", "rank": 42, "low_rank_weights": 32_256,
                            "params_saved": 131_072 - 32_256, "model_params": 136_714}),
    ("ONX104", "good.onnx"),  # three Gemm 64 -> 64, a third each
    # MatMul 32 -> 16, w[3, 5] = NaN, w[7, 0] = -Inf
    ("ONX201", "bad.onnx", {"node": "dense0", "tensor": "w", "nans": 1, "infs": 1,
                            "severity": "error", "params_saved": 0}),
    ("ONX201", "good.onnx"),
    # Conv 3x3 4 -> 8, channels 1 and 6 zero: 2 x 4*3*3 = 72 dead weights (the zero bias is not)
    ("ONX202", "bad.onnx", {"node": "conv", "tensor": "k", "zero_channels": 2, "channels": 8,
                            "all_zero": False, "params_saved": 2 * 4 * 3 * 3}),
    ("ONX202", "good.onnx"),  # zero bias; zero rows of a MatMul weight are inputs
    # a[32, 16] stored again as 'copy' and as 'flipped' = a.T: 512 values, 2,048 bytes each
    ("ONX203", "bad.onnx", {"node": "dense1", "tensor": "copy", "original": "a",
                            "transposed": False, "params_saved": 32 * 16, "nbytes": 32 * 16 * 4},
                           {"node": "gemm2", "tensor": "flipped", "original": "a",
                            "transposed": True, "params_saved": 32 * 16}),
    ("ONX203", "good.onnx"),  # identical 16-value biases: 64 bytes, under the 1 KB floor
    # one value of 100,000 > 65,504; no value below 2^-14
    ("ONX204", "bad.onnx", {"node": "dense0", "overflow": 1, "underflow": 0,
                            "largest": 100_000.0}),
    ("ONX204", "good.onnx"),  # largest 60,000; 2 of 512 (0.4%) below 2^-14
    # 18,000 of 200*100 = 20,000 zero
    ("ONX205", "bad.onnx", {"node": "dense0", "zeros": 18_000, "elements": 20_000,
                            "share": 0.9, "severity": "note"}),
    ("ONX205", "good.onnx"),  # 8,000 of 20,000 zero (40%)
]
# fmt: on


@pytest.mark.parametrize("case", HARNESS, ids=lambda case: f"{case[0]}-{case[1]}")
def test_rule_samples(case: tuple[Any, ...]) -> None:
    assert_findings(*case)


def test_every_rule_has_two_samples_and_a_harness_line() -> None:
    codes = [rule.code for rule in all_rules()]
    assert codes == list(CODES)
    for code in codes:
        assert (RULES / code / "bad.onnx").is_file() and (RULES / code / "good.onnx").is_file()
        assert {case[1] for case in HARNESS if case[0] == code} == {"bad.onnx", "good.onnx"}


def test_rules_and_explain_list_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    listed = capsys.readouterr().out
    for code in CODES:
        assert code in listed
        assert main(["explain", code]) == 0
        doc = capsys.readouterr().out
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert heading in doc


@pytest.mark.parametrize("code", CODES)
def test_select_ignore_preview_and_fail_on(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = str(RULES / code / "bad.onnx")

    def codes(*args: str) -> tuple[int, set[str]]:
        status = main([bad, "--format", "json", *_flags(code), *args])
        return status, {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}

    assert codes("--select", code) == (0, {code})
    assert code not in codes("--ignore", code)[1]
    assert codes("--select", code, "--preview") == (0, {code})
    assert codes("--select", code, "--fail-on", code)[0] == 1


def test_sarif_lists_every_rule_with_help_and_rule_properties() -> None:
    report = analyze(RULES / "ONX102" / "bad.onnx")
    (run,) = json.loads(render(report, "sarif"))["runs"]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    for code in CODES:
        assert "## Use instead" in rules[code]["help"]["text"]
    (result,) = run["results"]
    props = result["properties"]
    # 4,672 separable weights at 8x8 = 64 output positions per sample: 299,008·N MACs
    assert (props["paramsSaved"], props["convWeights"], props["separableMacs"]) == (
        32_192,
        36_864,
        f"{4_672 * 64:,}·N",
    )


@pytest.mark.parametrize("code", [c for c in CODES if c != "ONX101"])
def test_diff_shows_new_and_fixed_findings(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = str(RULES / code / "good.onnx"), str(RULES / code / "bad.onnx")
    main(["diff", good, bad, "--format", "json", "--select", code, *_flags(code)])
    data = json.loads(capsys.readouterr().out)
    count = 2 if code == "ONX203" else 1  # a copy and a transposed copy
    assert [f["code"] for f in data["new_findings"]] == [code] * count
    assert data["fixed_findings"] == []
    main(["diff", bad, good, "--select", code, *_flags(code)])
    assert f"Fixed findings ({count}):\n{code}" in capsys.readouterr().out


def test_json_of_every_rule_reads_back_equal() -> None:
    exported = ROOT / "sample_models" / "exported"
    reports = [
        analyze(RULES / code / "bad.onnx", inspect_weights=code in READS_WEIGHTS) for code in CODES
    ]
    reports.append(analyze(exported / "vgg_style.dynamo.onnx"))
    seen = set()
    for report in reports:
        data = json.loads(render(report, "json"))
        assert report_from_data(data) == report
        assert to_data(report_from_data(data)) == {k: v for k, v in data.items() if k != "modules"}
        seen |= {f.code for f in report.findings}
    assert seen == set(CODES)


def test_no_reporter_names_a_rule() -> None:
    report_dir = ROOT / "analyzer" / "report"
    for path in report_dir.rglob("*.py"):
        assert "ONX1" not in path.read_text(), path


def test_many_findings_of_a_rule_are_one_block_within_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """resnet_style has four ONX102 convs: the table shows one block, the JSON all four."""
    monkeypatch.setenv("COLUMNS", "80")
    path = str(ROOT / "sample_models" / "exported" / "resnet_style.torchscript.onnx")
    assert main([path]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    # 2 x (9*32*32 - 9*32 - 32*32) + (9*32*64 - 9*32 - 32*64) + (9*64*64 - 9*64 - 64*64)
    total = 2 * 7_904 + 16_096 + 32_192
    assert f"ONX102 conv-could-be-depthwise-separable: 4 findings, {total:,} fewer" in out
    assert out.count("/Conv (Conv, 3x3") == 4
    markdown = render(analyze(path), "markdown")
    assert "4 findings" in markdown and markdown.count("#### ONX102") == 1


def test_markdown_and_html_print_the_rules_lines() -> None:
    report = analyze(RULES / "ONX103" / "bad.onnx", rule_filter=lambda r: r.code == "ONX103")
    for fmt in ("markdown", "html", "table"):
        assert "--inspect-weights" in render(report, fmt)


def test_separable_min_channels_and_rank_options(capsys: pytest.CaptureFixture[str]) -> None:
    conv = str(RULES / "ONX102" / "bad.onnx")  # 64 input channels
    main([conv, "--format", "json", "--separable-min-channels", "65"])
    assert json.loads(capsys.readouterr().out)["findings"] == []
    dense = str(RULES / "ONX104" / "bad.onnx")
    main([dense, "--format", "json", "--rank", "8", "--select", "ONX104"])
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    # 256*8 + 8*512 = 2,048 + 4,096 = 6,144 weights instead of 131,072
    assert (finding["detail"]["rank"], finding["params_saved"]) == (8, 131_072 - 6_144)


def _quantized_conv(form: str) -> Any:
    """A 3x3 conv 64 -> 64 on [1, 64, 8, 8] with an int8 kernel, in one of onnxruntime's
    quantized forms (scales and zero points are single values)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    kernel = numpy_helper.from_array(np.ones((64, 64, 3, 3), np.int8), "w_q")
    scalars = [
        helper.make_tensor(name, dtype, [], [value])
        for name, dtype, value in (
            ("s", TensorProto.FLOAT, 0.1),
            ("z8", TensorProto.INT8, 0),
            ("zu8", TensorProto.UINT8, 128),
        )
    ]
    nodes = {
        "qdq": [
            helper.make_node("DequantizeLinear", ["w_q", "s", "z8"], ["w"]),
            helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
        ],
        "qoperator": [
            helper.make_node("QuantizeLinear", ["x", "s", "zu8"], ["xq"]),
            helper.make_node(
                "QLinearConv",
                ["xq", "s", "zu8", "w_q", "s", "z8", "s", "zu8"],
                ["yq"],
                name="conv",
                pads=[1, 1, 1, 1],
            ),
            helper.make_node("DequantizeLinear", ["yq", "s", "zu8"], ["y"]),
        ],
        "dynamic": [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            helper.make_node(
                "ConvInteger", ["xq", "w_q", "xz", "z8"], ["yi"], name="conv", pads=[1, 1, 1, 1]
            ),
            helper.make_node("Cast", ["yi"], ["y"], to=TensorProto.FLOAT),
        ],
    }[form]
    graph = helper.make_graph(
        nodes,
        form,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [kernel, *scalars],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("form", ["qdq", "qoperator", "dynamic"])
def test_onx102_reads_quantized_convs(form: str, tmp_path: Any) -> None:
    """A quantized kernel's parameters are the same count of weights: 3x3 64 -> 64 is
    9*64*64 = 36,864 vs 9*64 + 64*64 = 576 + 4,096 = 4,672 separable, at 8x8 = 64 positions."""
    import onnx

    path = tmp_path / f"{form}.onnx"
    onnx.save(_quantized_conv(form), path)
    (finding,) = analyze(path, rule_filter=lambda rule: rule.code == "ONX102").findings
    assert (finding.node, finding.params_saved) == ("conv", 36_864 - 4_672)
    assert (finding.detail.conv_weights, finding.detail.separable_weights) == (36_864, 4_672)
    assert finding.macs_delta == Poly.of(64 * (4_672 - 36_864))
    assert finding.detail.conv_bias == 0  # no bias input in any of the three


@pytest.mark.parametrize(
    "case",
    [  # kernel, input, k**dims, output positions (N x L, N x D x H x W), the table's text
        ((3,), [2, 64, 100], 3, 2 * 100, "3-tap"),  # Conv1d: QuartzNet-style time-channel
        ((3, 3, 3), [2, 64, 8, 8, 8], 27, 2 * 8 * 8 * 8, "3x3x3"),  # a video / volume conv
    ],
)
def test_onx102_on_1d_and_3d_kernels(tmp_path, case) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    kernel, x_shape, taps, positions, text = case
    weight = numpy_helper.from_array(np.full((64, 64, *kernel), 0.01, np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], "conv", pads=[1] * (2 * len(kernel)))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    report = analyze(path)
    (finding,) = report.findings
    # full: taps*64*64; separable: a depthwise conv of taps*64 weights plus a 1x1 of 64*64
    saved = taps * 64 * 64 - (taps * 64 + 64 * 64)
    assert finding.code == "ONX102"
    assert finding.params_saved == saved
    assert finding.macs_delta == Poly.of(-saved * positions)
    assert text in render(report, "table")
    assert report_from_data(json.loads(json.dumps(to_data(report)))) == report


def test_onx102_leaves_a_1x7_kernel_alone(tmp_path) -> None:
    """Inception's 1x7 / 7x1 pairs are already spatially factorised: not a k x k kernel."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((64, 64, 1, 7), 0.01, np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], "conv", pads=[0, 3, 0, 3])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 8, 100])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [weight],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert analyze(path).findings == ()
