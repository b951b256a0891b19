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
