"""Operators no runtime will load: a standard-domain op onnx has no schema for at the model's
opset (tf2onnx writes `Erfc` when it meets tf.math.erfc; a hand edit misspells `Relu`).

Counting goes on (such an op holds no weights the catalogue knows), but the model will not
load in onnxruntime, so the report says so. Asked in the inference child, where onnx's schemas
are loaded; onnxruntime's own additions to the ai.onnx domain are not flagged.
"""

from __future__ import annotations

from analyzer.core.onnxproto import ModelProto
from analyzer.core.protowalk import iter_graphs
from analyzer.view.engine import Engine
from analyzer.view.standins import ONNX_EXTRAS

STANDARD = ("", "ai.onnx.ml")
SHOWN = 5
"""Unknown op types named one by one; the rest are counted."""


def _domain(name: str) -> str:
    return "" if name in ("", "ai.onnx") else name


def _known(engine: Engine, op: str, version: int, domain: str) -> bool:
    """Whether onnx has a schema; a version out of int32 (a forged opset) asks for the newest,
    and an op onnx cannot even be asked about is given the benefit of the doubt."""
    try:
        return bool(engine.has_schema(op, max(1, min(version, 2**31 - 1)), domain))
    except (TypeError, ValueError, OverflowError):
        return True


def _opsets(model: ModelProto) -> dict[str, int]:
    return {_domain(o.domain): o.version for o in model.opset_import}


def unknown_ops(model: ModelProto, engine: Engine) -> dict[tuple[str, str], list[str]]:
    """(domain, op) -> names of its nodes, for standard-domain ops without a schema.

    The distinct (domain, op) pairs are judged first (a few dozen schema lookups); the nodes
    are walked for their names only when one is unknown, which real models never are."""
    graphs = list(iter_graphs(model))
    pairs = {(node.domain, node.op_type) for graph in graphs for node in graph.node}
    opsets = _opsets(model)
    bad = {pair for pair in pairs if _unknown(model, engine, opsets, _domain(pair[0]), pair[1])}
    found: dict[tuple[str, str], list[str]] = {}
    if bad:
        for graph in graphs:
            for node in graph.node:
                if (node.domain, node.op_type) in bad:
                    key = (_domain(node.domain), node.op_type)
                    found.setdefault(key, []).append(node.name)
    return found


def _unknown(
    model: ModelProto, engine: Engine, opsets: dict[str, int], domain: str, op: str
) -> bool:
    version = opsets.get(domain)
    if domain not in STANDARD or version is None:
        return False
    if domain == "" and op in ONNX_EXTRAS:
        return False
    if any(_domain(f.domain) == domain and f.name == op for f in model.functions):
        return False  # a model-local function
    return not _known(engine, op, version, domain)


def unknown_op_warnings(model: ModelProto, engine: Engine) -> list[str]:
    """One warning per unknown op type (the first few), naming a node of each."""
    found = unknown_ops(model, engine)
    opsets = _opsets(model)
    warnings = []
    for (domain, op), names in list(found.items())[:SHOWN]:
        nodes = f"{len(names):,} nodes, e.g. {names[0]!r}" if len(names) > 1 else repr(names[0])
        warnings.append(
            f"{domain or 'ai.onnx'}::{op} ({nodes}) is not an ONNX operator at opset "
            f"{opsets[domain]}: onnxruntime and other runtimes will refuse to load this model"
        )
    if len(found) > SHOWN:
        warnings.append(f"{len(found) - SHOWN:,} more op types are not ONNX operators either")
    return warnings


__all__ = ["unknown_op_warnings", "unknown_ops"]
