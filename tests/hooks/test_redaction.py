"""A hook that prints the PAT never puts it in the output or the audit log (issue 11, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patwarden.hooks.redaction import REDACTED, redact
from patwarden.hooks.runner import HookEvent, run_command
from patwarden.secret import Secret
from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.reliability.leaks import LeakScanner
from tests.support.clock import now
from tests.support.configs import sink_dir, token_entry, write_config
from tests.support.device_codes import login_in_process

PAT84 = "A" * 20 + "b7" * 16 + "AZDO" + "x9" * 14
LEGACY = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    "secret",
    [PAT84, f"pwemu_{PAT84}", LEGACY, JWT, "Basic OnNlY3JldC1wYXQtdmFsdWU=", "0.AXkA" + "r" * 60],
)
def test_secret_shapes_are_redacted(secret: str) -> None:
    cleaned = redact(f"curl failed: token {secret} (exit 22)")
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert cleaned.startswith("curl failed: token ")


def test_known_values_are_redacted_even_when_short_or_unusual() -> None:
    known = Secret("s3cr3t-but-short")
    assert redact("value: s3cr3t-but-short!", known=[known]) == f"value: {REDACTED}!"


def test_ordinary_output_is_kept() -> None:
    text = "systemctl: unit flux.service not found (exit 5)"
    assert redact(text) == text


def test_a_failing_command_that_prints_the_secret_has_it_redacted(tmp_path: Path) -> None:
    pat = Secret(f"pwemu_{PAT84}")
    sink = tmp_path / "pat"
    sink.write_text(pat.reveal() + "\n")
    event = HookEvent(token_name="flux", authorization_id="id", valid_to=now(), sinks=("file",))
    script = f'echo "token: $(cat {sink})"; exit 1'
    result = run_command(["sh", "-c", script], event=event, timeout=10, known=[pat])
    assert not result.ok
    assert pat.reveal() not in result.detail
    assert f"token: {REDACTED}" in result.detail


def test_a_long_output_is_redacted_before_it_is_cut(tmp_path: Path) -> None:
    # Cutting first could leave the end of a PAT that no longer matches any shape.
    event = HookEvent(token_name="flux", authorization_id="id", valid_to=now(), sinks=())
    script = f"echo {PAT84}; printf '%0390d' 0; exit 1"
    result = run_command(["sh", "-c", script], event=event, timeout=10)
    assert PAT84[-20:] not in result.detail


@pytest.mark.slow
def test_rotate_with_a_hook_that_prints_the_pat_stores_and_shows_no_secret(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    # The repro: `sh -c 'echo "token: $(cat SINKFILE)"; exit 1'` as the on_rotate command.
    pat_file = sink_dir(tmp_path) / "leaky.pat"
    # The second rotation's hook also prints the previous PAT (kept by the file sink): the engine
    # never holds its value, so only its shape redacts it (docs/security.md, "Hooks").
    leak = f'echo "token: $(cat {pat_file})"; cat {pat_file}.previous 2>/dev/null; exit 1'
    hook = {"command": ["sh", "-c", leak]}
    entry = token_entry(emulator, tmp_path, "leaky", group=False, on_rotate=hook)
    config = write_config(emulator, tmp_path, tokens={"leaky": entry})
    login_in_process(emulator, config)
    scanner = LeakScanner(emulator=emulator)
    scanner.watch(tmp_path / "state")
    scanner.allow(pat_file, pat_file.with_name("leaky.pat.previous"))
    rotated = cli("rotate", config=config)
    rotated_json = cli("--output", "json", "rotate", "--force", config=config)
    audit = cli("--output", "json", "audit", config=config)
    for name, run in (("rotate", rotated), ("rotate json", rotated_json), ("audit", audit)):
        scanner.capture(f"{name} stdout", run.stdout)
        scanner.capture(f"{name} stderr", run.stderr)
    assert rotated.code == 0, rotated.output
    assert "hook command sh: FAILED" in rotated.output
    assert f"token: {REDACTED}" in rotated.output
    failed = [r for r in json.loads(audit.stdout) if r["kind"] == "hook_failed"]
    assert len(failed) == 2
    assert all(f"token: {REDACTED}" in json.dumps(record) for record in failed)
    scanner.assert_clean()
    assert scanner.secrets_checked >= 2  # both PATs (and the sign-in's tokens) were looked for


def test_the_raw_output_goes_only_to_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    event = HookEvent(token_name="flux", authorization_id="id", valid_to=now(), sinks=())
    with caplog.at_level("INFO", logger="patwarden.hooks.runner"):
        quiet = run_command(["sh", "-c", f"echo {PAT84}; exit 1"], event=event, timeout=10)
    assert PAT84 not in caplog.text  # not even at INFO: only `--debug` shows it
    with caplog.at_level("DEBUG", logger="patwarden.hooks.runner"):
        loud = run_command(["sh", "-c", f"echo {PAT84}; exit 1"], event=event, timeout=10)
    assert PAT84 in caplog.text  # the operator debugging their hook sees what it printed
    for result in (quiet, loud):
        assert PAT84 not in result.detail
        assert PAT84 not in result.note()


def test_promotion_notes_scrub_the_new_pat_it_carries(tmp_path: Path) -> None:
    from patwarden.config.hooks import HookSpec
    from patwarden.hooks.runner import promotion_notes
    from patwarden.rotation.outcomes import Promotion

    unusual = Secret("short-unshaped-value")  # no PAT shape: only the known value catches it
    promotion = Promotion(
        token_name="flux",
        organization="contoso",
        operation_id="op",
        authorization_id="id",
        valid_to=now(),
        previous_authorization_id=None,
        revoke_at=None,
        sinks=("file",),
        secrets=(unusual,),
    )
    spec = HookSpec(command=("sh", "-c", "echo 'got short-unshaped-value'; exit 1"))
    (note,) = promotion_notes(spec=spec, promotion=promotion)
    assert "short-unshaped-value" not in note
    assert f"got {REDACTED}" in note


@pytest.mark.parametrize("previous", [PAT84, LEGACY], ids=["pat-84", "legacy-52"])
def test_the_previous_pat_is_redacted_by_its_shape_in_notes_and_the_audit_detail(
    previous: str,
) -> None:
    # The engine holds only the new PAT; the previous one (never read back from a sink) is not a
    # known value, so its shape must catch it in what is shown and what the audit stores.
    from patwarden.config.hooks import HookSpec
    from patwarden.hooks.runner import promotion_notes
    from patwarden.rotation.outcomes import Promotion

    promotion = Promotion(
        token_name="flux",
        organization="contoso",
        operation_id="op",
        authorization_id="new-id",
        valid_to=now(),
        previous_authorization_id="old-id",
        revoke_at=now(),
        sinks=("file",),
        secrets=(Secret("n" * 20 + "AZDO" + "m" * 60),),
    )
    spec = HookSpec(command=("sh", "-c", f"echo 'old one: {previous}'; exit 1"))
    (note,) = promotion_notes(spec=spec, promotion=promotion)
    # `rotate` prints the notes; the runtime audits `hook_failed` with the failed notes joined.
    assert previous not in note
    assert previous[:30] not in note
    assert previous[-30:] not in note
    assert f"old one: {REDACTED}" in note
