"""Terminal rendering: totals, worst rows with fixes, revocation summaries, progress."""

from __future__ import annotations

from rich.console import Console

from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.model import Owner, OwnerStatus
from patwarden.inventory.revoke import RevocationOutcome, RevocationReport
from patwarden.inventory.scanner import ScanProgress
from patwarden.inventory.summary import SummaryBuilder
from patwarden.inventory.table import print_inventory, print_revocation, scan_progress
from tests.inventory.factories import NOW, pat

RULES = FindingRules()


def console() -> Console:
    return Console(record=True, width=200, color_system=None)


def test_inventory_report() -> None:
    builder = SummaryBuilder(now=NOW, organizations=("contoso",), top=1)
    for record in (
        pat(is_global=True, display_name="old-global", managed=True),
        pat(owner=Owner(descriptor="aad.b", principal_name="bob@x", status=OwnerStatus.DISABLED)),
        pat(),
    ):
        builder.add(evaluate(record, now=NOW, rules=RULES))
    out = console()
    print_inventory(
        out,
        summary=builder.summary(users_scanned=2),
        worst=builder.worst_rows(),
        problems=["Skipped the PATs of x in contoso: HTTP 500"],
        requests=5,
        seconds=1.25,
    )
    text = out.export_text()
    assert "Scanned 3 PATs of 2 users in contoso (5 requests, 1.2 s); 2 have findings" in text
    assert "1 managed by patwarden" in text
    assert "PATs with findings (1 worst of 2)" in text
    assert "old-global [managed]" in text
    assert "patwarden adopt" in text
    assert "bob@x" not in text  # not among the top 1
    assert "--top N shows more here" in text
    assert "problem: Skipped the PATs of x in contoso: HTTP 500" in text
    # Findings are listed worst first with their counts.
    lines = [line for line in text.splitlines() if "│" in line and "critical" in line]
    assert lines[0].split("│")[0].strip() == "global"


def test_revocation_summaries() -> None:
    row = evaluate(pat(is_global=True), now=NOW, rules=RULES)
    dry = RevocationReport(dry_run=True, selected=1, revoked_examples=[RevocationOutcome(row=row)])
    out = console()
    print_revocation(out, dry)
    assert "Dry run: 1 PAT(s) would be revoked" in out.export_text()
    done = RevocationReport(
        dry_run=False,
        selected=2,
        revoked=1,
        failed=1,
        revoked_examples=[RevocationOutcome(row=row)],
        failures=[RevocationOutcome(row=row, error="HTTP 400: bad id")],
    )
    out = console()
    print_revocation(out, done)
    text = out.export_text()
    assert "Revoked 1 of 2 selected PAT(s); 1 failed" in text
    assert "HTTP 400: bad id" in text


def test_progress_callback() -> None:
    out = Console(record=True, width=120, force_terminal=True)
    with scan_progress(out, enabled=True) as progress:
        progress(
            ScanProgress(
                organization="contoso", users_listed=10, users_scanned=4, pats=9, listing_done=False
            )
        )
        task = progress._progress.tasks[0]  # type: ignore[union-attr]
        assert (task.completed, task.total, task.fields["pats"]) == (4, 10, 9)
        assert task.description == "Scanning contoso"
    with scan_progress(out, enabled=False) as silent:
        silent(
            ScanProgress(
                organization="x", users_listed=1, users_scanned=1, pats=1, listing_done=True
            )
        )


# --- hostile names (issue 11, items 5 and 6) ----------------------------------------------------

HOSTILE_NAME = (
    "ci\x1b[2J\x1b[H"  # clear the screen, cursor home
    "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\"  # an OSC 8 link
    "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # OSC 52: write the clipboard
    "\x9b31m\u202egpj.exe"  # a C1 CSI and a right-to-left override
)
MARKUP_OWNER = "a[/]@contoso.example"


def _terminal() -> Console:
    return Console(record=True, width=300, force_terminal=True, color_system="truecolor")


def test_control_characters_in_names_are_shown_as_escapes_not_sent() -> None:
    owner = Owner(descriptor="aad.x", principal_name=MARKUP_OWNER)
    row = evaluate(
        pat(is_global=True, display_name=HOSTILE_NAME, owner=owner), now=NOW, rules=RULES
    )
    builder = SummaryBuilder(now=NOW, organizations=("contoso",), top=5)
    builder.add(row)
    out = _terminal()
    print_inventory(
        out,
        summary=builder.summary(users_scanned=1),
        worst=builder.worst_rows(),
        problems=["owner [bold]x[/] said \x1b]52;c;eA==\x07"],
        requests=1,
        seconds=0.1,
    )
    raw = out.export_text(styles=True, clear=False)  # what reached the terminal, with styles
    for sequence in ("\x1b[2J", "\x1b]8;", "\x1b]52;", "\x07", "\x9b", "\u202e"):
        assert sequence not in raw, repr(sequence)
    text = out.export_text()
    assert "ci\\x1b[2J\\x1b[H" in text
    assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in text
    assert "\\x9b31m\\u202egpj.exe" in text
    assert MARKUP_OWNER in text  # shown as written, not parsed as markup (it crashed before)
    assert "owner [bold]x[/] said" in text


def test_markup_in_a_failed_revocation_is_shown_as_written() -> None:
    owner = Owner(descriptor="aad.x", principal_name=MARKUP_OWNER)
    row = evaluate(pat(owner=owner), now=NOW, rules=RULES)
    report = RevocationReport(
        dry_run=False,
        selected=1,
        failures=[RevocationOutcome(row=row, error="HTTP 500 [/] \x1b[2J")],
    )
    out = _terminal()
    print_revocation(out, report)
    text = out.export_text()
    assert MARKUP_OWNER in text
    assert "HTTP 500 [/] \\x1b[2J" in text
