"""The public surface: what `import analyzer` promises."""

from __future__ import annotations

import analyzer
from tests.conftest import SAMPLES


def test_public_names() -> None:
    assert set(analyzer.__all__) == {
        "AuditError", "Finding", "LayerTally", "ModelInfo", "Report", "Totals", "WeightRef",
        "__version__", "analyze",
    }  # fmt: skip
    for name in analyzer.__all__:
        assert hasattr(analyzer, name)


def test_static_path_never_imports_onnxruntime() -> None:
    import subprocess
    import sys

    code = (
        "import sys, analyzer.cli; "
        f"analyzer.cli.main([{str(SAMPLES / 'seed_mlp.onnx')!r}, '-o', '/dev/null']); "
        "print('onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _modules_after(call: str) -> set[str]:
    """The modules a fresh interpreter holds after `import analyzer.cli` and `call`."""
    import subprocess
    import sys

    code = (
        "import sys, analyzer.cli\n"
        f"try:\n    {call}\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_json_path_imports_only_the_json_reporter() -> None:
    model = str(SAMPLES / "seed_mlp.onnx")
    loaded = _modules_after(
        f"analyzer.cli.main([{model!r}, '--format', 'json', '-o', '/dev/null'])"
    )
    assert {"analyzer.api", "analyzer.report.reporters.json_reporter"} <= loaded
    unwanted = {
        "analyzer.report.diff",
        "analyzer.report.reporters.csv_reporter",
        "analyzer.report.reporters.diffs",
        "analyzer.report.reporters.github",
        "analyzer.report.reporters.jsonl",
        "analyzer.report.reporters.markdown",
        "analyzer.report.reporters.netron",
        "analyzer.report.reporters.sarif",
        "analyzer.report.reporters.table",
        "decimal",
        "multiprocessing",
        "onnxruntime",
        "tabulate",
    }
    assert loaded & unwanted == set()


def test_version_imports_no_onnx() -> None:
    loaded = _modules_after("analyzer.cli.main(['--version'])")
    assert loaded & {"onnx", "analyzer.api", "analyzer.core.results", "analyzer.rules"} == set()


ONNX_FREE = ("onnx", "onnx.", "ml_dtypes", "onnxruntime")
"""Module prefixes the process that reads and counts never imports: onnx's Python package
(0.7 s, most of it ml_dtypes), its C++ extension (only the inference child loads it)."""


def _onnx_modules(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m in ONNX_FREE or m.startswith(ONNX_FREE)}


def test_the_reading_and_counting_process_never_imports_onnx() -> None:
    """The default path: message classes from onnx's generated module run by path, shape
    inference in a child that loads only onnx's C++ extension. Pinned for the CLI (JSON and
    the default table) and for the library call, on a model that infers shapes."""
    model = str(SAMPLES / "seed_cnn.onnx")
    for call in (
        f"analyzer.cli.main([{model!r}, '--format', 'json', '-o', '/dev/null'])",
        f"analyzer.cli.main([{model!r}, '-o', '/dev/null'])",
        f"import analyzer; assert analyzer.analyze({model!r}).layers",
    ):
        loaded = _modules_after(call)
        assert "analyzer.core._onnx_ml_pb2" in loaded, call
        assert "analyzer.view.engine" in loaded, call
        assert _onnx_modules(loaded) == set(), call


def test_format_table_names_the_registering_modules() -> None:
    import importlib

    from analyzer.report.reporters import MODULES, names, reporter, reporters

    assert names() == sorted(reporters())
    for name, module in MODULES.items():
        assert reporter(name).render.__module__ == importlib.import_module(module).__name__
