"""`--format html`: one self-contained page (inline CSS, SVG and script; nothing fetched).

The summary, a bar chart of parameters and MACs per module, each finding's trade drawn side by
side, and a sortable, filterable per-layer table. The table's rows travel as compact JSON and are
drawn a page at a time, so a 50,000-layer model writes a page of a few MB that opens at once.
Charts are SVG written here, so they show even with scripts off.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from analyzer.core.results import DiffReport, Finding, Report
from analyzer.core.symbolic import Poly
from analyzer.report.reporters import add_reporter, modtree
from analyzer.report.reporters.aliases import Aliases, poly_text
from analyzer.report.reporters.table import human_bytes
from analyzer.report.reporters.tableview import MAX_FORMULA_TERMS

CHART_BARS = 40
"""Modules in the chart: the largest by parameters, the rest summed in one bar."""
PAGE_ROWS = 100

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{font-size:18px;margin:0}
header .sub{color:#b8c0d0;font-size:12px;word-break:break-all}
main{padding:16px 24px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px;
margin-bottom:16px}
h2{font-size:15px;margin:0 0 8px}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}.kv dt{color:#5a6375}
.kv dd{margin:0;font-variant-numeric:tabular-nums;word-break:break-word}
.legend span{display:inline-block;margin-right:16px}.sw{display:inline-block;width:10px;
height:10px;margin-right:4px;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#1d2330}
.p{fill:#3b6fd8}.m{fill:#e8833a}.old{fill:#9aa3b5}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{padding:3px 8px;border-bottom:1px solid #edf0f4;text-align:left;white-space:nowrap}
th{cursor:pointer;background:#f0f2f6;position:sticky;top:0;user-select:none}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.name{max-width:420px;overflow:hidden;text-overflow:ellipsis}
td.wrap{white-space:normal;word-break:break-word;max-width:420px}
.finding{border-left:4px solid #e8833a;padding:4px 12px;margin:8px 0}
.finding h3{font-size:13px;margin:0 0 4px}.muted{color:#5a6375;font-size:12px}
.pager{margin:8px 0;display:flex;gap:8px;align-items:center}
input[type=search]{padding:4px 8px;width:280px}
.warn li{color:#7a4b00}
"""

SCRIPT = """
(function(){
var data=JSON.parse(document.getElementById('layer-data').textContent);
var rows=data.rows, cols=data.columns, shown=rows, key=-1, dir=1, page=0, per=data.page;
var body=document.getElementById('layer-body'), info=document.getElementById('page-info');
function esc(s){return String(s).replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;',
'>':'&gt;','"':'&quot;'}[c];});}
function draw(){
  var pages=Math.max(1,Math.ceil(shown.length/per)); if(page>=pages)page=pages-1; if(page<0)page=0;
  var out=[], end=Math.min(shown.length,(page+1)*per);
  for(var i=page*per;i<end;i++){var r=shown[i];out.push('<tr><td class="n">'+(r[0]+1)+
  '</td><td class="name" title="'+esc(r[1])+'">'+esc(r[1])+'</td><td>'+esc(r[2])+'</td><td>'+
  esc(r[3])+'</td><td class="n">'+r[4].toLocaleString('en-US')+'</td><td title="'+
  esc(r[6])+'">'+esc(r[5])+'</td><td class="n">'+r[7].toLocaleString('en-US')+'</td></tr>');}
  body.innerHTML=out.join('');
  info.textContent='rows '+(shown.length?page*per+1:0)+'-'+end+' of '+
  shown.length.toLocaleString('en-US')+' (page '+(page+1)+' of '+pages+')';
}
function sortBy(k){
  if(key===k)dir=-dir;else{key=k;dir=(cols[k].num?-1:1);}
  var idx=cols[k].sort;
  shown=shown.slice().sort(function(a,b){var x=a[idx],y=b[idx];
    return (x<y?-1:x>y?1:a[0]-b[0])*dir;});
  page=0;draw();
}
var ths=document.querySelectorAll('#layers th');
for(var i=0;i<ths.length;i++){(function(k){
  ths[k].addEventListener('click',function(){sortBy(k);});})(i);}
document.getElementById('filter').addEventListener('input',function(e){
  var q=e.target.value.toLowerCase();
  shown=q?rows.filter(function(r){return (r[1]+' '+r[2]).toLowerCase().indexOf(q)>=0;}):rows;
  key=-1;page=0;draw();});
document.getElementById('prev').addEventListener('click',function(){page--;draw();});
document.getElementById('next').addEventListener('click',function(){page++;draw();});
draw();
document.body.setAttribute('data-ready','1');
})();
"""


