"""The inline stylesheet and script of the HTML report (no external assets, no CDN)."""

from __future__ import annotations

# Content-Security-Policy of the report: nothing may load from anywhere; only the inline style
# and script below run. A display name like "<img src=//evil>" is escaped anyway; this is the
# second fence.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--muted:#5b6577;--line:#dde1e8;
--critical:#8b0f1e;--high:#c4321c;--medium:#c77700;--low:#2f6db5;--info:#6b7686;--ok:#2e7d4f}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--ink)}
header{padding:20px 28px 8px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 10px}
.meta{color:var(--muted)}
main{padding:0 28px 28px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px;
margin:14px 0}
.cards{display:flex;flex-wrap:wrap;gap:10px;background:none;border:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;
min-width:120px}
.card .n{font-size:24px;font-weight:650}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.sev-critical .n{color:var(--critical)}.card.sev-high .n{color:var(--high)}
.card.sev-medium .n{color:var(--medium)}.card.sev-low .n{color:var(--low)}
.card.sev-info .n{color:var(--info)}
.kinds{display:flex;flex-wrap:wrap;gap:6px;margin-top:10px}
.kinds button{border:1px solid var(--line);background:var(--card);border-radius:14px;
padding:3px 10px;cursor:pointer;font:inherit}
.kinds button[aria-pressed=true]{background:var(--ink);color:#fff}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;
color:#fff;white-space:nowrap}
.badge.sev-critical{background:var(--critical)}.badge.sev-high{background:var(--high)}
.badge.sev-medium{background:var(--medium)}.badge.sev-low{background:var(--low)}
.badge.sev-info{background:var(--info)}.badge.sev-none{background:var(--ok)}
.badge.managed{background:#e8eefc;color:#23408e}
.chart svg{max-width:100%;height:auto}
.chart .bar rect{fill:#2f6db5}.chart .bar:hover rect{fill:#1d4f8f}
.chart text{font-size:11px;fill:var(--muted)}.chart .count{fill:var(--ink);font-weight:600}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin-bottom:10px}
.filters input[type=search]{min-width:260px}
.filters input,.filters select{font:inherit;padding:4px 6px;border:1px solid var(--line);
border-radius:4px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{position:sticky;top:0;background:var(--card);cursor:pointer;user-select:none;
white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.scopes{font-family:ui-monospace,monospace;font-size:12px;min-width:150px;max-width:260px;
overflow-wrap:break-word}
td.date{white-space:nowrap}
td ul{margin:0;padding-left:0;list-style:none}
td li+li{margin-top:4px}
.fix{color:var(--muted);font-size:12px}
tr[hidden]{display:none}
.problems li{color:var(--high)}
"""

# Sorting compares data-sort values (numbers when both parse as numbers); filtering hides rows.
JS = """
(function(){
  "use strict";
  var table = document.getElementById("pats");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var search = document.getElementById("filter-text");
  var sev = document.getElementById("filter-severity");
  var kind = document.getElementById("filter-kind");
  var status = document.getElementById("filter-status");
  var managed = document.getElementById("filter-managed");
  var shown = document.getElementById("shown-count");
  function hasKind(row, k){
    return (" " + row.getAttribute("data-kinds") + " ").indexOf(" " + k + " ") >= 0;
  }
  function cell(row, col){ return row.cells[col].getAttribute("data-sort") || ""; }
  function compare(a, b){
    var x = parseFloat(a), y = parseFloat(b);
    if (!isNaN(x) && !isNaN(y) && String(x) === a && String(y) === b) { return x - y; }
    return a.localeCompare(b);
  }
  function sortBy(th, ascending){
    var col = th.cellIndex;
    var asc = ascending === undefined ? th.getAttribute("aria-sort") !== "ascending" : ascending;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(h){
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    rows.sort(function(r1, r2){
      var c = compare(cell(r1, col), cell(r2, col));
      return asc ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  function apply(){
    var text = search.value.trim().toLowerCase();
    var minSev = parseInt(sev.value, 10);
    var n = 0;
    rows.forEach(function(r){
      var ok = (!text || r.getAttribute("data-text").indexOf(text) >= 0)
        && parseInt(r.getAttribute("data-severity"), 10) >= minSev
        && (!kind.value || hasKind(r, kind.value))
        && (!status.value || r.getAttribute("data-status") === status.value)
        && (!managed.checked || r.getAttribute("data-managed") === "true");
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = String(n);
    Array.prototype.forEach.call(document.querySelectorAll(".kinds button"), function(b){
      b.setAttribute("aria-pressed", b.getAttribute("data-kind") === kind.value ? "true" : "false");
    });
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th){
    th.addEventListener("click", function(){ sortBy(th); });
    th.addEventListener("keydown", function(e){ if (e.key === "Enter") { sortBy(th); } });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".kinds button"), function(b){
    b.addEventListener("click", function(){
      var k = b.getAttribute("data-kind");
      kind.value = kind.value === k ? "" : k;
      apply();
    });
  });
  [search, sev, kind, status, managed].forEach(function(el){
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  sortBy(table.tHead.rows[0].cells[0], false);  // worst first
  apply();
})();
"""
