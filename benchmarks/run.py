"""Time onnx-audit against onnx.load, onnx shape inference and the peer tools (onnx-tool,
onnx-opcounter, polygraphy, onnx-ir: their own venv, made by peers.sh).

Every measurement is a fresh child process (imports included, as a user runs it): wall time
from the parent, peak RSS from /usr/bin/time. Tools run interleaved, round-robin over models
and tools, N times; the tables show medians, ratios to onnx.load, and every tool's time over
onnx-audit's per round.

    python benchmarks/generate.py          # once: writes the models to ~/.cache/onnx-audit-bench
    bash benchmarks/peers.sh               # once: the peers' venv, /work/venv-bench
    python benchmarks/run.py -n 3          # every model and tool
    python benchmarks/run.py --only gpt2-small vgg16 --tools onnx-audit skeleton onnx.load
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _tables import Cell, markdown, mb, medians_table, ratios_table, render

REPO = Path(__file__).resolve().parent.parent
TOOLS_PY = Path(__file__).resolve().parent / "_tools.py"
DEFAULT_MODELS = Path.home() / ".cache" / "onnx-audit-bench"
DEFAULT_BENCH_PY = Path("/work/venv-bench/bin/python")
# Peer tool -> the module it imports: each runs under --bench-python, never the project's venv.
PEER_MODULES = {
    "onnx-opcounter": "onnx_opcounter",
    "polygraphy": "polygraphy",
    "onnx-ir": "onnx_ir",
    "onnx-tool": "onnx_tool",
}
ALL_TOOLS = [
    "onnx-audit",
    "onnx-audit-before",
    "skeleton",
    "floor",
    "onnx.load",
    "onnx.infer",
    *PEER_MODULES,
]
TIME = shutil.which("time", path="/usr/bin:/bin")
IMPORT_ROWS = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import onnx'": ["-c", "import onnx"],
    "onnx-audit --version": ["-m", "analyzer", "--version"],
}


def measure(
    cmd: list[str], env: dict[str, str], timeout: float
) -> tuple[float, int, int, str, str]:
    """Run cmd as a child: (wall seconds, peak RSS bytes, exit code, stdout, last stderr line).

    Linux carries a parent's RSS high-water mark into a forked child's ru_maxrss across exec,
    so the child is started through /usr/bin/time (a ~2 MB process) when it exists; otherwise
    wait4's rusage is used and the numbers include this script's own peak RSS.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(mode="r") as rss_file,
    ):
        wrapped = [TIME, "-f", "%M", "-o", rss_file.name, *cmd] if TIME else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(
            wrapped,
            stdout=out,
            stderr=err,
            env=env,
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        rss = usage.ru_maxrss * 1024
        if TIME:
            reported = rss_file.read().split()
            rss = int(reported[-1]) * 1024 if reported and reported[-1].isdigit() else 0
        out.seek(0)
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines() or [f"exit {code}"]
        problem = f"killed at {timeout:.0f} s (timeout)" if code and wall >= timeout else ""
        problem = problem or lines[-1][:120]
        return wall, rss, code, out.read().decode(errors="replace"), problem


def command(tool: str, model: Path, python: str, bench_python: str) -> list[str]:
    if tool in ("onnx-audit", "onnx-audit-before"):
        return [python, "-m", "analyzer", str(model), "--format", "json"]
    return [bench_python if tool in PEER_MODULES else python, str(TOOLS_PY), tool, str(model)]


def found_params(tool: str, text: str) -> object:
    """The parameter count a tool printed, to check it did the whole job."""
    try:
        data = json.loads(text)
    except ValueError:
        return f"unreadable output {text[:40]!r}"
    if tool.startswith("onnx-audit"):
        return data.get("totals", {}).get("params")
    return data.get("params")


def available(python: str, bench_python: str, env: dict[str, str]) -> dict[str, str]:
    """Tools that cannot run here, with the reason shown as n/a in the table."""
    missing: dict[str, str] = {}
    probe = subprocess.run(
        [python, "-m", "analyzer", "--version"], env=env, capture_output=True, check=False
    )
    if probe.returncode != 0:
        missing["onnx-audit"] = "analyzer CLI not importable"
    for tool, module in PEER_MODULES.items():
        if not Path(bench_python).exists():
            missing[tool] = f"no {bench_python}: run benchmarks/peers.sh"
        elif subprocess.run(
            [bench_python, "-c", f"import {module}"], capture_output=True, check=False
        ).returncode:
            missing[tool] = f"{tool} not importable in {bench_python}"
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="generated models")
    parser.add_argument("--only", nargs="+", metavar="MODEL", help="model names (no .onnx)")
    parser.add_argument(
        "--tools", nargs="+", choices=ALL_TOOLS, help="default: all (the before one with --before)"
    )
    parser.add_argument("-n", "--repeat", type=int, default=3, help="runs per cell (median)")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds per run before it is killed"
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with onnx")
    parser.add_argument(
        "--bench-python", default=str(DEFAULT_BENCH_PY), help="the peers' venv (peers.sh)"
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--markdown", type=Path, help="also write the issue-17 table here")
    parser.add_argument(
        "--before", type=Path, help="a checkout of an earlier version: tool onnx-audit-before"
    )
    args = parser.parse_args(argv)
    if args.tools is None:
        args.tools = [t for t in ALL_TOOLS if args.before or t != "onnx-audit-before"]

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # Byte-compile the package once, as `pip install` does: under PYTHONDONTWRITEBYTECODE (set
    # on some CI machines) a source checkout would otherwise be recompiled on every run.
    subprocess.run([args.python, "-m", "compileall", "-q", str(REPO / "analyzer")], check=True)
    before_env = dict(env)
    if args.before:
        before_env["PYTHONPATH"] = str(args.before.resolve()) + os.pathsep + env["PYTHONPATH"]
        analyzer = str(args.before / "analyzer")
        subprocess.run([args.python, "-m", "compileall", "-q", analyzer], check=True)
    metas = sorted(args.models.expanduser().glob("*.json"))
    if args.only:
        metas = [m for m in metas if m.stem in args.only]
    if not metas:
        parser.error(f"no models in {args.models}: run benchmarks/generate.py first")
    meta = {m.stem: json.loads(m.read_text()) for m in metas}
    missing = available(args.python, args.bench_python, env)
    if not args.before:
        missing["onnx-audit-before"] = "no --before checkout"
    cells = {(name, tool): Cell() for name in meta for tool in args.tools}
    imports = {row: Cell() for row in IMPORT_ROWS}
    for tool, why in missing.items():
        for name in meta:
            if (name, tool) in cells:
                cells[name, tool].failure = f"n/a ({why})"
    if "onnx-audit" in missing:
        imports.pop("onnx-audit --version")

    loads: list[float] = []
    for rep in range(args.repeat):
        loads.append(os.getloadavg()[0])
        print(f"round {rep + 1}/{args.repeat}: load average {loads[-1]:.2f}", flush=True)
        for row, extra in IMPORT_ROWS.items():
            if row in imports:
                wall, rss, *_ = measure([args.python, *extra], env, args.timeout)
                imports[row].walls.append(wall)
                imports[row].rss.append(rss)
        for name, info in meta.items():
            model = args.models.expanduser() / str(info["file"])
            for tool in args.tools:
                cell = cells[name, tool]
                if cell.failure:
                    continue
                cmd = command(tool, model, args.python, args.bench_python)
                tool_env = before_env if tool == "onnx-audit-before" else env
                wall, rss, code, text, problem = measure(cmd, tool_env, args.timeout)
                if code != 0 and not (code == 1 and tool.startswith("onnx-audit")):  # 1: policy
                    cell.failure = problem
                    print(f"[{rep + 1}/{args.repeat}] {name:22} {tool:14} FAILED: {problem}")
                    continue
                cell.walls.append(wall)
                cell.rss.append(rss)
                cell.rounds.append(rep)
                cell.found = found_params(tool, text)
                print(
                    f"[{rep + 1}/{args.repeat}] {name:22} {tool:14} {wall:8.2f} s {mb(rss):>7} MB",
                    flush=True,
                )
    loads.append(os.getloadavg()[0])

    print()
    print(medians_table(cells, meta, args.tools))
    ratios = ratios_table(cells, meta, args.tools, args.repeat)
    if ratios:
        print("\nTime over onnx-audit's, median (per round); above 1: onnx-audit faster\n")
        print(ratios)
    print()
    import_rows = [
        [row, f"{statistics.median(c.walls):.3f}", mb(statistics.median(c.rss))]
        for row, c in imports.items()
        if c.walls
    ]
    print(render(["startup", "wall s", "peak RSS MB"], import_rows))
    load_text = ", ".join(f"{x:.2f}" for x in loads)
    print(f"\nmedian of {args.repeat} interleaved runs; each run a fresh child process")
    print(f"1-minute load average at each round's start and at the end: {load_text}")
    if args.markdown:
        startup = "; ".join(f"`{row}` {wall} s" for row, wall, _ in import_rows)
        args.markdown.write_text(
            markdown(cells, meta, args.tools, args.repeat)
            + f"\nStart-up (medians): {startup}. Load average: {load_text}.\n"
        )
    if args.json:
        record: dict[str, object] = {
            f"{name}/{tool}": {
                "walls": c.walls,
                "rss": c.rss,
                "rounds": c.rounds,
                "failure": c.failure,
                "found": c.found,
            }
            for (name, tool), c in cells.items()
        }
        record["load_average"] = loads
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
