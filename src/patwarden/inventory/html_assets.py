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
.pager{display:flex;gap:10px;align-items:center;margin:8px 0}
.pager button,.pager select{font:inherit;padding:3px 8px}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.scopes{font-family:ui-monospace,monospace;font-size:12px;min-width:150px;max-width:260px;
overflow-wrap:break-word}
td.date{white-space:nowrap}
td ul{margin:0;padding-left:0;list-style:none}
td li+li{margin-top:4px}
.fix{color:var(--muted);font-size:12px}
.problems li{color:var(--high)}
"""

# The table is drawn from the JSON data block, one page at a time; every value goes in through
# textContent. Sorting and filtering work on the whole data set in memory.
JS = """
(function(){
  "use strict";
  var data = JSON.parse(document.getElementById("inventory-data").textContent);
  var table = document.getElementById("pats");
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var search = document.getElementById("filter-text");
  var sev = document.getElementById("filter-severity");
  var kind = document.getElementById("filter-kind");
  var status = document.getElementById("filter-status");
  var managed = document.getElementById("filter-managed");
  var shown = document.getElementById("shown-count");
  var prev = document.getElementById("page-prev");
  var next = document.getElementById("page-next");
  var info = document.getElementById("page-info");
  var size = document.getElementById("page-size");
  data.forEach(function(r){
    r.kinds = r.findings.map(function(f){ return f[0]; }).join(" ");
    r.text = [r.owner, r.name, r.id, r.org, r.scopes].join(" ").toLowerCase();
    r.ownerKey = r.owner.toLowerCase();
    r.nameKey = r.name.toLowerCase();
  });
  var sortKeys = {owner: "ownerKey", name: "nameKey"};
  var view = data.slice();
  var page = 0;
  function value(r, key){ var v = r[sortKeys[key] || key]; return v === null ? "" : v; }
  function compare(a, b){
    if (a === b) { return 0; }
    if (a === "") { return 1; }
    if (b === "") { return -1; }
    return a < b ? -1 : 1;
  }
  function sortBy(key, asc){
    headers.forEach(function(h){
      if (h.getAttribute("data-key") === key) {
        h.setAttribute("aria-sort", asc ? "ascending" : "descending");
      } else {
        h.removeAttribute("aria-sort");
      }
    });
    data.sort(function(r1, r2){
      var c = compare(value(r1, key), value(r2, key));
      if (c === 0 && key !== "validTo") {
        return compare(value(r1, "validTo"), value(r2, "validTo"));
      }
      return asc ? c : -c;
    });
    page = 0;
    apply();
  }
  function el(tag, text, cls){
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }
  function badge(text, cls){ return el("span", text, "badge " + cls); }
  function cell(tr, key, content){
    var td = el("td");
    td.setAttribute("data-key", key);
    (Array.isArray(content) ? content : [content]).forEach(function(c){
      td.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    tr.appendChild(td);
    return td;
  }
  function draw(r){
    var tr = document.createElement("tr");
    tr.dataset.id = r.id;
    tr.dataset.severity = String(r.severity);
    tr.dataset.kinds = r.kinds;
    tr.dataset.status = r.status;
    tr.dataset.managed = r.managed ? "true" : "false";
    var worst = r.findings.length ? r.findings[0][1] : "none";
    cell(tr, "severity", badge(worst, "sev-" + worst));
    if (r.findings.length) {
      var list = el("ul");
      r.findings.forEach(function(f){
        var li = el("li");
        li.appendChild(badge(f[0], "sev-" + f[1]));
        li.appendChild(document.createTextNode(" " + f[2]));
        li.appendChild(el("div", "Fix: " + f[3], "fix"));
        list.appendChild(li);
      });
      cell(tr, "kinds", list);
    } else {
      cell(tr, "kinds", "\u2014");
    }
    cell(tr, "org", r.org);
    cell(tr, "owner", r.ownerStatus === "active" ? r.owner : r.owner + " (" + r.ownerStatus + ")");
    var name = [r.name + " "];
    if (r.managed) { name.push(badge("managed", "managed")); }
    name.push(el("div", r.id, "fix"));
    cell(tr, "name", name);
    cell(tr, "scopes", r.scopes).className = "scopes";
    cell(tr, "validTo", r.validTo ? r.validTo.slice(0, 10) : "").className = "date";
    cell(tr, "lifetime", r.lifetime === null ? "" : String(r.lifetime));
    cell(tr, "status", r.status);
    return tr;
  }
  function hasKind(r, k){ return (" " + r.kinds + " ").indexOf(" " + k + " ") >= 0; }
  function render(){
    var per = parseInt(size.value, 10);
    var pages = Math.max(1, Math.ceil(view.length / per));
    if (page >= pages) { page = pages - 1; }
    var start = page * per;
    var rows = view.slice(start, start + per);
    var fragment = document.createDocumentFragment();
    rows.forEach(function(r){ fragment.appendChild(draw(r)); });
    body.textContent = "";
    body.appendChild(fragment);
    shown.textContent = String(view.length);
    info.textContent = view.length
      ? (start + 1) + "\u2013" + (start + rows.length) + " of " + view.length
      : "no PATs match";
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  function apply(){
    var text = search.value.trim().toLowerCase();
    var minSev = parseInt(sev.value, 10);
    view = data.filter(function(r){
      return (!text || r.text.indexOf(text) >= 0)
        && r.severity >= minSev
        && (!kind.value || hasKind(r, kind.value))
        && (!status.value || r.status === status.value)
        && (!managed.checked || r.managed);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".kinds button"), function(b){
      b.setAttribute("aria-pressed", b.getAttribute("data-kind") === kind.value ? "true" : "false");
    });
    render();
  }
  headers.forEach(function(th){
    function toggle(){
      sortBy(th.getAttribute("data-key"), th.getAttribute("aria-sort") !== "ascending");
    }
    th.addEventListener("click", toggle);
    th.addEventListener("keydown", function(e){ if (e.key === "Enter") { toggle(); } });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".kinds button"), function(b){
    b.addEventListener("click", function(){
      var k = b.getAttribute("data-kind");
      kind.value = kind.value === k ? "" : k;
      page = 0;
      apply();
    });
  });
  [search, sev, kind, status, managed].forEach(function(input){
    input.addEventListener("input", function(){ page = 0; apply(); });
  });
  prev.addEventListener("click", function(){ page -= 1; render(); });
  next.addEventListener("click", function(){ page += 1; render(); });
  size.addEventListener("change", function(){ page = 0; render(); });
  sortBy("severity", false);  // worst first, then soonest expiry
})();
"""
