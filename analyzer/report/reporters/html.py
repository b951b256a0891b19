"""`--format html`: one self-contained page (inline CSS, SVG and script; nothing fetched).

The summary, a bar chart of parameters and MACs per module, each finding's trade drawn side by
side, and a sortable, filterable per-layer table. The table's rows travel as compact JSON and are
drawn a page at a time, so a 50,000-layer model writes a page of a few MB that opens at once.
Charts are SVG (`htmlsvg`), so they show even with scripts off; `htmlpage` holds the page
shell (CSS, the table's script).
"""

from __future__ import annotations

from html import escape

from analyzer.core.results import DiffReport, Finding, Report
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import add_reporter, htmlsvg, modtree
from analyzer.report.reporters.aliases import Aliases, poly_text
from analyzer.report.reporters.htmlpage import SCRIPT, page, script_json
from analyzer.report.reporters.table import human_bytes
from analyzer.report.reporters.tableview import MAX_FORMULA_TERMS

CHART_BARS = 40
"""Modules in the chart: the largest by parameters, the rest summed in one bar."""
PAGE_ROWS = 100


def _num(value: int) -> str:
    return f"{value:,}"


def _short(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:,.0f}"


class _Numbers:
    """MAC counts as numbers for charts: the formula evaluated at the reference shape."""

    def __init__(self, report: Report) -> None:
        self.aliases = Aliases()
        self.exact = report.totals.macs.value is not None
        if not self.exact:  # aliases numbered in the order the layers first use them
            for layer in report.layers:
                for shape in layer.output_shapes[:1]:
                    self.aliases.shape(shape)
        given = any(k.startswith("input_shape:") for k, _ in report.settings)
        self.label = (
            ""
            if self.exact
            else " (at the given --input-shape, other dynamic dims = 1)"
            if given
            else " (at every dynamic dim = 1)"
        )

    def formula(self, poly: Poly) -> str:
        short = self.aliases.poly(poly)
        if len(short.terms) > MAX_FORMULA_TERMS:
            return f"a sum of {len(short.terms):,} terms (exact formula in --format json)"
        text = poly_text(short, factor=True, order=self.aliases.order)
        legend = "; ".join(f"{a} = {t}" for a, t in self.aliases.legend)
        return text + (f"   where {legend}" if legend else "")

    def value(self, poly: Poly) -> int:
        exact = poly.value
        return exact if exact is not None else self.aliases.evaluate(poly, {})


def _summary(report: Report, numbers: _Numbers) -> str:
    t = report.totals
    info = report.model
    macs = report.totals.macs
    rows = [
        ("Parameters", f"{_num(t.params)} ({human_bytes(t.param_bytes)})"),
        ("Trainable / non-trainable", f"{_num(t.trainable)} / {_num(t.non_trainable)}"),
        ("Other constants", f"{_num(t.other_constants)} ({human_bytes(t.other_bytes)})"),
        ("Stored", f"{_num(t.stored_tensors)} tensors, {human_bytes(t.stored_bytes)}"),
        ("MACs", _num(macs.value) if macs.value is not None else numbers.formula(macs)),
    ]
    if t.quantization_constants:
        rows.insert(3, ("Quantization constants", _num(t.quantization_constants)))
    if macs.value is None:
        rows.append((f"MACs{numbers.label}", _num(numbers.value(macs))))
    rows.append(("Nodes / layers", f"{_num(info.nodes)} / {_num(len(report.layers))}"))
    rows.append(("Findings", str(len(report.findings))))
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f'<section id="summary"><h2>Summary</h2><dl class="kv">{body}</dl></section>'


def _chart_items(report: Report, root: modtree.Module, depth: int) -> list[tuple[str, int, Poly]]:
    """(name, params, MACs) of every bar: each layer at depth 0, else the modules at `depth`."""
    if depth == 0:
        return [(layer.name, layer.params, layer.macs) for layer in report.layers]
    items: list[tuple[str, int, Poly]] = []
    for row in modtree.rows(root, depth):
        if row.expanded:
            continue
        if row.layer is not None:
            layer = report.layers[row.layer]
            items.append((layer.name, layer.params, layer.macs))
        elif row.module is not None:
            items.append(("/".join(row.module.path), row.module.params, row.module.macs))
    return items


def _capped(items: list[tuple[str, int, Poly]]) -> list[tuple[str, int, Poly]]:
    """At most CHART_BARS bars: the largest by parameters, in order, and the rest summed."""
    if len(items) <= CHART_BARS:
        return items
    ranked = sorted(range(len(items)), key=lambda i: -items[i][1])
    keep = sorted(ranked[: CHART_BARS - 1])
    rest = [items[i] for i in ranked[CHART_BARS - 1 :]]
    rest_item = (
        f"{len(rest):,} more",
        sum(r[1] for r in rest),
        Poly.total(r[2] for r in rest),
    )
    return [items[i] for i in keep] + [rest_item]


