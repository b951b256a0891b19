"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One run. `tool.driver.rules` lists every registered rule (id = rule code) plus one entry per
distinct violated policy (`budget/max-params`, ...; a fail-on violation uses its rule's code).
Each finding is a result (level: its severity, or `error` when a fail-on violation names its code)
and each violation is a result (level `error`). Locations name the model file as the artifact and
the ONNX node as a logical location, since a binary model has no line numbers. The output
validates against the OASIS schema (tests/data/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Final
from urllib.parse import quote

from analyzer.core.results import Finding, Report, Violation
from analyzer.report.reporters import add_reporter
from analyzer.rules import Rule, all_rules

SARIF_VERSION: Final = "2.1.0"
SARIF_SCHEMA: Final = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME: Final = "onnx-audit"
INFORMATION_URI: Final = "https://pypi.org/project/onnx-audit/"
NODE_KIND: Final = "member"
"""SARIF has no kind for a graph node; `member` (a member of the enclosing graph) is the closest
of the kinds the spec lists (function, member, module, namespace, ...)."""

POLICY_TEXT: Final = {
    "max-params": "Total parameters exceed the --max-params budget.",
    "max-weight-bytes": "Bytes of stored weights exceed the --max-weight-bytes budget.",
    "max-layer-params": "A layer's parameters exceed the --max-layer-params budget.",
    "max-growth": "Parameters grew more than the --max-growth budget allows.",
    "fail-on": "A rule named in --fail-on reported a finding.",
}
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


def artifact_uri(path: str) -> str:
    """The model path as a URI reference: relative paths stay relative, with forward slashes."""
    if _WINDOWS_ABSOLUTE.match(path):
        return PureWindowsPath(path).as_uri()
    if path.startswith("/"):
        return PurePosixPath(path).as_uri()
    relative = path.replace("\\", "/")
    while relative.startswith("./"):
        relative = relative[2:]
    return quote(relative, safe="/")


def violation_rule_id(violation: Violation) -> str:
    """`budget/<policy>` for budgets; the rule's code for a fail-on violation."""
    if violation.policy == "fail-on" and violation.code:
        return violation.code
    return f"budget/{violation.policy}"


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return value if math.isfinite(value) else None


def _text(text: str) -> dict[str, str]:
    return {"text": text}


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    doc = rule.doc()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": _text(rule.summary),
        "fullDescription": _text(rule.what),
        "help": {"text": doc, "markdown": doc},
        "defaultConfiguration": {"level": _level(rule.severity)},
        "properties": {"preview": rule.preview, "readsWeights": rule.reads_weights},
    }


def _policy_descriptor(rule_id: str, violation: Violation) -> dict[str, Any]:
    summary = POLICY_TEXT.get(violation.policy, f"The {violation.policy} policy was violated.")
    return {
        "id": rule_id,
        "name": violation.policy or "policy",
        "shortDescription": _text(summary),
        "fullDescription": _text(summary + " Policies set the exit code: 1 when violated."),
        "defaultConfiguration": {"level": "error"},
    }


def _location(uri: str, node: str) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri, "index": 0}},
    }
    if node:
        location["logicalLocations"] = [
            {"name": node, "kind": NODE_KIND, "fullyQualifiedName": node}
        ]
    return location


def _level(severity: str) -> str:
    """A finding's SARIF level: its severity when SARIF knows it, else warning."""
    return severity if severity in ("note", "warning", "error") else "warning"


def _finding_properties(finding: Finding) -> dict[str, Any]:
    """The common core, then the properties the finding's rule gives."""
    props: dict[str, Any] = {
        "rule": finding.rule,
        "opType": finding.op_type,
        "confidence": finding.confidence,
        "paramsSaved": finding.params_saved,
        "macsDelta": finding.macs_delta.to_json(),
    }
    if finding.detail is not None:
        props.update(finding.detail.properties())
    pricing = finding.pricing
    if pricing is not None:
        props["pricing"] = {
            "batch": pricing.batch,
            "denseMs": _number(pricing.dense_ms),
            "convMs": _number(pricing.conv_ms),
            "denseMsBatch": _number(pricing.dense_ms_batch),
            "convMsBatch": _number(pricing.conv_ms_batch),
            "machine": pricing.machine,
            "runtime": pricing.runtime,
        }
    return props


def to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log as plain JSON data."""
    descriptors = [_rule_descriptor(rule) for rule in all_rules()]
    index = {descriptor["id"]: i for i, descriptor in enumerate(descriptors)}
    for violation in report.violations:
        rule_id = violation_rule_id(violation)
        if rule_id not in index:
            index[rule_id] = len(descriptors)
            descriptors.append(_policy_descriptor(rule_id, violation))
    for finding in report.findings:
        if finding.code not in index:
            index[finding.code] = len(descriptors)
            descriptors.append(
                {"id": finding.code, "name": finding.rule, "shortDescription": _text(finding.rule)}
            )
    failing = {v.code for v in report.violations if v.policy == "fail-on" and v.code}
    uri = artifact_uri(report.path)
    results: list[dict[str, Any]] = []
    for finding in report.findings:
        results.append(
            {
                "ruleId": finding.code,
                "ruleIndex": index[finding.code],
                "level": "error" if finding.code in failing else _level(finding.severity),
                "message": _text(finding.message),
                "locations": [_location(uri, finding.node)],
                "partialFingerprints": {"onnxAuditNode/v1": f"{finding.code}:{finding.node}"},
                "properties": _finding_properties(finding),
            }
        )
    for violation in report.violations:
        rule_id = violation_rule_id(violation)
        results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": index[rule_id],
                "level": "error",
                "message": _text(violation.message),
                "locations": [_location(uri, violation.node)],
                "properties": {
                    "policy": violation.policy,
                    "limit": violation.limit,
                    "measured": violation.measured,
                },
            }
        )
    from analyzer.core.version import __version__  # noqa: PLC0415  (rarely needed)

    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }
        },
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "warning", "message": _text(w)} for w in report.warnings
                ],
            }
        ],
        "artifacts": [{"location": {"uri": uri}, "roles": ["analysisTarget"]}],
        "results": results,
        "properties": {"settings": dict(report.settings)},
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def merge_sarif(reports: Sequence[Report]) -> str:
    """Several models: one log, one run per model."""
    logs = [to_sarif(report) for report in reports]
    merged = logs[0]
    for log in logs[1:]:
        merged["runs"].extend(log["runs"])
    return json.dumps(merged, indent=2, ensure_ascii=False) + "\n"


@add_reporter("sarif", "SARIF 2.1.0 for GitHub code scanning", merge=merge_sarif)
def render_sarif(report: Report) -> str:
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n"
