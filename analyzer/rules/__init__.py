"""Stage 4, rules: stable codes, documented like ruff's (What it does / Why / Example / Use
instead). Each rule module registers itself (and its finding payload) on import; list it here."""

from analyzer.rules import (
    dense_on_spatial,
    dominant_dense,
    separable_conv,
    untied_head,
    weight_checks,
)
from analyzer.rules.base import Options, Rule, RuleContext, add_rule, all_rules, run

__all__ = [
    "Options",
    "Rule",
    "RuleContext",
    "add_rule",
    "all_rules",
    "dense_on_spatial",
    "dominant_dense",
    "run",
    "separable_conv",
    "untied_head",
    "weight_checks",
]
