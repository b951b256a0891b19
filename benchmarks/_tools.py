"""One benchmarked action, run in a fresh child process by run.py: `_tools.py TOOL MODEL`.

Prints one JSON line with what the tool found (a parameter count where it gives one), so
run.py can check every tool really did its work. Imports are inside each action: they are
part of what is measured.
"""

# ruff: noqa: PLC0415  (each action imports its library lazily: the import is measured)

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path


def onnx_load(path: Path) -> dict[str, object]:
    """What most scripts do: onnx.load (with its external data), sum initializer sizes."""
    import onnx

    model = onnx.load(str(path))
    return {"params": sum(math.prod(t.dims) for t in model.graph.initializer)}


def floor(path: Path) -> dict[str, object]:
    """The least any per-layer report costs in Python: onnx.load (external data left alone),
    one pass over the main graph's nodes, and one JSON object per node that reads an
    initializer. No checks, shapes, MACs, subgraphs or findings: a lower bound, not a tool."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = {t.name: tuple(t.dims) for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        weights = [
            {"tensor": name, "shape": dims[name], "elements": math.prod(dims[name])}
            for name in node.input
            if name in dims
        ]
        if weights:
            params = sum(w["elements"] for w in weights)
            layers.append(
                {
                    "name": node.name,
                    "op_type": node.op_type,
                    "inputs": list(node.input),
                    "outputs": list(node.output),
                    "params": params,
                    "weights": weights,
                }
            )
    text = json.dumps({"layers": layers})
    used = {w["tensor"] for layer in layers for w in layer["weights"]}
    return {"params": sum(math.prod(dims[name]) for name in used), "json_bytes": len(text)}


def onnx_infer(path: Path) -> dict[str, object]:
    """onnx.load without external data (infer_shapes needs none; a loaded 6 GB model would
    not even serialize for it), then onnx's shape inference."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model)
    return {"value_info": len(inferred.graph.value_info)}


def skeleton(path: Path) -> dict[str, object]:
    """analyzer.read.skeleton.read_skeleton alone, then the same count as onnx_load."""
    from analyzer.read.skeleton import read_skeleton

    model = read_skeleton(path)
    return {"params": sum(math.prod(t.dims) for t in model.graph.initializer)}


def onnx_tool(path: Path) -> dict[str, object]:
    """onnx-tool's `model_profile` (load, shape inference with the JSON's example inputs, MACs
    and params per node, the table), its steps written out so its own total is kept: `g.params`
    is what the table's last line prints. It loads external data, as onnx.load does."""
    import numpy as np
    import onnx_tool

    meta = json.loads(path.with_suffix(".json").read_text())
    shapes = {
        name: np.zeros(spec["shape"], dtype=spec["dtype"])
        for name, spec in meta.get("example_inputs", {}).items()
    }
    with contextlib.redirect_stdout(io.StringIO()):
        graph = onnx_tool.loadmodel(str(path), {"verbose": False}).graph
        graph.graph_reorder_nodes()
        graph.shape_infer(shapes or None)
        graph.profile(exclude_ops=onnx_tool.NoMacsOps)
        graph.print_node_map(None, exclude_ops=onnx_tool.NoMacsOps)
    return {"params": int(graph.params)}


def onnx_opcounter(path: Path) -> dict[str, object]:
    """What onnx-opcounter's `onnx_opcounter MODEL` CLI runs: onnx.load (external
    data included) and `calculate_params`, which turns every initializer into a numpy array."""
    import onnx
    from onnx_opcounter import calculate_params

    return {"params": int(calculate_params(onnx.load(str(path))))}


def polygraphy(path: Path) -> dict[str, object]:
    """`polygraphy inspect model MODEL --show layers` as a library call: its loader (external
    data loaded, its default) and the text it prints. Polygraphy gives no parameter total; a
    user adds up the initializer shapes that text lists, taken here from the same model."""
    from polygraphy.backend.onnx import onnx_from_path
    from polygraphy.backend.onnx.util import str_from_onnx
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.WARNING
    model = onnx_from_path(str(path))
    text = str_from_onnx(model, show_layers=True)
    params = sum(math.prod(t.dims) for t in model.graph.initializer)
    return {"params": params, "text_bytes": len(text)}


def onnx_ir(path: Path) -> dict[str, object]:
    """onnx-ir's `load` (onnx.load without external data, then its own IR; external tensors are
    memory-mapped only when read) and the sum of the initializers' sizes."""
    import onnx_ir as ir

    model = ir.load(path)
    values = model.graph.initializers.values()
    return {"params": sum(v.const_value.size for v in values if v.const_value is not None)}


TOOLS = {
    "onnx.load": onnx_load,
    "onnx.infer": onnx_infer,
    "floor": floor,
    "skeleton": skeleton,
    "onnx-tool": onnx_tool,
    "onnx-opcounter": onnx_opcounter,
    "polygraphy": polygraphy,
    "onnx-ir": onnx_ir,
}


def main() -> int:
    tool, model = sys.argv[1], Path(sys.argv[2])
    result = TOOLS[tool](model)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
