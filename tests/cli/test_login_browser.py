"""`patwarden login --browser` in a real headless Chromium, and `--export`/`--import` between two
state directories, through the real CLI against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import Run, cli, logged_requests
from tests.conftest import RunningEmulator
from tests.support.browser import (
    CHROMIUM,
    answer_in_background,
    set_rotator_password,
    sign_in_url,
    walk_sign_in_over_http,
    walk_sign_in_with_playwright,
)
from tests.support.clock import patwarden_argv
from tests.support.configs import sink_dir, write_config
from tests.support.issued import assert_no_secret_in

pytestmark = pytest.mark.slow
# Under CI (.ci/run installs Chromium) a missing browser fails instead of skipping silently.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true", reason="needs Debian's chromium"
)


def file_token(tmp_path: Path) -> dict[str, Any]:
    """A token whose only sink is a file: what a rotation needs, nothing else."""
    return {
        "scopes": ["vso.code"],
        "lifetime": "30d",
        "rotate_before": "7d",
        "sinks": [{"kind": "file", "path": str(sink_dir(tmp_path) / "app.pat")}],
    }


def start(*args: str, config: Path) -> subprocess.Popen[str]:
    """A `patwarden` process with stdin closed, its output piped."""
    return subprocess.Popen(
        [*patwarden_argv(), *args, "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def rotated_silently(config: Path) -> Run:
    run = cli("rotate", "-o", "json", config=config)
    assert run.code == 0, run.stderr
    (token,) = json.loads(run.stdout)["tokens"]
    assert token["outcome"] == "rotated"
    return run


@needs_chromium
def test_browser_login_in_chromium_then_a_new_process_rotates_silently(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    username = set_rotator_password(emulator)
    config = write_config(emulator, tmp_path, tokens={"app": file_token(tmp_path)})
    process = start("login", "--browser", "--no-open", config=config)
    url, _ = sign_in_url(process.stderr)
    # MSAL's authorization request: PKCE S256, form_post back to a loopback port.
    assert "code_challenge_method=S256" in url
    assert "code_challenge=" in url
    assert "response_mode=form_post" in url
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in url

    shown = walk_sign_in_with_playwright(url, username=username, ca_bundle=emulator.ca_bundle)
    assert "Signed in. You can close this tab and return to patwarden." in shown
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[0] == (
        f"Logged in identity 'rotator' as {username} (tenant {emulator['tenant_id']})."
    )
    token_requests = [
        r for r in logged_requests(emulator) if r["path"].endswith("/oauth2/v2.0/token")
    ]
    assert token_requests, "the code was never redeemed"

    emulator.admin("DELETE", "/requests")
    rotated = rotated_silently(config)  # a new process: stdin closed, nothing prompts
    assert not any(r["path"].endswith("/authorize") for r in logged_requests(emulator))
    doctor = cli("doctor", config=config)
    assert "with the browser" in doctor.stdout, doctor.stdout
    assert "vso.pats vso.pats_manage" in doctor.stdout
    assert_no_secret_in(emulator, stdout, stderr, rotated.output, doctor.output)


@needs_chromium
def test_export_on_a_workstation_import_on_a_runner(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Two state directories that share nothing but the exported (sealed) file; the operator
    signs in in headless Chromium."""
    username = set_rotator_password(emulator)
    workstation = tmp_path / "workstation"
    runner = tmp_path / "runner"
    workstation.mkdir(mode=0o700)
    runner.mkdir(mode=0o700)
    exported = workstation / "handover.cache"
    work_config = write_config(emulator, workstation)
    run_config = write_config(emulator, runner, tokens={"app": file_token(runner)})

    process = start(
        "login", "--browser", "--no-open", "--export", str(exported), config=work_config
    )
    url, _ = sign_in_url(process.stderr)
    walk_sign_in_with_playwright(url, username=username, ca_bundle=emulator.ca_bundle)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert f"in {exported} (mode 0600)" in stdout
    assert "patwarden login --import handover.cache" in stdout
    assert exported.stat().st_mode & 0o777 == 0o600
    assert exported.read_bytes().startswith(b"PWCACHE")  # sealed, never plaintext
    assert not (workstation / "state" / "rotator.cache").exists()  # nothing kept on the workstation

    imported = cli("login", "--import", str(exported), config=run_config)
    assert imported.code == 0, imported.stderr
    lines = imported.stdout.splitlines()
    assert lines[0].startswith(
        f"Imported the sign-in of identity 'rotator': {username} signed in on "
    )
    assert "with the browser at " in lines[0]
    assert lines[1] == "This runner refreshed it silently: the hand-over works."
    assert (runner / "state" / "rotator.cache").exists()

    rotated = rotated_silently(run_config)
    doctor = cli("doctor", config=run_config)
    assert ", handed over to " in doctor.stdout, doctor.stdout
    assert_no_secret_in(emulator, stdout, stderr, imported.output, rotated.output, doctor.output)