def _script_json(data: object) -> str:
    """JSON safe inside <script>: no `</`, no line separators a parser might trip on."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _num(value: int) -> str:
    return f"{value:,}"


def _short(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:,.0f}"


def _page(title: str, subtitle: str, sections: Sequence[str], script: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><div class="sub">{escape(subtitle)}</div></header>'
        "<main>"
        + "".join(sections)
        + "</main>"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>\n"
    )


def _bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float], Sequence[str]]],
    chart_id: str,
    per_row: bool = False,
) -> str:
    """Horizontal bars, one group per label; each series scaled to its own largest value, or
    with per_row every bar of a group to the group's largest (one measure, two sides)."""
    label_w, bar_w, bar_h, gap = 260, 360, 12, 6
    group_h = len(series) * bar_h + gap
    height = len(labels) * group_h + 8
    longest = max((len(t) for _, _, _, texts in series for t in texts), default=0)
    total_w = label_w + bar_w + max(90, 7 * longest + 8)  # room for the value after a full bar
    out = [
        f'<svg id="{chart_id}" role="img" width="{total_w}" height="{height}" '
        f'viewBox="0 0 {total_w} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    tops = [max((v for v in values), default=0) or 1 for _, _, values, _ in series]
    for row, label in enumerate(labels):
        y = row * group_h + 4
        shown = label if len(label) <= 40 else label[:18] + "…" + label[-21:]
        out.append(
            f'<text x="{label_w - 6}" y="{y + len(series) * bar_h / 2 + 4:.0f}" '
            f'text-anchor="end"><title>{escape(label)}</title>{escape(shown)}</text>'
        )
        row_top = max(values[row] for _, _, values, _ in series) or 1
        for s, (cls, name, values, texts) in enumerate(series):
            w = bar_w * values[row] / (row_top if per_row else tops[s])
            by = y + s * bar_h
            out.append(
                f'<rect class="{cls} bar" x="{label_w}" y="{by}" width="{max(w, 0.5):.1f}" '
                f'height="{bar_h - 2}"><title>{escape(label)}: {escape(texts[row])} '
                f"{escape(name)}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 3}">{escape(texts[row])}</text>'
            )
    out.append("</svg>")
    return "".join(out)


COLORS = {"p": "#3b6fd8", "m": "#e8833a", "old": "#9aa3b5"}


def _legend(items: Sequence[tuple[str, str]]) -> str:
    spans = "".join(
        f'<span><i class="sw" style="background:{COLORS[c]}"></i>{escape(t)}</span>'
        for c, t in items
    )
    return f'<div class="legend">{spans}</div>'


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


def _module_chart(report: Report, numbers: _Numbers) -> str:
    if not report.layers:
        return '<section id="modules"><h2>Parameters and MACs per module</h2><p>None.</p></section>'
    root = modtree.build(report.layers)
    depth = modtree.auto_depth(root, len(report.layers), limit=CHART_BARS) or 0
    items: list[tuple[str, int, Poly]] = []
    if depth == 0:
        items = [(layer.name, layer.params, layer.macs) for layer in report.layers]
    else:
        for row in modtree.rows(root, depth):
            if row.expanded:
                continue
            if row.layer is not None:
                layer = report.layers[row.layer]
                items.append((layer.name, layer.params, layer.macs))
            elif row.module is not None:
                items.append(("/".join(row.module.path), row.module.params, row.module.macs))
    if len(items) > CHART_BARS:
        ranked = sorted(range(len(items)), key=lambda i: -items[i][1])
        keep = sorted(ranked[: CHART_BARS - 1])
        rest = [items[i] for i in ranked[CHART_BARS - 1 :]]
        rest_item = (
            f"{len(rest):,} more",
            sum(r[1] for r in rest),
            Poly.total(r[2] for r in rest),
        )
        items = [items[i] for i in keep] + [rest_item]
    labels = [name for name, _, _ in items]
    params = [float(p) for _, p, _ in items]
    macs = [float(numbers.value(m)) for _, _, m in items]
    svg = _bars(
        labels,
        [
            ("p", "parameters", params, [_short(v) for v in params]),
            ("m", "MACs", macs, [_short(v) for v in macs]),
        ],
        "module-chart",
    )
    legend = _legend([("p", "parameters"), ("m", f"MACs{numbers.label}")])
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
        svg = _bars(
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
    legend = _legend([("p", "the layer as is"), ("m", "the suggested structure")])
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
        f'<script type="application/json" id="layer-data">{_script_json(data)}</script>'
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
    return _page(f"onnx-audit: {report.path}", subtitle, sections, script)


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
    svg = _bars(
        names,
        [
            ("old", "before", [*a_vals, top], [_short(v) for v in a_vals]),
            ("p", "after", [*b_vals, top], [_short(v) for v in b_vals]),
        ],
        "module-chart",
    )
    chart = (
        '<section id="modules"><h2>Parameters per top-level module, before and after</h2>'
        + _legend([("old", "before"), ("p", "after")])
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
    return _page(
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
