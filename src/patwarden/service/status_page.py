"""``/``: the read-only status page — every token, every identity's re-login countdown, the
recent audit events, problems first with their fix.

Self-contained HTML: one inline style sheet allowed by its hash in a strict
Content-Security-Policy (no script, no external asset, no form, no frame), every value escaped,
no secret (PATs by authorization id only). Works without JavaScript: there is none.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from html import escape

from patwarden.service.snapshot import IdentityView, Snapshot, TokenView

__all__ = ["CSP", "STYLE", "countdown", "render_status_page"]

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9cfdb}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:0 0 18px;
padding:10px 16px}
h2{font-size:16px;margin:6px 0 10px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{font-weight:600;color:#4a5366;background:#fafbfc}
code{font:12px ui-monospace,monospace}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.ok{background:#e3f5e8;color:#1b6b34}.due,.no_pat{background:#e6f0fd;color:#1f4f99}
.failed,.stranded,.expiring,.bad{background:#fde7e7;color:#a11b1b}
.drift,.warn{background:#fff4dc;color:#8a5a00}
.problems li{margin:0 0 8px}.fix{color:#4a5366}.muted{color:#6b7385}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; "
    "img-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def countdown(at: datetime | None, now: datetime) -> str:
    """``in 3 d 4 h``, ``in 12 min``, ``2 h ago``; ``—`` when unknown."""
    if at is None:
        return "—"
    left = at - now
    text = _span(abs(left))
    return f"in {text}" if left >= timedelta(0) else f"{text} ago"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


def _when(at: datetime | None) -> str:
    return escape(at.strftime("%Y-%m-%d %H:%M:%S UTC")) if at else "—"


def _badge(text: str, css: str) -> str:
    return f'<span class="badge {escape(css)}">{escape(text)}</span>'


def _problems(snap: Snapshot) -> str:
    items = []
    for token in snap.tokens:
        if token.problem and token.status not in ("ok", "due", "no_pat"):
            fix = f'<div class="fix">Fix: {escape(token.fix)}</div>' if token.fix else ""
            items.append(
                f"<li>{_badge(token.status, token.status)} <b>{escape(token.name)}</b>: "
                f"{escape(token.problem)}{fix}</li>"
            )
    for identity in snap.identities:
        if not identity.ok:
            fix = f'<div class="fix">Fix: {escape(identity.fix)}</div>' if identity.fix else ""
            items.append(
                f"<li>{_badge('sign-in', 'bad')} <b>identity {escape(identity.name)}</b>: "
                f"{escape(identity.detail)}{fix}</li>"
            )
    for problem in ([f"state: {snap.state_error}"] if snap.state_error else []) + (
        [f"config reload failed (the previous config is in force): {snap.config_error}"]
        if snap.config_error
        else []
    ):
        items.append(f"<li>{_badge('service', 'bad')} {escape(problem)}</li>")
    if not items:
        return (
            '<section id="problems"><h2>Problems</h2>'
            "<p>None. Every token is in its desired state.</p></section>"
        )
    return (
        '<section id="problems"><h2>Problems</h2><ul class="problems">'
        + "".join(items)
        + "</ul></section>"
    )


def _token_row(token: TokenView, now: datetime) -> str:
    return (
        f'<tr id="token-{escape(token.name)}"><td><b>{escape(token.name)}</b><br>'
        f'<span class="muted">{escape(token.organization)}</span></td>'
        f"<td>{_badge(token.status, token.status)}</td>"
        f"<td><code>{escape(token.current_authorization_id or '—')}</code><br>"
        f'<span class="muted">issued {countdown(token.issued_at, now)}</span></td>'
        f'<td>{_when(token.valid_to)}<br><span class="muted">'
        f"{countdown(token.valid_to, now)}</span></td>"
        f'<td>{_when(token.next_rotation)}<br><span class="muted">'
        f"{countdown(token.next_rotation, now)}</span></td>"
        f"<td>{escape(token.last_outcome or '—')}</td></tr>"
    )


def _identity_row(identity: IdentityView, now: datetime) -> str:
    css = "ok" if identity.ok else "bad"
    status = (
        "signed in" if identity.ok else ("re-login needed" if identity.relogin_now else "failing")
    )
    return (
        f'<tr id="identity-{escape(identity.name)}"><td><b>{escape(identity.name)}</b></td>'
        f"<td>{escape(identity.kind)}</td><td>{escape(', '.join(identity.roles))}</td>"
        f"<td>{_badge(status, css)}</td>"
        f"<td>{_relogin(identity, now)}</td>"
        f"<td>{escape(identity.detail)}</td></tr>"
    )


def _relogin(identity: IdentityView, now: datetime) -> str:
    if identity.relogin_deadline is None:
        return (
            "—" if identity.kind == "user" else '<span class="muted">no interactive sign-in</span>'
        )
    return (
        f'{_when(identity.relogin_deadline)}<br><span class="muted">re-login '
        f"{countdown(identity.relogin_deadline, now)}</span>"
    )


def render_status_page(snap: Snapshot) -> str:
    """The whole page for *snap* (read-only, no script)."""
    now = snap.at
    tokens = "".join(_token_row(t, now) for t in snap.tokens) or (
        '<tr><td colspan="6">No tokens are configured.</td></tr>'
    )
    identities = "".join(_identity_row(i, now) for i in snap.identities) or (
        '<tr><td colspan="6">No sign-in checked yet.</td></tr>'
    )
    audit = (
        "".join(
            f"<tr><td>{_when(a.at)}</td><td>{escape(a.kind)}</td><td>{escape(a.token or '—')}</td>"
            f"<td><code>{escape(a.authorization_id or '')}</code></td>"
            f"<td>{escape(a.detail)}</td></tr>"
            for a in snap.audit
        )
        or '<tr><td colspan="5">No audit events yet.</td></tr>'
    )
    role = snap.role + (f" ({snap.leader} leads)" if snap.leader else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>patwarden status</title><style>{STYLE}</style></head>
<body><header><h1>patwarden</h1>
<p>{escape(role)} · as of {_when(snap.at)} · last check {_when(snap.last_pass_at)} ·
next check {countdown(snap.next_pass_at, now)}</p></header><main>
{_problems(snap)}
<section id="tokens"><h2>Tokens</h2><table><thead><tr><th>token</th><th>state</th>
<th>current PAT</th><th>expires</th><th>next rotation</th><th>last run</th></tr></thead>
<tbody>{tokens}</tbody></table></section>
<section id="identities"><h2>Identities</h2><table><thead><tr><th>identity</th><th>kind</th>
<th>roles</th><th>sign-in</th><th>re-login deadline</th><th>detail</th></tr></thead>
<tbody>{identities}</tbody></table></section>
<section id="audit"><h2>Recent audit events</h2><table><thead><tr><th>at</th><th>event</th>
<th>token</th><th>PAT</th><th>detail</th></tr></thead><tbody>{audit}</tbody></table></section>
</main></body></html>
"""
