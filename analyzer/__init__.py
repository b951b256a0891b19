"""onnx-audit: exact parameter counts, MACs and architecture advice for ONNX models."""

from analyzer.api import analyze
from analyzer.errors import AuditError
from analyzer.results import Finding, LayerTally, ModelInfo, Report, Totals, WeightRef

__version__ = "0.1.0"
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
