"""The layer table of the terminal report, fitted to a width: dims by alias with a legend,
rows folded by module at --depth, and the MACs total as one short formula plus a value."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.core.errors import escape_controls
from analyzer.core.results import LayerTally, Report, Shape
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import modtree
from analyzer.report.reporters.aliases import Aliases, poly_text
from analyzer.report.reporters.layout import View, ellipsize, fit_table, width

MAX_FORMULA_TERMS = 8
"""A MACs total with more terms than this is summarized: the JSON has it exactly."""


@dataclass(slots=True)
class LayerBlock:
    table: list[str]
    legend: list[str] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)
    depth_note: str = ""


def _reserved(report: Report) -> set[str]:
    """Dim names shown as they are: an alias must not look like one of them."""
    names: set[str] = set()
    for layer in report.layers:
        for shape in layer.output_shapes:
            names.update(d for d in shape or () if isinstance(d, str))
        for symbols, _ in layer.macs.terms:
            names.update(symbols)
    return names


def _input_sizes(report: Report) -> dict[str, str]:
    return {
        key.split(":", 1)[1]: value
        for key, value in report.settings
        if key.startswith("input_shape:")
    }


def _output(layer: LayerTally) -> Shape | None:
    return layer.output_shapes[0] if layer.output_shapes else None


class _Cells:
    """A row's cells, with dims by alias; MACs texts are cached per polynomial."""

    def __init__(self, aliases: Aliases) -> None:
        self.aliases = aliases
        self._macs: dict[Poly, str] = {}

    def macs(self, poly: Poly) -> str:
        text = self._macs.get(poly)
        if text is None:
            aliases = self.aliases
            text = self._macs[poly] = poly_text(aliases.poly(poly), order=aliases.order)
        return text

    def row(self, label: str, output: Shape | None, params: int, macs: Poly) -> list[str]:
        return [
            escape_controls(label),
            escape_controls(self.aliases.shape(output)),
            f"{params:,}",
            escape_controls(self.macs(macs)),
        ]


def _flat_rows(layers: tuple[LayerTally, ...], cells: _Cells, shared: bool) -> list[list[str]]:
    """One row per layer."""
    rows: list[list[str]] = []
    for layer in layers:
        label = f"{layer.name} ({layer.qualified_op})"
        row = cells.row(label, _output(layer), layer.params, layer.macs)
        rows.append([*row, "shared" if layer.shared else ""] if shared else row)
    return rows


def _grouped_row(
    item: modtree.Row, layers: tuple[LayerTally, ...], cells: _Cells
) -> tuple[list[str], bool]:
    """A module-tree row's cells, and whether it uses a shared tensor."""
    indent = "  " * item.depth
    if item.layer is not None:
        layer = layers[item.layer]
        leaf = modtree.split_name(layer.name)[-1]
        label = f"{indent}{leaf} ({layer.qualified_op})"
        return cells.row(label, _output(layer), layer.params, layer.macs), layer.shared
    module = item.module
    assert module is not None
    if item.expanded:
        return [escape_controls(f"{indent}{item.label}"), "", "--", "--"], False
    mix = modtree.op_mix(module.ops)
    last = layers[module.last]
    label = f"{indent}{item.label} ({mix})"
    row = cells.row(label, _output(last), module.params, module.macs)
    return row, any(layers[i].shared for i in _below(module))


def _grouped_rows(
    shown: list[modtree.Row], layers: tuple[LayerTally, ...], cells: _Cells, shared: bool
) -> list[list[str]]:
    """One row per shown module-tree row."""
    rows: list[list[str]] = []
    for item in shown:
        row, is_shared = _grouped_row(item, layers, cells)
        rows.append([*row, "shared" if is_shared else ""] if shared else row)
    return rows


def layer_block(report: Report, view: View) -> LayerBlock:
    aliases = Aliases(_reserved(report))
    cells = _Cells(aliases)
    layers = report.layers
    shared = any(layer.shared for layer in layers)
    depth = view.depth
    root = modtree.build(layers) if depth != 0 else None
    if root is not None and depth is None:
        depth = modtree.auto_depth(root, len(layers))
    note = ""
    if root is None or not depth:
        rows = _flat_rows(layers, cells, shared)
    else:
        shown = modtree.rows(root, depth)
        note = (
            f"  layers grouped by module at --depth {depth} ({len(shown):,} rows; "
            "--depth 0 lists every node)"
        )
        rows = _grouped_rows(shown, layers, cells, shared)
    headers = ["Layer (op)", "Output shape", "Param #", "MACs"]
    align = ["left", "left", "right", "right"]
    if shared:
        headers.append("Shared")
        align.append("left")
    shrink = ((0, 28), (1, 16), (3, 16), (0, 16), (1, 10), (3, 10))
    table = fit_table(rows, headers, align, view.width, shrink=shrink)
    total = report.totals.macs
    block = LayerBlock(table=table, depth_note=note)
    block.macs = _macs_lines(report, total, aliases, view)
    block.legend = _legend(report, aliases, view)
    return block


def _below(module: modtree.Module) -> list[int]:
    return [i for m in module.walk() for i in m.layers]


def _macs_lines(report: Report, total: Poly, aliases: Aliases, view: View) -> list[str]:
    if total.value is not None:
        return [f"MACs: {total.value:,}"]
    short = aliases.poly(total)
    formula = poly_text(short, factor=True, order=aliases.order)
    dims = sorted({s for symbols, _ in short.terms for s in symbols})
    if len(short.terms) > MAX_FORMULA_TERMS or width(formula) > 2 * view.width:
        formula = (
            f"a sum of {len(short.terms):,} terms in {len(dims):,} dynamic dims "
            "(exact formula in --format json)"
        )
    lines = [escape_controls(f"MACs: {formula}")]
    given = _input_sizes(report)
    value = aliases.evaluate(total, {})
    where = (
        "at the given --input-shape, every other dynamic dim = 1"
        if given
        else "at every dynamic dim = 1"
    )
    lines.append(f"MACs {where}: {value:,}")
    return lines


def _legend(report: Report, aliases: Aliases, view: View) -> list[str]:
    if not aliases.legend and not aliases.unnamed:
        return []
    lines = ["Dims:"]
    name_width = max((len(alias) for alias, _ in aliases.legend), default=0)
    for alias, text in aliases.legend:
        line = f"  {alias.ljust(name_width)} = {text}"
        lines.append(escape_controls(ellipsize(line, view.width)))
    if aliases.unnamed:
        first = aliases.unnamed[0].removeprefix("unk__")
        lines.append(
            f"  u{first}, ... = unk__{first}, ...: {len(aliases.unnamed):,} dims shape "
            "inference could not name"
        )
    hint = _input_hint(report)
    lines.append("  Exact formulas are in --format json." + (f" Fix them: {hint}" if hint else ""))
    return lines


def _input_hint(report: Report) -> str:
    parts = []
    for name, shape in report.model.inputs:
        if shape is None or all(isinstance(d, int) for d in shape):
            continue
        dims = ",".join(str(d) if isinstance(d, int) else f"<{d}>" for d in shape)
        parts.append(f"--input-shape {escape_controls(name)}={dims}")
    return " ".join(parts[:3])


__all__ = ["LayerBlock", "layer_block"]
