"""Stage 4, rules: stable codes, documented like ruff's (What it does / Why / Example / Use
instead). Each rule module registers itself (and its finding payload) on import; list it here."""

from analyzer.rules import (
    dead_layer,
    dense_on_spatial,
    dominant_dense,
    duplicate_weights,
    fp16_unsafe,
    non_finite,
    separable_conv,
    sparse_weights,
    untied_head,
)
from analyzer.rules.base import Options, Rule, RuleContext, add_rule, all_rules, run

__all__ = [
    "Options",
    "Rule",
    "RuleContext",
    "add_rule",
    "all_rules",
    "dead_layer",
    "dense_on_spatial",
    "dominant_dense",
    "duplicate_weights",
    "fp16_unsafe",
    "non_finite",
    "run",
    "separable_conv",
    "sparse_weights",
    "untied_head",
]
