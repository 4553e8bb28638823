"""`patwarden login` / `logout` through the real CLI against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from patwarden.cli.login import relogin_sentence
from patwarden.domain.relogin import ReloginCause, ReloginDeadline
from tests.cli.support import cli, logged_requests, start_login
from tests.conftest import RunningEmulator
from tests.support.configs import write_config
from tests.support.device_codes import approve_next_device_code, login_in_process
from tests.support.issued import assert_no_secret_in

pytestmark = pytest.mark.slow


def test_login_with_a_device_code_approved_through_the_admin_api(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path)
    process = start_login(config)
    code = approve_next_device_code(emulator, process)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    upn = emulator["identities"]["rotator"]["username"]
    # The human's instructions go to stderr: the URL and the code, usable from any device.
    assert f"{emulator['authority_host']}/devicelogin" in stderr
    assert code in stderr
    lines = stdout.splitlines()
    assert lines[0] == f"Logged in identity 'rotator' as {upn} (tenant {emulator['tenant_id']})."
    assert lines[1].startswith("Re-login needed in 90 days (by ")
    assert lines[2] == f"The sign-in is kept in file {tmp_path / 'state' / 'rotator.cache'}."
    assert (tmp_path / "state" / "rotator.cache").stat().st_mode & 0o777 == 0o600
    assert_no_secret_in(emulator, stdout, stderr)
    # A new process uses the sign-in silently: stdin is closed, nothing prompts.
    listed = cli("pat", "list", config=config)
    assert listed.code == 0, listed.stderr
    assert listed.stdout.strip() == "[]"


def test_declined_sign_in_fails_with_exit_3(emulator: RunningEmulator, tmp_path: Path) -> None:
    config = write_config(emulator, tmp_path)
    process = start_login(config)
    approve_next_device_code(emulator, process, deny=True)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3
    assert "Error: login of identity 'rotator' failed: the sign-in was declined" in stderr
    assert "Fix: run `patwarden login --identity rotator` again" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "state" / "rotator.cache").exists()


def test_login_refuses_a_service_principal_before_any_request(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path)
    emulator.admin("DELETE", "/requests")
    result = cli("login", "--identity", "writer", config=config)
    assert result.code == 2
    assert result.stderr.startswith(
        "Error: cannot log in identity 'writer': it is a service_principal"
    )
    assert "the Azure DevOps PAT Lifecycle API accepts only a user's delegated" in result.stderr
    assert "Fix: sign in a dedicated Entra user instead" in result.stderr
    assert "identities.md#why-a-service-principal-cannot-rotate" in result.stderr
    assert logged_requests(emulator) == []


def test_login_of_an_unknown_identity_names_the_configured_ones(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    result = cli("login", "--identity", "robot", config=write_config(emulator, tmp_path))
    assert result.code == 2
    assert "no identity named 'robot'" in result.stderr
    assert "configured identities: rotator, writer" in result.stderr


def test_logout_removes_the_cache_and_names_the_tokens_that_stop_rotating(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    tokens = {
        "flux-git": {"scopes": ["vso.code"], "lifetime": "30d"},
        "npm-feed": {"scopes": ["vso.packaging"], "lifetime": "30d"},
    }
    config = write_config(emulator, tmp_path, tokens=tokens)
    login_in_process(emulator, config)
    cache = tmp_path / "state" / "rotator.cache"
    assert cache.exists()

    result = cli("logout", config=config)
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Logged out identity 'rotator': removed its token cache (file {cache}).",
        "These tokens will stop rotating until `patwarden login --identity rotator` is run "
        "again: flux-git, npm-feed.",
    ]
    assert not cache.exists()

    again = cli("logout", "--identity", "rotator", config=config)
    assert again.code == 0
    assert again.stdout.startswith(
        f"Identity 'rotator' was not logged in (no token cache in file {cache})"
    )

    after = cli("pat", "list", config=config)
    assert after.code == 3
    assert "Error: identity 'rotator' is not logged in" in after.stderr
    assert "Fix: run `patwarden login --identity rotator`" in after.stderr


def test_logout_works_even_when_the_cache_key_is_gone(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path)
    login_in_process(emulator, config)
    missing = tmp_path / "lost.key"
    text = config.read_text()
    original_key = Path(emulator["example_config"]).parent / "rotator-cache.key"
    config.write_text(text.replace(str(original_key), str(missing)))
    result = cli("logout", config=config)
    assert result.code == 0, result.stderr
    assert "Note: the token cache could not be opened" in result.stderr
    assert "removed the file anyway" in result.stderr
    assert "Logged out identity 'rotator'" in result.stdout
    assert not (tmp_path / "state" / "rotator.cache").exists()


@pytest.mark.parametrize(
    ("cause", "why"),
    [
        (ReloginCause.INACTIVITY, "if nothing refreshes the sign-in for 90 days"),
        (ReloginCause.SIGN_IN_FREQUENCY, "the Conditional Access sign-in frequency counts from"),
    ],
)
def test_relogin_sentence_names_the_deadline_and_why(cause: ReloginCause, why: str) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    deadline = ReloginDeadline(at=now + timedelta(days=7, hours=3), cause=cause)
    sentence = relogin_sentence(deadline, now=now)
    assert sentence.startswith("Re-login needed in 7 days (by 2026-06-08 15:00 UTC): ")
    assert why in sentence
