"""The rule record and registry; rule modules register themselves with add_rule on import."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from analyzer.core.results import Finding, LayerTally
from analyzer.core.tensorstats import TensorStats
from analyzer.count.weights import Constants
from analyzer.view.model import ModelView


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What the rules are told: --kernel and --min-ratio (ONX101, ONX102),
    --separable-min-channels (ONX102), --rank (ONX104; None: the largest 4x-saving rank)."""

    kernel: int = 3
    min_ratio: float = 2.0
    separable_min_channels: int = 32
    rank: int | None = None


@dataclass(frozen=True, slots=True)
class RuleContext:
    view: ModelView
    consts: Constants
    layers: Mapping[str, LayerTally]
    options: Options
    debug: list[str]
    total_params: int = 0
    """The model's parameters, each stored tensor once (ONX104's share is of this)."""
    weights: Mapping[str, TensorStats] | None = None
    """Each stored tensor's value statistics by name (--inspect-weights); None when the
    weights were not read: the rules that judge values then yield nothing."""
    energy: Callable[[str, int], float | str] | None = None
    """(tensor, rank) -> the share of the stored 2-D tensor's spectral energy its `rank`
    largest singular values keep, or why it was not estimated; None when the weights were not
    read. Given by the api (the read stage opens the file), so a rule never opens it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    code: str
    name: str
    summary: str
    what: str
    why: str
    example: str
    instead: str
    check: Callable[[RuleContext], Iterator[Finding]]
    preview: bool = False
    severity: str = "warning"
    """Its findings' severity (error | warning | note): SARIF's default level for the rule."""
    reads_weights: bool = False
    """It judges weight values: it finds nothing without --inspect-weights."""

    def doc(self) -> str:
        return (
            f"{self.code} {self.name}\n\n{self.summary}\n\n"
            f"## What it does\n{self.what}\n\n## Why is this bad?\n{self.why}\n\n"
            f"## Example\n{self.example}\n\n## Use instead\n{self.instead}\n"
        )


_RULES: dict[str, Rule] = {}


def add_rule(rule: Rule) -> Rule:
    """Register a rule; a code or name used twice is a bug (codes are never reused)."""
    if rule.code in _RULES or any(r.name == rule.name for r in _RULES.values()):
        raise ValueError(f"rule {rule.code} {rule.name} registered twice")
    _RULES[rule.code] = rule
    return rule


def all_rules() -> tuple[Rule, ...]:
    return tuple(_RULES[code] for code in sorted(_RULES))


def run(ctx: RuleContext, enabled: Callable[[Rule], bool] | None = None) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    for rule in all_rules():
        if enabled(rule) if enabled is not None else not rule.preview:
            findings.extend(rule.check(ctx))
    return tuple(findings)


__all__ = ["Options", "Rule", "RuleContext", "add_rule", "all_rules", "run"]