def _module_chart(report: Report, numbers: _Numbers) -> str:
    if not report.layers:
        return '<section id="modules"><h2>Parameters and MACs per module</h2><p>None.</p></section>'
    root = modtree.build(report.layers)
    depth = modtree.auto_depth(root, len(report.layers), limit=CHART_BARS) or 0
    items = _capped(_chart_items(report, root, depth))
    labels = [name for name, _, _ in items]
    params = [float(p) for _, p, _ in items]
    macs = [float(numbers.value(m)) for _, _, m in items]
    svg = htmlsvg.bars(
        labels,
        [
            ("p", "parameters", params, [_short(v) for v in params]),
            ("m", "MACs", macs, [_short(v) for v in macs]),
        ],
        "module-chart",
    )
    legend = htmlsvg.legend([("p", "parameters"), ("m", f"MACs{numbers.label}")])
    where = f"modules at depth {depth}" if depth else "every layer"
    return (
        f'<section id="modules"><h2>Parameters and MACs per module</h2>'
        f'<p class="muted">{escape(where)}; each bar scaled to the largest of its kind.</p>'
        f"{legend}{svg}</section>"
    )


def _at_one(macs: Poly) -> float:
    """A MAC count to draw: exact, or with every dynamic dim at 1."""
    return float(sum(coeff for _, coeff in macs.terms))


def _finding(finding: Finding, index: int) -> str:
    """A finding as its rule tells it: message, detail lines, and the trade drawn to scale."""
    detail = finding.detail
    sides = detail.sides() if detail is not None else ()
    svg = ""
    if sides:
        classes = ("p", "m")
        svg = htmlsvg.bars(
            ["weights", "MACs"],
            [
                (
                    classes[i % len(classes)],
                    side.label,
                    [float(side.weights), _at_one(side.macs)],
                    [f"{side.label}: {_num(side.weights)}", f"{side.label}: {side.macs}"],
                )
                for i, side in enumerate(sides)
            ],
            f"finding-{index}",
            per_row=True,
        )
    lines = detail.lines() if detail is not None else ()
    items = "".join(f"<li><b>{escape(label)}</b> {escape(text)}</li>" for label, text in lines)
    summary = detail.summary() if detail is not None else ""
    return (
        f'<div class="finding"><h3>{escape(finding.code)} {escape(finding.rule)}: '
        f"{escape(finding.node)} ({escape(finding.op_type)}"
        f"{', ' + escape(summary) if summary else ''})</h3>"
        f"<p>{escape(finding.message)}</p>"
        f'<p class="muted">confidence {escape(finding.confidence)}; '
        f"{finding.params_saved:,} fewer params, MACs change {escape(str(finding.macs_delta))}"
        f"</p><ul>{items}</ul>{svg}</div>"
    )


def _findings(report: Report) -> str:
    if not report.findings:
        return '<section id="findings"><h2>Findings</h2><p>None.</p></section>'
    legend = htmlsvg.legend([("p", "the layer as is"), ("m", "the suggested structure")])
    body = "".join(_finding(f, i) for i, f in enumerate(report.findings))
    return (
        f'<section id="findings"><h2>Findings ({len(report.findings)})</h2>{legend}{body}</section>'
    )


def _layer_table(report: Report, numbers: _Numbers) -> tuple[str, str]:
    aliases = Aliases()
    rows = []
    for index, layer in enumerate(report.layers):
        shape = layer.output_shapes[0] if layer.output_shapes else None
        exact = layer.macs.value
        text = _num(exact) if exact is not None else poly_text(aliases.poly(layer.macs))
        rows.append(
            [
                index,
                layer.name,
                layer.qualified_op,
                aliases.shape(shape),
                layer.params,
                text,
                str(layer.macs),
                numbers.value(layer.macs),
            ]
        )
    columns = [
        {"title": "#", "sort": 0, "num": True},
        {"title": "Layer", "sort": 1, "num": False},
        {"title": "Op", "sort": 2, "num": False},
        {"title": "Output shape", "sort": 3, "num": False},
        {"title": "Params", "sort": 4, "num": True},
        {"title": "MACs", "sort": 5, "num": False},
        {"title": "MACs" + numbers.label, "sort": 7, "num": True},
    ]
    data = {"columns": columns, "rows": rows, "page": PAGE_ROWS}
    head = "".join(
        f'<th class="{"n" if c["num"] else ""}" title="click to sort">{escape(str(c["title"]))}'
        "</th>"
        for c in columns
    )
    legend = ""
    if aliases.legend:
        items = "; ".join(f"{escape(a)} = {escape(t)}" for a, t in aliases.legend)
        legend = f'<p class="muted">Dims: {items}</p>'
    html = (
        '<section id="layers-section"><h2>Layers</h2>'
        '<div class="pager"><input type="search" id="filter" placeholder="filter by name or op">'
        '<button id="prev">&larr;</button><button id="next">&rarr;</button>'
        '<span id="page-info" class="muted"></span></div>'
        f'<table id="layers"><thead><tr>{head}</tr></thead><tbody id="layer-body"></tbody></table>'
        f"{legend}"
        '<p class="muted">Click a column to sort; hover a MACs cell for its exact formula.</p>'
        f'<script type="application/json" id="layer-data">{script_json(data)}</script>'
        "</section>"
    )
    return html, SCRIPT


