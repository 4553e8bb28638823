"""The HTML report: one self-contained page (inline CSS, JS and SVG; no external assets).

The summary (cards, per-finding counts, the weekly expiry chart) is static HTML. The PATs travel
as JSON in an inert ``<script type="application/json">`` block; a small inline script filters,
sorts and draws the table one page at a time, so a 50,000-PAT report opens in seconds. Values are
inserted with ``textContent``, never as markup, and the JSON is escaped so nothing in it can close
the block: PAT owners choose their display names.

:func:`render_html` is a pure function returning the whole page. For scans too large to hold in
memory the page also comes in parts: :func:`html_head` (needs the summary), :func:`row_json`
(one PAT, renderable while the scan streams; join them with :data:`ROW_SEPARATOR`) and
:func:`html_tail`, so the CLI can spool rows to disk and never hold them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from patwarden.inventory.export import iso
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.html_assets import CSP, CSS, JS
from patwarden.inventory.model import FindingKind, InventoryRow, PatStatus, Severity
from patwarden.inventory.summary import InventorySummary, WeekBucket

# (sort key used by the page's script, header label)
_COLUMNS = (
    ("severity", "Severity"),
    ("kinds", "Findings"),
    ("org", "Organization"),
    ("owner", "Owner"),
    ("name", "PAT"),
    ("scopes", "Scopes"),
    ("validTo", "Expires"),
    ("lifetime", "Lifetime (days)"),
    ("status", "Status"),
)
PAGE_SIZE = 100
ROW_SEPARATOR = ",\n"
# JSON inside <script> must not contain "</script" or "<!--": escape the characters that could.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})

# Chart geometry (SVG user units).
_W, _H, _LEFT, _BOTTOM, _TOP = 760, 240, 40, 36, 22


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _date(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value else ""


def _card(label: str, value: int, css: str = "") -> str:
    cls = f"card {css}".strip()
    return (
        f'<div class="{cls}" data-card="{_e(label)}"><div class="n">{value}</div>'
        f'<div class="l">{_e(label)}</div></div>'
    )


def _cards(summary: InventorySummary) -> str:
    parts = [
        _card("PATs", summary.total_pats),
        _card("Users scanned", summary.users_scanned),
        _card("PATs with findings", summary.pats_with_findings),
    ]
    parts += [
        _card(sev.label, summary.by_severity.get(sev, 0), f"sev-{sev.label}")
        for sev in sorted(Severity, reverse=True)
    ]
    return '<section class="cards" aria-label="Summary">' + "".join(parts) + "</section>"


def _kind_buttons(summary: InventorySummary) -> str:
    buttons = "".join(
        f'<button type="button" data-kind="{k.value}" aria-pressed="false">{_e(k.value)} '
        f'<b data-kind-count="{k.value}">{summary.by_kind.get(k, 0)}</b></button>'
        for k in FindingKind
    )
    return f'<div class="kinds" aria-label="Findings by kind">{buttons}</div>'


def expiry_chart(weeks: Sequence[WeekBucket]) -> str:
    """Return an inline SVG bar chart of PATs expiring per week (one ``g.bar`` per week)."""
    top = max((w.count for w in weeks), default=0) or 1
    slot = (_W - _LEFT) / max(len(weeks), 1)
    plot_h = _H - _BOTTOM - _TOP
    bars = []
    for i, week in enumerate(weeks):
        height = plot_h * week.count / top
        x = _LEFT + i * slot + slot * 0.15
        y = _TOP + plot_h - height
        label = week.start.astimezone(UTC).strftime("%m-%d")
        title = f"{week.count} PAT(s) expire {_date(week.start)} to {_date(week.end)}"
        bars.append(
            f'<g class="bar" data-week-start="{_date(week.start)}" data-count="{week.count}">'
            f"<title>{_e(title)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}"/>'
            f'<text class="count" x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" '
            f'text-anchor="middle">{week.count}</text>'
            f'<text x="{x + slot * 0.35:.1f}" y="{_H - _BOTTOM + 16}" '
            f'text-anchor="middle">{label}</text></g>'
        )
    axis = (
        f'<line x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W}" y2="{_H - _BOTTOM}" stroke="#9aa3b2"/>'
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{top}</text>'
        f'<text x="{_LEFT - 6}" y="{_H - _BOTTOM}" text-anchor="end">0</text>'
        f'<text x="{_LEFT}" y="{_H - 4}">week starting (month-day, UTC)</text>'
    )
    return (
        f'<svg id="expiry-chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        'aria-label="Active PATs expiring per week over the next 90 days" '
        'xmlns="http://www.w3.org/2000/svg">' + axis + "".join(bars) + "</svg>"
    )


def _filters() -> str:
    severities = "".join(
        f'<option value="{int(s)}">{s.label} or worse</option>' for s in sorted(Severity)
    )
    kinds = "".join(f'<option value="{k.value}">{k.value}</option>' for k in FindingKind)
    statuses = "".join(f'<option value="{s.value}">{s.value}</option>' for s in PatStatus)
    return (
        '<div class="filters">'
        '<input id="filter-text" type="search" placeholder="Filter by owner, PAT, scope, id…" '
        'aria-label="Filter text">'
        '<label>Severity <select id="filter-severity"><option value="-1">any (incl. none)'
        f"</option>{severities}</select></label>"
        f'<label>Finding <select id="filter-kind"><option value="">any</option>{kinds}'
        "</select></label>"
        f'<label>Status <select id="filter-status"><option value="">any</option>{statuses}'
        "</select></label>"
        '<label><input id="filter-managed" type="checkbox"> managed by patwarden only</label>'
        "</div>"
    )


def _pager() -> str:
    sizes = "".join(
        f'<option value="{n}"{" selected" if n == PAGE_SIZE else ""}>{n} per page</option>'
        for n in (50, 100, 500, 1000)
    )
    return (
        '<div class="pager"><button type="button" id="page-prev">&larr; previous</button> '
        '<span id="page-info"></span> '
        '<button type="button" id="page-next">next &rarr;</button> '
        f'<select id="page-size" aria-label="Rows per page">{sizes}</select></div>'
    )


def html_head(
    *,
    summary: InventorySummary,
    rules: FindingRules,
    problems: Sequence[str] = (),
    title: str = "Azure DevOps PAT inventory",
) -> str:
    """Return the page up to and including the opening ``[`` of the JSON data block."""
    orgs = ", ".join(summary.organizations) or "(none)"
    problem_html = ""
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        problem_html = (
            '<section class="problems"><h2>Scan problems (the report is incomplete)</h2>'
            f"<ul>{items}</ul></section>"
        )
    header_cells = "".join(
        f'<th scope="col" tabindex="0" data-key="{key}">{_e(label)}</th>' for key, label in _COLUMNS
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>"
        f'<div class="meta">Organizations: {_e(orgs)} · generated {_e(iso(summary.generated_at))}'
        f" · expiring = within {rules.expiring_within.days} days · long-lived = over "
        f"{rules.max_lifetime.days} days</div></header><main>"
        f"{_cards(summary)}{problem_html}"
        f"<section><h2>Findings by kind</h2>{_kind_buttons(summary)}</section>"
        '<section class="chart"><h2>Active PATs expiring per week, next 90 days</h2>'
        f"{expiry_chart(summary.expiry_weeks)}</section>"
        f'<section><h2>PATs: <span id="shown-count">{summary.total_pats}</span> of '
        f"{summary.total_pats} match</h2>{_filters()}{_pager()}"
        f'<table id="pats"><thead><tr>{header_cells}</tr></thead><tbody></tbody></table>'
        "<noscript><p>The table needs JavaScript; the JSON and CSV exports hold the same data."
        "</p></noscript></section></main>"
        '<script id="inventory-data" type="application/json">[\n'
    )


def row_json(row: InventoryRow) -> str:
    """Return one PAT as the JSON object the page's script draws (safe inside ``<script>``)."""
    pat = row.pat
    worst = row.max_severity
    lifetime = (pat.valid_to - pat.valid_from).days if pat.valid_from and pat.valid_to else None
    data = {
        "id": pat.authorization_id,
        "org": pat.organization,
        "owner": pat.owner.name,
        "ownerStatus": pat.owner.status.value,
        "name": pat.display_name,
        "scopes": " ".join(pat.scopes),
        "validTo": iso(pat.valid_to),
        "lifetime": lifetime,
        "status": row.status.value,
        "managed": pat.managed,
        "severity": -1 if worst is None else int(worst),
        "findings": [[f.kind.value, f.severity.label, f.summary, f.fix] for f in row.findings],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_SAFE)


def html_tail() -> str:
    """Return the page after the rows: the end of the data block and the inline script."""
    return f"\n]</script><script>{JS}</script></body></html>\n"


def render_html(
    *,
    summary: InventorySummary,
    rows: Iterable[InventoryRow],
    rules: FindingRules,
    problems: Sequence[str] = (),
) -> str:
    """Return the whole report as one string (a pure function of its arguments)."""
    body = ROW_SEPARATOR.join(row_json(row) for row in rows)
    return html_head(summary=summary, rules=rules, problems=problems) + body + html_tail()
