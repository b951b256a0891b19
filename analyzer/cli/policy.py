"""Budgets and fail-on rules: a pure function from a Report to its Violations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzer.core.errors import UsageError

if TYPE_CHECKING:
    from analyzer.core.results import Finding, Report, Violation

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(i?)([bB]?)\s*$")
_SCALE = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str | int) -> int:
    """`25M`, `1.5G`, `300k`, `2GiB`, `500MB`, `1000` -> an int (binary with `i`)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise UsageError("", f"size {text} must not be negative")
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise UsageError("", f"bad size {text!r}", "use e.g. 25M, 1.5G, 300k, 2GiB")
    from decimal import Decimal, InvalidOperation  # noqa: PLC0415  (only for a size given)

    number, unit, binary, _ = match.groups()
    base = 1024 if binary else 1000
    try:
        value = Decimal(number) * (base ** _SCALE[unit.lower()])
    except InvalidOperation:
        raise UsageError("", f"bad size {text!r}") from None
    return int(value)


def parse_percent(text: str | float) -> float:
    """`5%` or `5` -> 0.05 (a bare number is a percentage)."""
    raw = str(text).strip().removesuffix("%")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError("", f"bad percentage {text!r}", "use e.g. 5%") from None
    if value < 0:
        raise UsageError("", f"percentage {text!r} must not be negative")
    return value / 100


def human(count: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    max_params: int | None = None
    max_weight_bytes: int | None = None
    max_layer_params: int | None = None
    fail_on: tuple[str, ...] = ()


def matches(finding: Finding, selectors: Iterable[str]) -> bool:
    """A rule code prefix (`ONX1`, `ONX101`), a rule name, or `ALL`."""
    for selector in selectors:
        upper = selector.upper()
        if upper == "ALL" or finding.code.startswith(upper) or finding.rule == selector:
            return True
    return False


def evaluate(report: Report, policy: Policy) -> tuple[Violation, ...]:
    """Every way the report breaks the policy, one Violation each, in a stable order."""
    from analyzer.core.results import Violation  # noqa: PLC0415  (parse_size serves --version too)

    out: list[Violation] = []
    totals = report.totals
    if policy.max_params is not None and totals.params > policy.max_params:
        out.append(
            Violation(
                policy="max-params",
                limit=f"{policy.max_params:,}",
                measured=f"{totals.params:,}",
                message=f"{totals.params:,} parameters exceed max-params {policy.max_params:,} "
                f"({human(totals.params)} > {human(policy.max_params)})",
            )
        )
    if policy.max_weight_bytes is not None and totals.stored_bytes > policy.max_weight_bytes:
        out.append(
            Violation(
                policy="max-weight-bytes",
                limit=f"{policy.max_weight_bytes:,}",
                measured=f"{totals.stored_bytes:,}",
                message=f"{totals.stored_bytes:,} bytes of stored weights exceed max-weight-bytes "
                f"{policy.max_weight_bytes:,}",
            )
        )
    if policy.max_layer_params is not None:
        for layer in report.layers:
            if layer.params > policy.max_layer_params:
                out.append(
                    Violation(
                        policy="max-layer-params",
                        limit=f"{policy.max_layer_params:,}",
                        measured=f"{layer.params:,}",
                        node=layer.name,
                        message=f"layer {layer.name!r} ({layer.op_type}) has {layer.params:,} "
                        f"parameters, over max-layer-params {policy.max_layer_params:,}",
                    )
                )
    for finding in report.findings:
        if policy.fail_on and matches(finding, policy.fail_on):
            out.append(
                Violation(
                    policy="fail-on",
                    limit=",".join(policy.fail_on),
                    measured=finding.code,
                    node=finding.node,
                    code=finding.code,
                    message=f"{finding.code} {finding.rule} on {finding.node!r} (fail-on)",
                )
            )
    return tuple(out)
