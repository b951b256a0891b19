"""Time `--inspect-weights` against reading the bytes once and against onnx.load + numpy.

    python benchmarks/inspect_weights.py [-n 3] [--models DIR]

Per model (gpt2-medium, 1.42 GB embedded; gpt2-xl-external, 6.23 GB external; made by
generate.py), interleaved round-robin in one run, each a fresh process under /usr/bin/time:
- `cat`: the model's bytes read once into /dev/null (after a warm-up read: warm page cache);
- `onnx-audit`: `python -m analyzer MODEL --inspect-weights --format json -o /dev/null`;
- `onnx+numpy`: `onnx.load` (external data included) and, per initializer, numpy_helper.to_array
  then min/max/mean/std/zeros/NaN/Inf: what users write by hand today, the whole model in memory.
Prints medians (seconds, peak RSS), the ratio to `cat`, and throughput in GB/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = Path.home() / ".cache" / "onnx-audit-bench"
MODELS = ("gpt2-medium", "gpt2-xl-external")

NUMPY_LOOP = """
import sys, numpy as np, onnx
from onnx import numpy_helper
model = onnx.load(sys.argv[1])
for t in model.graph.initializer:
    a = numpy_helper.to_array(t).astype(np.float64, copy=False)
    finite = np.isfinite(a)
    (a.min(), a.max(), a.mean(), a.std(), int((a == 0).sum()), int(np.isnan(a).sum()),
     int(a.size - finite.sum()))
"""


def files_of(model: Path) -> list[Path]:
    data = model.with_name(model.name + ".data")
    return [model, data] if data.exists() else [model]


def commands(model: Path) -> dict[str, list[str]]:
    paths = " ".join(f"'{p}'" for p in files_of(model))
    return {
        "cat": ["bash", "-c", f"cat {paths} > /dev/null"],
        "onnx-audit": [sys.executable, "-m", "analyzer", str(model), "--inspect-weights",
                       "--format", "json", "-o", os.devnull],
        "onnx+numpy": [sys.executable, "-c", NUMPY_LOOP, str(model)],
    }  # fmt: skip


def run(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one fresh process."""
    with tempfile.NamedTemporaryFile("r") as out:
        env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT)}
        timed = ["/usr/bin/time", "-f", "%e %M", "-o", out.name, *command]
        done = subprocess.run(timed, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[:3]}: exit {done.returncode}: {done.stderr[-300:]}")
        wall, rss_kb = out.read().split()[-2:]
    return float(wall), int(rss_kb) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    args = parser.parse_args()
    models = [args.models / f"{name}.onnx" for name in MODELS]
    missing = [m for m in models if not m.exists()]
    if missing:
        print(f"missing {missing}: run benchmarks/generate.py first", file=sys.stderr)
        return 2
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for model in models:  # warm the page cache once
        run(commands(model)["cat"])
    for _ in range(args.n):
        for model in models:
            for tool, command in commands(model).items():
                runs.setdefault((model.stem, tool), []).append(run(command))
    print("| model | GB | tool | seconds | peak MB | x cat | GB/s |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for model in models:
        size = sum(p.stat().st_size for p in files_of(model)) / 1e9
        base = statistics.median(w for w, _ in runs[(model.stem, "cat")])
        for tool in commands(model):
            wall = statistics.median(w for w, _ in runs[(model.stem, tool)])
            rss = statistics.median(r for _, r in runs[(model.stem, tool)])
            print(
                f"| {model.stem} | {size:.2f} | {tool} | {wall:.2f} | {rss:,.0f} | "
                f"{wall / base:.2f} | {size / wall:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
