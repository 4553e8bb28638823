"""Hooks: a real subprocess and a real HTTPS webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from patwarden.config.hooks import HookSpec
from patwarden.errors import ConfigError
from patwarden.hooks.runner import (
    HookEvent,
    post_webhook,
    promotion_notes,
    run_command,
    run_hooks,
)
from patwarden.rotation.outcomes import Promotion
from tests.support.receivers import Tls, make_tls, serve_https

EVENT = HookEvent(
    token_name="flux-git",
    authorization_id="3f1c0d2e-1111-2222-3333-444455556666",
    valid_to=datetime(2030, 1, 31, 12, 0, tzinfo=UTC),
    sinks=(
        "key_vault https://ops-kv.vault.azure.net/secrets/flux-git-pat",
        "file /etc/flux/pat (raw)",
    ),
    organization="contoso",
)
WEBHOOK_PATH = "/webhookb2/SECRETSIGNATURE123/IncomingWebhook"

DUMP_ENV = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"


# --- command hooks ------------------------------------------------------------------------------


def test_command_gets_the_event_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    result = run_command([sys.executable, "-c", DUMP_ENV, str(out)], event=EVENT, timeout=30)
    assert result.ok, result.detail
    assert result.kind == "command"
    env = json.loads(out.read_text())
    assert env["PATWARDEN_TOKEN_NAME"] == "flux-git"
    assert env["PATWARDEN_AUTHORIZATION_ID"] == EVENT.authorization_id
    assert env["PATWARDEN_VALID_TO"] == "2030-01-31T12:00:00+00:00"
    assert json.loads(env["PATWARDEN_SINKS"]) == list(EVENT.sinks)
    assert env["PATWARDEN_ORGANIZATION"] == "contoso"


def test_command_does_not_inherit_credentials_unless_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "sp-secret-value")
    monkeypatch.setenv("PATWARDEN_CACHE_KEY", "cache-key-value")
    monkeypatch.setenv("DEPLOY_ENV", "prod")
    out = tmp_path / "env.json"
    result = run_command(
        [sys.executable, "-c", DUMP_ENV, str(out)], event=EVENT, timeout=30, pass_env=["DEPLOY_ENV"]
    )
    assert result.ok, result.detail
    env = json.loads(out.read_text())
    assert "AZURE_CLIENT_SECRET" not in env
    assert "PATWARDEN_CACHE_KEY" not in env
    assert env["DEPLOY_ENV"] == "prod"
    assert env["PATH"] == os.environ["PATH"]


def test_a_failing_command_is_a_failed_result_with_its_output() -> None:
    script = "import sys; print('reload failed: unit not found'); sys.exit(3)"
    result = run_command([sys.executable, "-c", script], event=EVENT, timeout=30)
    assert not result.ok
    assert "exited with status 3" in result.detail
    assert "reload failed: unit not found" in result.detail


def test_a_missing_program_is_a_failed_result(tmp_path: Path) -> None:
    result = run_command([str(tmp_path / "no-such-program")], event=EVENT, timeout=5)
    assert not result.ok
    assert "could not start" in result.detail
    assert "No such file" in result.detail


def test_a_hanging_command_and_its_children_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time;"
        "child = subprocess.Popen(['sleep', '60']);"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid));"
        "print('started', flush=True); time.sleep(60)"
    )
    started = time.monotonic()
    result = run_command([sys.executable, "-c", script], event=EVENT, timeout=1.5)
    assert time.monotonic() - started < 15
    assert not result.ok
    assert "did not finish within 1.5 s and was killed" in result.detail
    assert "started" in result.detail
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of a dead parent is reaped by init; until then it is a zombie.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


# --- webhook hooks ------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A local HTTPS webhook receiver that records requests and answers as told."""

    url: str
    ca_bundle: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def receiver(tls: Tls) -> Iterator[Receiver]:
    state = Receiver(url="", ca_bundle=str(tls.ca_bundle))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
            )
            time.sleep(state.delay)
            reply = b'{"error": "nope"}' if state.status >= 400 else b"1"
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serve_https(tls, Handler) as url:
        state.url = url + WEBHOOK_PATH
        yield state


def test_webhook_posts_a_teams_and_slack_compatible_body(receiver: Receiver) -> None:
    result = post_webhook(receiver.url, event=EVENT, timeout=10, ca_bundle=receiver.ca_bundle)
    assert result.ok, result.detail
    [request] = receiver.requests
    assert request["path"] == WEBHOOK_PATH
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert body["text"].startswith("patwarden rotated the PAT 'flux-git' in contoso")
    assert "2030-01-31T12:00:00+00:00" in body["text"]
    assert body["authorization_id"] == EVENT.authorization_id
    assert body["sinks"] == list(EVENT.sinks)
    assert body["event"] == "rotated"


def test_webhook_error_status_is_a_failed_result(receiver: Receiver) -> None:
    receiver.status = 500
    result = post_webhook(receiver.url, event=EVENT, timeout=10, ca_bundle=receiver.ca_bundle)
    assert not result.ok
    assert "answered HTTP 500" in result.detail
    assert "nope" in result.detail


def test_webhook_timeout_is_a_failed_result(receiver: Receiver) -> None:
    receiver.delay = 3
    result = post_webhook(receiver.url, event=EVENT, timeout=0.5, ca_bundle=receiver.ca_bundle)
    assert not result.ok
    assert "within 0.5 s" in result.detail


def test_webhook_without_the_ca_bundle_fails_tls_instead_of_skipping_it(receiver: Receiver) -> None:
    result = post_webhook(receiver.url, event=EVENT, timeout=10)
    assert not result.ok
    assert "ConnectError" in result.detail
    assert receiver.requests == []


