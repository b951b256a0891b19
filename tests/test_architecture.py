"""The import contract of docs/architecture.md: imports point down the pipeline, no cycles.

Every `import` in analyzer/ counts, including ones inside functions and under TYPE_CHECKING:
a lazy import is still a dependency. A module may import its own stage or any stage below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "analyzer"
STAGES = ("core", "read", "view", "count", "rules", "api", "report", "runtime", "cli")
"""Bottom to top. `api` is analyzer/api.py, the composition of read..rules into analyze();
the package root (analyzer/__init__.py, __main__.py) sits above everything."""
TOP = len(STAGES)


def stage(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    if parts[1] not in STAGES:
        raise AssertionError(f"{module}: not in any stage of {STAGES}; add it to one")
    return STAGES.index(parts[1])


def module_name(path: Path) -> str:
    parts = ["analyzer", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(module: str, source: str, known: set[str]) -> Iterator[str]:
    """The analyzer modules `source` (the text of `module`) imports."""
    package = module if module in known and _is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        yield from (name for name in names if name == "analyzer" or name.startswith("analyzer."))


def _target(base: str, name: str, known: set[str]) -> str:
    """`from base import name`: the submodule base.name when there is one, else base."""
    return f"{base}.{name}" if f"{base}.{name}" in known else base


def _is_package(module: str) -> bool:
    return (ROOT.parent / module.replace(".", "/") / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {
        module_name(p): set(imports_of(module_name(p), p.read_text(), known)) - {module_name(p)}
        for p in paths
    }


def violations(graph: Mapping[str, set[str]]) -> list[str]:
    """Back-imports (against the stage order) and import cycles, one line each."""
    found = [
        f"{a} ({STAGES[stage(a)] if stage(a) < TOP else 'root'}) imports {b} from a later stage"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if stage(b) > stage(a)
    ]
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return found


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append([*sorted(component), sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_imports_point_down_the_pipeline() -> None:
    assert violations(import_graph()) == []


def test_every_module_is_in_a_stage() -> None:
    for module in import_graph():
        stage(module)  # raises for a module outside the map


def test_a_planted_back_import_fails() -> None:
    """The reader importing the CLI is what the contract exists to stop."""
    graph = import_graph()
    known = set(graph)
    planted = "from analyzer.cli.app import main\n"
    graph["analyzer.read.wire"] |= set(imports_of("analyzer.read.wire", planted, known))
    found = violations(graph)
    assert found[0] == "analyzer.read.wire (read) imports analyzer.cli.app from a later stage"
    assert any(line.startswith("import cycle:") for line in found)  # the CLI reads files


def test_a_planted_lazy_or_relative_back_import_fails() -> None:
    known = set(import_graph())
    source = "def f():\n    from ..report import serialize\n"
    found = set(imports_of("analyzer.count.notes", source, known))
    assert found == {"analyzer.report.serialize"}
    assert violations({"analyzer.count.notes": found, "analyzer.report.serialize": set()})


def test_a_planted_cycle_fails() -> None:
    graph = {"analyzer.read.loader": {"analyzer.read.skeleton"}}
    graph["analyzer.read.skeleton"] = {"analyzer.read.loader"}
    assert violations(graph) == [
        "import cycle: analyzer.read.loader -> analyzer.read.skeleton -> analyzer.read.loader"
    ]
