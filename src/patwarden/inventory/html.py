"""The HTML report: one self-contained page (inline CSS, JS and SVG; no external assets).

:func:`render_html` is a pure function returning the whole page. For scans too large to hold in
memory the page is also available in three parts — :func:`html_head` (needs the summary),
:func:`html_row` (one ``<tr>`` per PAT, renderable while the scan streams) and :func:`html_tail` —
so the CLI can spool rows to disk and never hold them all. Every value that came from Azure DevOps
(display names, owner names, scopes) is escaped: PAT owners choose their display names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from patwarden.inventory.export import iso
from patwarden.inventory.findings import FindingRules
from patwarden.inventory.html_assets import CSP, CSS, JS
from patwarden.inventory.model import FindingKind, InventoryRow, PatStatus, Severity
from patwarden.inventory.summary import InventorySummary, WeekBucket

_COLUMNS = (
    "Severity",
    "Findings",
    "Organization",
    "Owner",
    "PAT",
    "Scopes",
    "Expires",
    "Lifetime (days)",
    "Status",
)

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


def html_head(
    *,
    summary: InventorySummary,
    rules: FindingRules,
    problems: Sequence[str] = (),
    title: str = "Azure DevOps PAT inventory",
) -> str:
    """Return the page up to and including the table's ``<tbody>`` opening tag."""
    orgs = ", ".join(summary.organizations) or "(none)"
    problem_html = ""
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        problem_html = (
            '<section class="problems"><h2>Scan problems (the report is incomplete)</h2>'
            f"<ul>{items}</ul></section>"
        )
    header_cells = "".join(f'<th scope="col" tabindex="0">{_e(c)}</th>' for c in _COLUMNS)
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
        f'<section><h2>PATs (<span id="shown-count">{summary.total_pats}</span> of '
        f"{summary.total_pats} shown)</h2>{_filters()}"
        f'<table id="pats"><thead><tr>{header_cells}</tr></thead><tbody>\n'
    )


def _findings_cell(row: InventoryRow) -> str:
    if not row.findings:
        return '<td data-sort="">—</td>'
    items = "".join(
        f'<li><span class="badge sev-{f.severity.label}">{_e(f.kind.value)}</span> '
        f'{_e(f.summary)}<div class="fix">Fix: {_e(f.fix)}</div></li>'
        for f in row.findings
    )
    return f'<td data-sort="{_e(" ".join(row.kinds))}"><ul>{items}</ul></td>'


def html_row(row: InventoryRow) -> str:
    """Return the ``<tr>`` of one PAT (its ``data-*`` attributes drive sorting and filtering)."""
    pat = row.pat
    worst = row.max_severity
    rank = -1 if worst is None else int(worst)
    sev_label = worst.label if worst is not None else "none"
    lifetime = (pat.valid_to - pat.valid_from).days if pat.valid_from and pat.valid_to else None
    managed = '<span class="badge managed">managed</span>' if pat.managed else ""
    owner_note = "" if pat.owner.status.value == "active" else f" ({_e(pat.owner.status.value)})"
    searchable = " ".join(
        [pat.owner.name, pat.display_name, pat.authorization_id, pat.organization, *pat.scopes]
    ).lower()
    return (
        f'<tr data-severity="{rank}" data-kinds="{_e(" ".join(row.kinds))}" '
        f'data-status="{row.status.value}" data-managed="{"true" if pat.managed else "false"}" '
        f'data-id="{_e(pat.authorization_id)}" data-text="{_e(searchable)}">'
        f'<td data-sort="{rank}"><span class="badge sev-{sev_label}">{sev_label}</span></td>'
        f"{_findings_cell(row)}"
        f'<td data-sort="{_e(pat.organization)}">{_e(pat.organization)}</td>'
        f'<td data-sort="{_e(pat.owner.name.lower())}">{_e(pat.owner.name)}{owner_note}</td>'
        f'<td data-sort="{_e(pat.display_name.lower())}">{_e(pat.display_name)} {managed}'
        f'<div class="fix">{_e(pat.authorization_id)}</div></td>'
        f'<td class="scopes" data-sort="{_e(" ".join(pat.scopes))}">'
        f"{_e(' '.join(pat.scopes))}</td>"
        f'<td class="date" data-sort="{_e(iso(pat.valid_to) or "")}">{_date(pat.valid_to)}</td>'
        f'<td data-sort="{"" if lifetime is None else lifetime}">'
        f"{'' if lifetime is None else lifetime}</td>"
        f'<td data-sort="{row.status.value}">{row.status.value}</td>'
        "</tr>\n"
    )


def html_tail() -> str:
    """Return the page after the table rows: closing tags and the inline script."""
    return f"</tbody></table></section></main><script>{JS}</script></body></html>\n"


def render_html(
    *,
    summary: InventorySummary,
    rows: Iterable[InventoryRow],
    rules: FindingRules,
    problems: Sequence[str] = (),
) -> str:
    """Return the whole report as one string (a pure function of its arguments)."""
    body = "".join(html_row(row) for row in rows)
    return html_head(summary=summary, rules=rules, problems=problems) + body + html_tail()