def _notes(report: Report) -> str:
    items = [("Notes", report.notes), ("Warnings", report.warnings)]
    items.append(("Policy violations", tuple(v.message for v in report.violations)))
    out = []
    for title, lines in items:
        if lines:
            lis = "".join(f"<li>{escape(line)}</li>" for line in lines)
            out.append(f'<section class="warn"><h2>{escape(title)}</h2><ul>{lis}</ul></section>')
    return "".join(out)


@add_reporter("html", "one self-contained HTML page: summary, charts, sortable layer table")
def render_html(report: Report) -> str:
    numbers = _Numbers(report)
    info = report.model
    table, script = _layer_table(report, numbers)
    sections = [
        _summary(report, numbers),
        _module_chart(report, numbers),
        _findings(report),
        _notes(report),
        table,
    ]
    subtitle = f"{report.path} · ir {info.ir_version} · producer {info.producer or '?'}"
    return page(f"onnx-audit: {report.path}", subtitle, sections, script)


def render_html_diff(diff: DiffReport) -> str:
    """`onnx-audit diff OLD NEW --format html`: totals and per-module bars, before and after."""
    old, new = diff.old, diff.new
    rows = [
        ("params", old.totals.params, new.totals.params),
        ("trainable", old.totals.trainable, new.totals.trainable),
        ("stored bytes", old.totals.stored_bytes, new.totals.stored_bytes),
    ]
    body = "".join(
        f"<tr><td>{k}</td><td class=n>{_num(a)}</td><td class=n>{_num(b)}</td>"
        f"<td class=n>{b - a:+,}</td></tr>"
        for k, a, b in rows
    )
    old_macs, new_macs = (
        _num(r.totals.macs.value)
        if r.totals.macs.value is not None
        else _Numbers(r).formula(r.totals.macs)
        for r in (old, new)
    )
    body += (
        f'<tr><td>MACs</td><td class="n wrap">{escape(old_macs)}</td>'
        f'<td class="n wrap">{escape(new_macs)}</td><td></td></tr>'
    )
    totals = (
        '<section id="summary"><h2>Totals</h2><table><thead><tr><th></th><th class=n>old</th>'
        f"<th class=n>new</th><th class=n>delta</th></tr></thead><tbody>{body}</tbody></table>"
        "</section>"
    )
    before = _top_modules(old)
    after = _top_modules(new)
    names = list(dict.fromkeys([*before, *after]))[:CHART_BARS]
    a_vals = [float(before.get(n, 0)) for n in names]
    b_vals = [float(after.get(n, 0)) for n in names]
    top = max([*a_vals, *b_vals, 1.0])
    svg = htmlsvg.bars(
        names,
        [
            ("old", "before", [*a_vals, top], [_short(v) for v in a_vals]),
            ("p", "after", [*b_vals, top], [_short(v) for v in b_vals]),
        ],
        "module-chart",
    )
    chart = (
        '<section id="modules"><h2>Parameters per top-level module, before and after</h2>'
        + htmlsvg.legend([("old", "before"), ("p", "after")])
        + svg
        + "</section>"
    )
    changed = [d for d in diff.layers if d.status != "same"]
    lines = "".join(
        f"<tr><td>{escape(d.status)}</td><td>{escape(d.old_name or '-')}</td>"
        f"<td>{escape(d.new_name or '-')}</td><td>{escape(d.op_type)}</td>"
        f"<td class=n>{_num(d.old_params)}</td><td class=n>{_num(d.new_params)}</td>"
        f"<td class=n>{d.delta:+,}</td></tr>"
        for d in changed[:5000]
    )
    layers = (
        f"<section><h2>Changed layers ({len(changed):,})</h2><table><thead><tr><th>status</th>"
        "<th>old</th><th>new</th><th>op</th><th class=n>old params</th>"
        f"<th class=n>new params</th><th class=n>delta</th></tr></thead><tbody>{lines}"
        "</tbody></table></section>"
    )
    finds = [
        ("New findings", diff.new_findings),
        ("Fixed findings", diff.fixed_findings),
    ]
    found = "".join(
        f'<section id="findings"><h2>{title} ({len(items)})</h2>'
        + "".join(_finding(f, i) for i, f in enumerate(items))
        + "</section>"
        for title, items in finds
    )
    return page(
        f"onnx-audit diff: {old.path} -> {new.path}",
        f"{old.path} -> {new.path}",
        [totals, chart, found, layers],
    )


def _top_modules(report: Report) -> dict[str, int]:
    root = modtree.build(report.layers)
    out: dict[str, int] = {}
    for name, child in root.children.items():
        out[name] = child.params
    for index in root.layers:
        layer = report.layers[index]
        out[layer.name] = out.get(layer.name, 0) + layer.params
    return out


__all__ = ["render_html", "render_html_diff"]
