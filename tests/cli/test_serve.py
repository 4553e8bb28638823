"""``patwarden serve`` through the real CLI against the emulator, with PATs issued "minutes ago"
so they come due within seconds, a check interval of seconds, a real HTTPS webhook receiver and
an SMTP server with STARTTLS (aiosmtpd), each with its own throwaway CA.

One service run walks through: rotating on time, a second instance standing by, a failing
rotation (Key Vault refuses one token's write) with its notifications, /metrics matching the
state, an externally revoked PAT repaired within one check interval, SIGHUP with an invalid then
a valid config, SIGKILL in the middle of a rotation and a clean restart, the rotator's refresh
token revoked (/readyz not ready, "re-login needed now"), and SIGTERM (exit 0). At the end, every
notification arrived exactly once per condition and phase at both receivers.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.state.sqlite import SqliteStateStore
from tests.cli.serve_support import Serve, rotate_in_the_past, start_serve, wait_for
from tests.cli.support import cli
from tests.conftest import RunningEmulator
from tests.support.clock import now
from tests.support.configs import save_config, sink_dir, write_config
from tests.support.device_codes import login_in_process
from tests.support.receivers import (
    SmtpReceiver,
    Tls,
    WebhookReceiver,
    make_tls,
    smtp_receiver,
    webhook_receiver,
)

pytestmark = pytest.mark.slow
HOOK_ENV = {"SERVE_HOOK_KEY": "serve-test-signing-key"}  # a test value, not a credential
SEEDED_AGO = 350  # seconds: lifetime 8m - rotate_before 2m - 350 s = due 10 s after seeding


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[tuple[Tls, WebhookReceiver, SmtpReceiver]]:
    tls = make_tls(tmp_path)
    with webhook_receiver(tls) as hooks, smtp_receiver(tls) as smtp:
        yield tls, hooks, smtp


def token(sink: dict[str, Any]) -> dict[str, Any]:
    return {
        "scopes": ["vso.code"],
        "lifetime": "8m",
        "rotate_before": "2m",
        "revoke_after": "0s",
        "sinks": [sink],
    }


def serve_config(
    emulator: RunningEmulator,
    tmp_path: Path,
    receivers: tuple[Tls, WebhookReceiver, SmtpReceiver],
    *,
    extra_token: bool = False,
) -> Path:
    tls, hooks, smtp = receivers
    sinks = sink_dir(tmp_path)
    tokens = {
        "alpha": token({"kind": "file", "path": str(sinks / "alpha.pat")}),
        "bravo": token(
            {
                "kind": "key_vault",
                "vault_url": emulator["key_vault_url"],
                "secret": "bravo-pat",
                "identity": "writer",
            }
        ),
    }
    if extra_token:
        tokens["charlie"] = token({"kind": "file", "path": str(sinks / "charlie.pat")})
    return write_config(
        emulator,
        tmp_path,
        tokens=tokens,
        service={
            "check_interval": "8s",
            "check_jitter": "0s",
            "sign_in_check": "3s",
            "backoff_min": "2s",
            "backoff_max": "4s",
            "shutdown_timeout": "20s",
        },
        notifications={
            "expiry_warning": "125s",
            "relogin_warnings": ["91d", "1d"],
            "channels": [
                {
                    "kind": "webhook",
                    "url": hooks.url + "/hook",
                    "secret": {"env": "SERVE_HOOK_KEY"},
                    "ca_bundle": str(tls.ca_bundle),
                },
                {
                    "kind": "email",
                    "host": smtp.host,
                    "port": smtp.port,
                    "sender": "patwarden@example.com",
                    "to": ["platform@example.com"],
                    "ca_bundle": str(tls.ca_bundle),
                },
            ],
        },
    )


def current_ids(config: Path) -> dict[str, str | None]:
    run = cli("status", "-o", "json", config=config)
    assert run.code in (0, 1), run.output
    return {
        row["token"]: row.get("current_authorization_id")
        for row in json.loads(run.stdout)["tokens"]
    }


def status_rows(config: Path) -> dict[str, dict[str, Any]]:
    run = cli("status", "-o", "json", config=config)
    return {row["token"]: row for row in json.loads(run.stdout)["tokens"]}


def received(
    hooks: WebhookReceiver, smtp: SmtpReceiver
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    by_hook = Counter((r.json()["key"], r.json()["phase"]) for r in hooks.on("/hook"))
    by_mail = Counter(
        (str(m["X-Patwarden-Condition"]), str(m["X-Patwarden-Phase"])) for m in smtp.messages
    )
    return by_hook, by_mail


def test_serve_end_to_end(
    emulator: RunningEmulator,
    tmp_path: Path,
    receivers: tuple[Tls, WebhookReceiver, SmtpReceiver],
) -> None:
    _tls, hooks, smtp = receivers
    config = serve_config(emulator, tmp_path, receivers)
    login_in_process(emulator, config)
    seeded = rotate_in_the_past(emulator, config, seconds=SEEDED_AGO)
    assert seeded.returncode == 0, seeded.stderr
    outcomes = {t["token"]: t["outcome"] for t in json.loads(seeded.stdout)["tokens"]}
    assert outcomes == {"alpha": "rotated", "bravo": "rotated"}, seeded.stdout
    before = current_ids(config)
    planned = json.loads(cli("plan", "-o", "json", config=config).stdout)["tokens"]
    due = {row["token"]: datetime.fromisoformat(row["due_at"]) for row in planned}
    # Key Vault refuses bravo's writes: its rotation fails until the rule is removed.
    emulator.admin(
        "POST",
        "/faults",
        json={"route": "PUT .*/secrets/bravo-pat", "kind": "status", "status": 403},
    )
    log = tmp_path / "serve.log"
    serves = [start_serve(config, log, env=HOOK_ENV)]
    try:
        walk_through(emulator, config, serves, hooks, smtp, before, due, tmp_path, receivers)
    finally:
        code = serves[-1].stop()
    serve = serves[-1]
    assert code == 0, log.read_text()
    stopped = serve.events()[-1]
    assert stopped["event"] == "stopped"
    assert stopped["message"] == "stopped cleanly"
    by_hook, by_mail = received(hooks, smtp)
    assert by_hook == by_mail
    assert set(by_hook.values()) == {1}, by_hook  # exactly once per condition and phase
    assert {key for key, phase in by_hook if phase == "started"} >= {
        "rotation_rolled_back:bravo",
        "expiring:bravo",
        "relogin_due:rotator",
        "relogin_now:rotator",
    }, by_hook
    assert ("rotation_rolled_back:bravo", "resolved") in by_hook
    assert ("expiring:bravo", "resolved") in by_hook
    assert "serve-test-signing-key" not in log.read_text()


def walk_through(
    emulator: RunningEmulator,
    config: Path,
    serves: list[Serve],
    hooks: WebhookReceiver,
    smtp: SmtpReceiver,
    before: dict[str, str | None],
    due: dict[str, datetime],
    tmp_path: Path,
    receivers: tuple[Tls, WebhookReceiver, SmtpReceiver],
) -> None:
    serve = serves[0]
    # On time: alpha (due 10 s after seeding) rotates; bravo fails and is rolled back.
    rotated = serve.wait_event("rotated", token="alpha")
    assert rotated["outcome"] == "rotated"
    assert rotated["operation_id"]
    # On time: the rotation began at the due time, not early and not at the next check pass (8 s
    # later). Its start is read from the journal: the log line comes after the whole rotation,
    # whose length is the machine's load, not the schedule.
    late = started_at(tmp_path, rotated["operation_id"]) - due["alpha"]
    assert timedelta(0) <= late <= timedelta(seconds=3), (late, serve.timeline())
    failed = serve.wait_event("rolled_back", token="bravo")
    assert failed["level"] == "error"
    after = current_ids(config)
    assert after["alpha"] != before["alpha"]
    assert after["bravo"] == before["bravo"]  # the old PAT stays current
    assert serve.get("/readyz").json()["ready"] is True

    # A second instance on the same state stands by instead of rotating twice.
    second = start_serve(config, tmp_path / "second.log", env=HOOK_ENV)
    try:
        second.wait_event("standby")
        assert second.get("/readyz").json()["role"] == "standby"
        assert second.metrics()[("patwarden_service_leader", ())] == 0
    finally:
        assert second.stop() == 0
    assert not any(e.get("event") == "rotated" for e in second.events())

    # Notifications: rolled back and expiring (125 s warning) for bravo, re-login within 91 days.
    wait_for(
        "bravo's notifications",
        lambda: (
            {("rotation_rolled_back:bravo", "started"), ("expiring:bravo", "started")}
            <= set(received(hooks, smtp)[1])
        ),
        context=lambda: (received(hooks, smtp), [e["message"] for e in serve.events()]),
    )

    # /metrics matches the state store.
    rows = status_rows(config)
    found = serve.metrics()
    for name in ("alpha", "bravo"):
        assert rows[name]["valid_to"], rows[name]
        expiry = datetime.fromisoformat(rows[name]["valid_to"]).timestamp()
        key = (
            "patwarden_token_expiry_timestamp_seconds",
            (("organization", emulator["organization"]), ("token", name)),
        )
        assert found[key] == pytest.approx(expiry, abs=1), name
    assert (
        found[("patwarden_token_last_outcome", (("outcome", "rolled_back"), ("token", "bravo")))]
        == 1
    )
    assert found[("patwarden_rotations_total", (("outcome", "rotated"),))] >= 1
    assert found[("patwarden_requests_total", (("service", "azure_devops"),))] > 0

    # Key Vault accepts bravo again: the next retry (backoff at most 4 s) rotates it.
    emulator.admin("DELETE", "/faults")
    serve.wait_event("rotated", token="bravo")
    wait_for(
        "bravo's resolved notices",
        lambda: ("expiring:bravo", "resolved") in received(hooks, smtp)[1],
    )

    # An externally revoked current PAT is replaced within one check interval (8 s).
    alpha_now = current_ids(config)["alpha"]
    assert alpha_now
    # Marked before the revocation: a check pass may repair it before `pat revoke` has exited.
    mark = len(serve.events())
    revoked = cli("pat", "revoke", alpha_now, "--yes", config=config)
    assert revoked.code == 0, revoked.output
    revoked_at = now()
    repair = serve.wait_event("repair", token="alpha", after=mark, timeout=30)
    assert alpha_now in repair["message"]
    # Found within one check interval (8 s), plus the second the pass takes to list the PATs:
    # when it was found is the audit's current_lost record (the log line follows the rotation).
    (lost,) = [
        r
        for r in json.loads(
            cli("audit", "--kind", "current_lost", "-o", "json", config=config).stdout
        )
        if r["authorization_id"] == alpha_now
    ]
    assert datetime.fromisoformat(lost["at"]) - revoked_at <= timedelta(seconds=9), lost
    serve.wait_event("rotated", token="alpha", after=mark, timeout=20)
    assert current_ids(config)["alpha"] != alpha_now

    # SIGHUP: an invalid config is reported and the old one kept; a valid one is loaded.
    good = config.read_text()
    broken = yaml.safe_load(good)
    broken["service"]["check_interval"] = "soon"
    save_config(config, broken)
    mark = len(serve.events())
    serve.signal(signal.SIGHUP)
    failed_reload = serve.wait_event("reload_failed", after=mark)
    assert "service.check_interval" in failed_reload["message"]
    assert serve.get("/healthz").status_code == 200
    serve_config(emulator, tmp_path, receivers, extra_token=True)
    serve.signal(signal.SIGHUP)
    serve.wait_event("reloaded", after=mark)
    serve.wait_event("rotated", token="charlie", after=mark)

    # SIGKILL while charlie's new PAT is being created; the restart resumes from the journal.
    charlie = current_ids(config)["charlie"]
    assert charlie
    emulator.admin("POST", "/faults", json={"route": "POST .*/_apis/tokens/pats", "kind": "hold"})
    assert cli("pat", "revoke", charlie, "--yes", config=config).code == 0
    wait_for("a held PAT create", lambda: emulator.admin("GET", "/faults/held").json()["held"])
    serve.process.kill()
    assert serve.process.wait(timeout=10) == -signal.SIGKILL
    emulator.admin("POST", "/faults/release", json={"action": "continue"})  # its answer is lost
    emulator.admin("DELETE", "/faults")
    mark = len(serve.events())
    serve = start_serve(config, serve.log, env=HOOK_ENV)
    serves.append(serve)
    serve.wait_event("leader", after=mark)  # the dead leader's lock went with it
    wait_for("charlie back in its desired state", lambda: _settled(config, charlie), timeout=30)

    # The rotator's refresh token is revoked: /readyz turns not ready, "re-login needed now".
    username = emulator["identities"]["rotator"]["username"]
    emulator.admin("POST", "/refresh-tokens/revoke", json={"username": username})
    not_ready = wait_for("/readyz to turn 503", lambda: _not_ready(serve))
    assert not_ready["ready"] is False
    (problem,) = not_ready["problems"]
    assert problem.startswith("identity rotator: ")
    assert "patwarden login --identity rotator" in problem
    assert serve.metrics()[("patwarden_service_ready", ())] == 0
    wait_for(
        "re-login now notice",
        lambda: ("relogin_now:rotator", "started") in received(hooks, smtp)[1],
    )


def started_at(tmp_path: Path, operation_id: str) -> datetime:
    """When the service began operation *operation_id* (the journal's clock: the tests')."""
    with SqliteStateStore(path=tmp_path / "state" / "state.db", now=now) as store:
        operation = store.load_operation(operation_id)
    assert operation is not None, operation_id
    return operation.started_at


def _settled(config: Path, revoked: str) -> bool:
    plan = cli("plan", "-o", "json", config=config)
    rows = {row["token"]: row for row in json.loads(plan.stdout)["tokens"]}
    charlie = rows["charlie"]
    return (
        charlie["current_authorization_id"] not in (None, revoked)
        and not charlie["unfinished_operations"]
    )


def _not_ready(serve: Serve) -> dict[str, Any] | None:
    response = serve.get("/readyz")
    body: dict[str, Any] = response.json()
    return body if response.status_code == 503 else None


def test_a_public_listen_without_authentication_is_refused(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    config = write_config(emulator, tmp_path)
    run = cli("serve", "--listen", "0.0.0.0:9464", config=config)
    assert run.code == 2
    assert "--listen 0.0.0.0:9464 accepts connections from other machines" in run.stderr
    assert "service.bearer_token" in run.stderr
    assert "Traceback" not in run.output


def test_sigterm_leaves_a_stuck_step_journaled_and_exits_0(
    emulator: RunningEmulator,
    tmp_path: Path,
    receivers: tuple[Tls, WebhookReceiver, SmtpReceiver],
) -> None:
    config = serve_config(emulator, tmp_path, receivers)
    data = yaml.safe_load(config.read_text())
    data["tokens"] = {"alpha": data["tokens"]["alpha"]}
    data["service"]["shutdown_timeout"] = "2s"
    save_config(config, data)
    login_in_process(emulator, config)
    emulator.admin("POST", "/faults", json={"route": "POST .*/_apis/tokens/pats", "kind": "hold"})
    serve = start_serve(config, tmp_path / "serve.log", env=HOOK_ENV)
    try:
        wait_for("a held PAT create", lambda: emulator.admin("GET", "/faults/held").json()["held"])
        serve.signal(signal.SIGTERM)
        assert serve.process.wait(timeout=20) == 0
    finally:
        serve.stop()
        emulator.admin("DELETE", "/faults")  # the held create goes through; its answer is lost
    stopped = serve.events()[-1]
    assert stopped["event"] == "stopped"
    assert "did not finish within 2 s; it stays journaled" in stopped["message"]
    planned = json.loads(cli("plan", "-o", "json", config=config).stdout)["tokens"]
    assert planned[0]["unfinished_operations"]  # journaled, not lost
    resumed = cli("rotate", "-o", "json", config=config)
    assert resumed.code == 0, resumed.output
    assert _settled_token(config, "alpha")


def _settled_token(config: Path, name: str) -> bool:
    plan = cli("plan", "-o", "json", config=config)
    rows = {row["token"]: row for row in json.loads(plan.stdout)["tokens"]}
    return bool(rows[name]["current_authorization_id"]) and not rows[name]["unfinished_operations"]


def test_a_burst_of_signals_still_stops_serve_cleanly(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    # A handler that set a threading.Event deadlocked when a second SIGTERM arrived inside the
    # first one's Event.set (the replicas suite's teardown sends two): serve never exited.
    config = write_config(emulator, tmp_path, service={"check_interval": "2s"})
    login_in_process(emulator, config)
    serve = start_serve(config, tmp_path / "serve.log")
    try:
        serve.wait_event("serving")
        until = time.monotonic() + 3
        while time.monotonic() < until:  # each handled SIGHUP was one more chance to deadlock
            serve.signal(signal.SIGHUP)
        for _ in range(100):
            serve.signal(signal.SIGTERM)
        assert serve.process.wait(timeout=30) == 0
    finally:
        serve.stop()
    events = serve.events()
    assert "reloaded" in [e["event"] for e in events], serve.timeline()  # SIGHUPs were read
    assert events[-1]["event"] == "stopped", serve.timeline()
    assert "stopped cleanly" in events[-1]["message"]