def test_webhook_url_path_never_appears_in_results(receiver: Receiver) -> None:
    receiver.status = 404
    for result in (
        post_webhook(receiver.url, event=EVENT, timeout=10, ca_bundle=receiver.ca_bundle),
        post_webhook(receiver.url, event=EVENT, timeout=10),
    ):
        assert "SECRETSIGNATURE123" not in f"{result!r} {result.detail} {result.target}"
        assert result.target.startswith("https://127.0.0.1:")


def test_unreachable_webhook_is_a_failed_result(tls: Tls) -> None:
    result = post_webhook(
        "https://127.0.0.1:9/hook", event=EVENT, timeout=5, ca_bundle=str(tls.ca_bundle)
    )
    assert not result.ok
    assert "could not reach https://127.0.0.1:9/" in result.detail


def test_run_hooks_runs_command_then_webhook(receiver: Receiver, tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    spec = HookSpec.parse(
        {
            "command": [sys.executable, "-c", DUMP_ENV, str(out)],
            "webhook": receiver.url,
            "timeout": 10,
        }
    )
    results = run_hooks(spec=spec, event=EVENT, ca_bundle=receiver.ca_bundle)
    assert [(r.kind, r.ok) for r in results] == [("command", True), ("webhook", True)]
    assert out.exists()
    assert len(receiver.requests) == 1


def test_a_failing_command_does_not_stop_the_webhook(receiver: Receiver) -> None:
    spec = HookSpec.parse({"command": ["/nonexistent/reload"], "webhook": receiver.url})
    results = run_hooks(spec=spec, event=EVENT, ca_bundle=receiver.ca_bundle)
    assert [(r.kind, r.ok) for r in results] == [("command", False), ("webhook", True)]


def test_promotion_hooks_carry_the_previous_pat_and_return_notes(
    receiver: Receiver, tmp_path: Path
) -> None:
    promotion = Promotion(
        token_name="flux-git",
        organization="contoso",
        operation_id="op-1234",
        authorization_id=EVENT.authorization_id,
        valid_to=EVENT.valid_to,
        previous_authorization_id="aaaaaaaa-1111-2222-3333-444455556666",
        revoke_at=datetime(2030, 1, 2, tzinfo=UTC),
        sinks=EVENT.sinks,
    )
    out = tmp_path / "env.json"
    spec = HookSpec.parse(
        {"command": [sys.executable, "-c", DUMP_ENV, str(out)], "webhook": receiver.url}
    )
    notes = promotion_notes(spec=spec, promotion=promotion, ca_bundle=receiver.ca_bundle)
    assert notes[0].startswith(f"hook command {sys.executable}: ok (")
    assert notes[1].startswith("hook webhook https://127.0.0.1:")
    assert ": ok (" in notes[1]
    assert "SECRETSIGNATURE123" not in " ".join(notes)
    env = json.loads(out.read_text())
    assert env["PATWARDEN_OPERATION_ID"] == "op-1234"
    assert env["PATWARDEN_PREVIOUS_AUTHORIZATION_ID"] == promotion.previous_authorization_id
    assert env["PATWARDEN_REVOKE_PREVIOUS_AT"] == "2030-01-02T00:00:00+00:00"
    body = receiver.requests[0]["body"]
    assert "will be revoked after 2030-01-02T00:00:00+00:00" in body["text"]
    assert body["previous_authorization_id"] == promotion.previous_authorization_id


def test_webhook_url_from_an_environment_reference(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", receiver.url)
    spec = HookSpec.parse({"webhook": {"env": "TEAMS_WEBHOOK_URL"}})
    [result] = run_hooks(spec=spec, event=EVENT, ca_bundle=receiver.ca_bundle)
    assert result.ok, result.detail
    assert receiver.requests[0]["path"] == WEBHOOK_PATH


def test_webhook_reference_to_a_file(receiver: Receiver, tmp_path: Path) -> None:
    url_file = tmp_path / "webhook-url"
    url_file.write_text(receiver.url + "\n")
    url_file.chmod(0o600)
    spec = HookSpec.parse({"webhook": {"file": str(url_file)}})
    [result] = run_hooks(spec=spec, event=EVENT, ca_bundle=receiver.ca_bundle)
    assert result.ok, result.detail


def test_an_unset_webhook_reference_is_a_failed_result() -> None:
    spec = HookSpec.parse({"webhook": {"env": "TEAMS_WEBHOOK_URL"}})
    [result] = run_hooks(spec=spec, event=EVENT)
    assert not result.ok
    assert result.target == "from environment variable TEAMS_WEBHOOK_URL"
    assert "TEAMS_WEBHOOK_URL is not set" in result.detail


def test_a_referenced_webhook_must_be_https(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAMS_WEBHOOK_URL", "http://hooks.example/SECRETSIGNATURE123")
    [result] = run_hooks(
        spec=HookSpec.parse({"webhook": {"env": "TEAMS_WEBHOOK_URL"}}), event=EVENT
    )
    assert not result.ok
    assert "not an https:// URL" in result.detail
    assert "SECRETSIGNATURE123" not in result.note()


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"command": "systemctl reload flux"}, "on_rotate.command: Value error, must be a list"),
        ({"command": []}, "on_rotate.command: Value error, must name a program"),
        (
            {"webhook": "http://hooks.example/x"},
            "on_rotate.webhook: Value error, must be an https:// URL (or {env: NAME}",
        ),
        ({}, "needs `command`, `webhook` or both"),
        (
            {"webhook": "https://h.example/x", "timeout": 0},
            "on_rotate.timeout: Input should be greater",
        ),
        ({"webhook": "https://h.example/x", "shell": True}, "on_rotate.shell: Extra inputs"),
    ],
)
def test_invalid_hook_entries_name_the_key(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HookSpec.parse(raw)
    assert problem in str(caught.value)
