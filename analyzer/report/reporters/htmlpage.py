"""The HTML page shell: inline CSS, the layer table's script, and the page around sections.

Nothing is fetched: the page's Content-Security-Policy allows only what is inline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

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


def script_json(data: object) -> str:
    """JSON safe inside <script>: no `</`, no line separators a parser might trip on."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def page(title: str, subtitle: str, sections: Sequence[str], script: str = "") -> str:
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
