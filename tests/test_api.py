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


def test_format_table_names_the_registering_modules() -> None:
    import importlib

    from analyzer.report.reporters import MODULES, names, reporter, reporters

    assert names() == sorted(reporters())
    for name, module in MODULES.items():
        assert reporter(name).render.__module__ == importlib.import_module(module).__name__