def test_import_refuses_a_file_sealed_with_another_key(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    exported = tmp_path / "handover.cache"
    exported.write_bytes(b"PWCACHE1" + os.urandom(64))
    exported.chmod(0o600)
    result = cli("login", "--import", str(exported), config=write_config(emulator, tmp_path))
    assert result.code == 3
    assert "cannot decrypt the token cache" in result.stderr
    assert "Traceback" not in result.stderr


def test_browser_options_without_browser_are_refused(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    result = cli("login", "--no-open", config=write_config(emulator, tmp_path))
    assert result.code == 2
    assert "--no-open and --port only apply to --browser" in result.stderr


def test_browser_login_on_a_workstation_into_the_key_vault_cache_a_runner_reads(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The workstation's login writes straight into the Key Vault cache; the runner (another
    state directory) reads it there and rotates; nothing is copied."""
    username = set_rotator_password(emulator)
    cache = {
        "kind": "key_vault",
        "vault_url": emulator["key_vault_url"],
        "secret": "rotator-cache",
        "identity": "writer",
    }
    workstation, runner = tmp_path / "workstation", tmp_path / "runner"
    workstation.mkdir(mode=0o700)
    runner.mkdir(mode=0o700)
    work_config = write_config(emulator, workstation, rotator_settings={"cache": cache})
    run_config = write_config(
        emulator, runner, rotator_settings={"cache": cache}, tokens={"app": file_token(runner)}
    )

    process = start("login", "--browser", "--no-open", config=work_config)
    answer_in_background(process, emulator=emulator, username=username).join(timeout=60)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "The sign-in is kept in Key Vault secret 'rotator-cache'" in stdout
    assert not (workstation / "state" / "rotator.cache").exists()

    rotated = rotated_silently(run_config)
    doctor = cli("doctor", config=run_config)
    assert "with the browser at " in doctor.stdout, doctor.stdout
    assert_no_secret_in(emulator, stdout, stderr, rotated.output, doctor.output)


def test_export_refuses_a_key_the_runner_cannot_have(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(
        emulator, tmp_path, rotator_settings={"cache": {"key": {"keyring": True}}}
    )
    emulator.admin("DELETE", "/requests")
    result = cli("login", "--browser", "--export", str(tmp_path / "x.cache"), config=config)
    assert result.code == 2
    assert result.stderr.startswith(
        "Error: cannot export the sign-in of identity 'rotator': its cache key comes from this "
        "machine's OS keyring, and the runner needs the same key to open the file"
    )
    assert "identities.md#sign-in-here-run-there" in result.stderr
    assert logged_requests(emulator) == []  # refused before any sign-in
    assert not (tmp_path / "x.cache").exists()


def test_login_browser_opens_the_system_browser(emulator: RunningEmulator, tmp_path: Path) -> None:
    """Without --no-open the system browser gets the URL (`webbrowser`, which honours $BROWSER:
    here a script that notes the URL, and the test walks the pages in its place)."""
    username = set_rotator_password(emulator)
    opened = tmp_path / "opened.url"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > "{opened}"\n')
    browser.chmod(0o700)
    config = write_config(emulator, tmp_path)
    process = subprocess.Popen(
        [*patwarden_argv(), "login", "--browser", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BROWSER": str(browser)},
    )
    printed, _ = sign_in_url(process.stderr)
    deadline = time.monotonic() + 30
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened.read_text() == printed  # the browser got exactly the URL shown
    walk_sign_in_over_http(printed, emulator=emulator, username=username)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "No browser could be opened here" not in stderr
    assert stdout.startswith("Logged in identity 'rotator' as ")
