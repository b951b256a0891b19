"""Visitors: one small handler per op family, registered by (domain, op_type)."""

from analyzer.count.visitors import contrib, conv, layouts, linear, misc, norm, recurrent
from analyzer.count.visitors.base import Context, fallback, lookup, register, registered

__all__ = [
    "Context",
    "contrib",
    "conv",
    "fallback",
    "layouts",
    "linear",
    "lookup",
    "misc",
    "norm",
    "recurrent",
    "register",
    "registered",
]
