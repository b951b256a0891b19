"""Compare two reports: layers matched by name, then by position among same-op nodes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from analyzer.core.results import DiffReport, Finding, LayerDelta, LayerTally, Report, Violation


def _match(
    old: tuple[LayerTally, ...], new: tuple[LayerTally, ...]
) -> list[tuple[LayerTally | None, LayerTally | None, str]]:
    by_name = {layer.name: layer for layer in new}
    pairs: dict[str, tuple[LayerTally, str]] = {}
    unmatched_old: list[LayerTally] = []
    for layer in old:
        twin = by_name.get(layer.name)
        if twin is not None and twin.op_type == layer.op_type:
            pairs[twin.name] = (layer, "name")
        else:
            unmatched_old.append(layer)
    queues: dict[str, list[LayerTally]] = defaultdict(list)
    for layer in unmatched_old:
        queues[layer.qualified_op].append(layer)
    for layer in new:
        if layer.name not in pairs and queues[layer.qualified_op]:
            pairs[layer.name] = (queues[layer.qualified_op].pop(0), "position")
    matched_old = {id(layer) for layer, _ in pairs.values()}
    out: list[tuple[LayerTally | None, LayerTally | None, str]] = []
    for layer in new:
        found = pairs.get(layer.name)
        out.append((found[0], layer, found[1]) if found else (None, layer, ""))
    out.extend((layer, None, "") for layer in old if id(layer) not in matched_old)
    return out


def diff(old: Report, new: Report, max_growth: float | None = None) -> DiffReport:
    """Per-layer parameter deltas, new and fixed findings, and the growth policy."""
    deltas: list[LayerDelta] = []
    renamed: dict[str, str] = {}
    for before, after, how in _match(old.layers, new.layers):
        if before is not None and after is not None:
            renamed[before.name] = after.name
            status = "same" if before.params == after.params else "changed"
            deltas.append(
                LayerDelta(
                    status=status,
                    old_name=before.name,
                    new_name=after.name,
                    op_type=after.op_type,
                    old_params=before.params,
                    new_params=after.params,
                    matched_by=how,
                )
            )
        elif after is not None:
            deltas.append(
                LayerDelta(
                    status="added",
                    old_name="",
                    new_name=after.name,
                    op_type=after.op_type,
                    old_params=0,
                    new_params=after.params,
                )
            )
        elif before is not None:
            deltas.append(
                LayerDelta(
                    status="removed",
                    old_name=before.name,
                    new_name="",
                    op_type=before.op_type,
                    old_params=before.params,
                    new_params=0,
                )
            )
    old_keys = {_key(f, renamed) for f in old.findings}
    new_keys = {_key(f, {}) for f in new.findings}
    new_findings = tuple(f for f in new.findings if _key(f, {}) not in old_keys)
    fixed: tuple[Finding, ...] = tuple(f for f in old.findings if _key(f, renamed) not in new_keys)
    return DiffReport(
        old=old,
        new=new,
        layers=tuple(deltas),
        new_findings=new_findings,
        fixed_findings=fixed,
        violations=_growth(old, new, max_growth),
    )


def _growth(old: Report, new: Report, max_growth: float | None) -> tuple[Violation, ...]:
    """The max-growth policy: total params may grow by at most this fraction."""
    before, after = old.totals.params, new.totals.params
    if max_growth is None or after <= before * (1 + max_growth):
        return ()
    measured = f"{(after - before) / before:.2%}" if before else "from 0"
    message = (
        f"parameters grew {measured} ({before:,} -> {after:,}), over max-growth {max_growth:.2%}"
    )
    limit = f"{max_growth:.2%}"
    return (Violation(policy="max-growth", limit=limit, measured=measured, message=message),)


def _key(finding: Finding, renamed: Mapping[str, str]) -> tuple[str, str, str]:
    """A finding's identity across versions: its rule, its node (under the new name when the
    node was renamed) and what on the node it is about (a weight rule's tensor)."""
    subject = finding.detail.subject() if finding.detail is not None else ""
    return finding.code, renamed.get(finding.node, finding.node), subject
