"""Prove with strace that reading a model never opens its external data file.

Runs read_skeleton + counting (and the onnx-audit CLI, when it exists) under
`strace -f -e trace=open,openat,openat2` on the external-data benchmark model and fails if any
traced process opened the `.data` file. Also reports how many bytes the skeleton read from
the model file itself (pread64 calls). A chmod 000 test proves nothing here: root reads anyway.

    python benchmarks/check_io.py [--model ~/.cache/onnx-audit-bench/gpt2-xl-external.onnx]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS_PY = Path(__file__).resolve().parent / "_tools.py"
DEFAULT = Path.home() / ".cache" / "onnx-audit-bench" / "gpt2-xl-external.onnx"


def traced(cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Exit code and strace log of cmd (opens and preads of every thread and child)."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".strace") as log:
        trace = "trace=open,openat,openat2,pread64"
        full = ["strace", "-f", "-qq", "-e", trace, "-e", "abbrev=none", "-o", log.name, *cmd]
        proc = subprocess.run(full, env=env, capture_output=True, check=False)
        return proc.returncode, log.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT)
    args = parser.parse_args(argv)
    if not shutil.which("strace"):
        print("strace is not installed (apt-get install strace)")
        return 2
    model: Path = args.model.expanduser().resolve()
    data_files = sorted(p.name for p in model.parent.glob(model.name + "*.data"))
    if not data_files:
        print(f"{model} has no external data file next to it")
        return 2
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    cli = [sys.executable, "-m", "analyzer"]
    runs = {
        "read_skeleton + count": [sys.executable, str(TOOLS_PY), "skeleton", str(model)],
        "onnx-audit --format json": [*cli, str(model), "--format", "json"],
        "onnx.load (control)": [sys.executable, str(TOOLS_PY), "onnx.load", str(model)],
    }
    failed = False
    for label, cmd in runs.items():
        code, log = traced(cmd, env)
        if code not in (0, 1):
            print(f"{label}: exit {code} (not run to completion)")
            continue
        opened = [f for f in data_files if re.search(rf'open\w*\(.*"[^"]*{re.escape(f)}"', log)]
        preads = [int(m) for m in re.findall(r"pread64\(\d+, .*?, (\d+), \d+\) = \d+", log)]
        pread_bytes = sum(int(m) for m in re.findall(r"pread64\(.*\) = (\d+)$", log, re.M))
        status = f"OPENED {', '.join(opened)}" if opened else "never opened the data file"
        print(f"{label:28} {status}; pread64: {len(preads)} calls, {pread_bytes:,} bytes")
        if opened and "control" not in label:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
