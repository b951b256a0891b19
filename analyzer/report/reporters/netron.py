"""`--format netron`: a Netron attachment, per-node numbers and findings shown in Netron's sidebar.

Open the model in Netron, then open this file (it must be named `*.json`) on top of it: the
node sidebar gains a "Metrics" section (parameters, MACs, ...) and a "Metadata" section (the
findings on that node); the model sidebar shows the audited totals.

Format, as Netron reads it (lutzroeder/netron, `source/view.js`: `metadata.Attachment.open()`,
`metadata.Attachment.Container.open()` and `._list()`; `view.NodeSidebar.render()` calls
`model.attachment.metrics.node(node)` and `.metadata.node(node)`; recent revisions only, older
view.js revisions have no attachment support):

    {"signature": "netron:attachment",
     "metadata": [ITEM, ...],
     "metrics":  [ITEM, ...]}
    ITEM = {"kind": "model" | "graph" | "node" | "value" | "tensor",
            "target": NAME,            # or "identifier": ID, matched against the object's id
            "name": LABEL, "value": VALUE, "type": TYPE (optional, default "attribute")}

- A file is taken as an attachment only when its name ends in `.json` and `signature` is exactly
  `"netron:attachment"`; both lists are optional, other top-level keys are ignored.
- An item is kept only if it has `kind` and `target` (or `identifier`); it is keyed
  `kind::target`, and an object matches when its name, cut at the first newline, equals
  `target`. Model and graph items match with an empty `target` (the sidebar objects Netron
  builds for them carry no name).
- Within one target, a `name` used twice keeps the last value; attachment entries override
  Netron's own (e.g. its naive `parameters` count on the model).

Limits that follow from the matching: a node Netron knows by an empty name (an unnamed ONNX node,
which onnx-audit calls `Op_index`) cannot be targeted, and subgraph layers, whose onnx-audit names
carry their path prefix, do not match the node's own name.
"""

from __future__ import annotations

from typing import Any, Final

from analyzer.core.results import Finding, LayerTally, Report
from analyzer.report.reporters import add_reporter
from analyzer.report.serialize import dumps

SIGNATURE: Final = "netron:attachment"


def _target(name: str) -> str:
    """Netron compares against the object's name up to its first newline."""
    return name.split("\n", 1)[0]


def _item(kind: str, target: str, name: str, value: int | str | bool) -> dict[str, Any]:
    return {"kind": kind, "target": target, "name": name, "value": value}


def _layer_metrics(layer: LayerTally) -> list[dict[str, Any]]:
    target = _target(layer.name)
    return [
        _item("node", target, "parameters", layer.params),
        _item("node", target, "trainable", layer.trainable),
        _item("node", target, "non-trainable", layer.non_trainable),
        _item("node", target, "weight bytes", layer.nbytes),
        _item("node", target, "MACs", layer.macs.to_json()),
        _item("node", target, "shared weights", layer.shared),
    ]


def _finding_metadata(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    used: dict[tuple[str, str], int] = {}
    for finding in findings:
        target = _target(finding.node)
        label = f"{finding.code} {finding.rule}"
        count = used.get((target, label), 0) + 1
        used[(target, label)] = count
        name = label if count == 1 else f"{label} ({count})"
        items.append(_item("node", target, name, finding.message))
    return items


def to_attachment(report: Report) -> dict[str, Any]:
    from analyzer.core.version import __version__  # noqa: PLC0415  (rarely needed)

    totals = report.totals
    metrics: list[dict[str, Any]] = [
        _item("model", "", "parameters", totals.params),
        _item("model", "", "trainable", totals.trainable),
        _item("model", "", "non-trainable", totals.non_trainable),
        _item("model", "", "weight bytes", totals.param_bytes),
        _item("model", "", "MACs", totals.macs.to_json()),
    ]
    for layer in report.layers:
        metrics.extend(_layer_metrics(layer))
    metadata: list[dict[str, Any]] = [
        _item("model", "", "audited by", f"onnx-audit {__version__}"),
        _item("model", "", "findings", len(report.findings)),
    ]
    metadata.extend(_finding_metadata(report.findings))
    metadata.extend(
        _item("model", "", f"violation {i}", v.message)
        for i, v in enumerate(report.violations, start=1)
    )
    return {"signature": SIGNATURE, "metadata": metadata, "metrics": metrics}


@add_reporter(
    "netron",
    "Netron attachment: per-node metrics and findings (open as *.json)",
    one_model=True,
)
def render_netron(report: Report) -> str:
    return dumps(to_attachment(report)) + "\n"  # one line per metric: json's indent is slow
