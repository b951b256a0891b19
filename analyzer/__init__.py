"""onnx-audit: exact parameter counts, MACs and architecture advice for ONNX models.

The public names are imported on first use (PEP 562), so `onnx-audit --version` and usage
errors never pay for `import onnx`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analyzer.api import analyze
    from analyzer.core.errors import AuditError
    from analyzer.core.results import Finding, LayerTally, ModelInfo, Report, Totals, WeightRef

from analyzer.core.version import __version__

_LAZY = {
    "analyze": "analyzer.api",
    "AuditError": "analyzer.core.errors",
    "Finding": "analyzer.core.results",
    "LayerTally": "analyzer.core.results",
    "ModelInfo": "analyzer.core.results",
    "Report": "analyzer.core.results",
    "Totals": "analyzer.core.results",
    "WeightRef": "analyzer.core.results",
}
__all__ = [
    "AuditError",
    "Finding",
    "LayerTally",
    "ModelInfo",
    "Report",
    "Totals",
    "WeightRef",
    "__version__",
    "analyze",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
