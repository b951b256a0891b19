"""Dim names an exporter made up from a value's name, cleared so inference names the dim.

torch's TorchScript exporter declares a dim it could not name as `<Op><value>_dim_<k>`
(`LayerNormalizationonnx::Gather_242_dim_0`, `MatMuloutput_dim_1`). onnx keeps a declared
name over the one it infers, so a BERT's pooler showed `L1` where inference knows `batch`.
Only names built from the producing op and the value's own name are cleared: no person names
a dim that way, and a dim someone declared on purpose stays.
"""

from __future__ import annotations

from analyzer.core.onnxproto import ModelProto, ValueInfoProto

MARK = "_dim_"


def _candidates(model: ModelProto) -> list[ValueInfoProto]:
    """Declared values with a dim name that could be generated (cheap: no node is read)."""
    graph = model.graph  # the main graph: subgraphs' names are left as declared
    return [
        value
        for value in (*graph.value_info, *graph.output)
        if any(MARK in dim.dim_param for dim in value.type.tensor_type.shape.dim)
    ]


def clear_generated_dims(model: ModelProto) -> int:
    """Clear generated dim names in place; returns how many."""
    candidates = _candidates(model)
    if not candidates:
        return 0
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    cleared = 0
    for value in candidates:
        op = producers.get(value.name)
        if op is None:
            continue
        prefix = f"{op}{value.name}{MARK}"
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param.startswith(prefix) and dim.dim_param[len(prefix) :].isdigit():
                dim.ClearField("dim_param")
                cleared += 1
    return cleared


__all__ = ["clear_generated_dims"]
