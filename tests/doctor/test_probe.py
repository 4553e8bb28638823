"""``doctor --probe`` against the emulator: everything matches by default, and emulator switches
(faults, policies, identities) make the probes report the differences a real tenant could show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from patwarden.app.context import AppContext
from patwarden.config.model import load_config
from patwarden.doctor.probe import run_probe
from patwarden.doctor.probe_report import ProbeReport, Verdict
from patwarden.doctor.shapes import EXPECTED, Observed, compare
from tests.conftest import RunningEmulator
from tests.support.clock import TestClock
from tests.support.configs import write_config
from tests.support.device_codes import login_in_process
from tests.support.issued import assert_no_secret_in
from tests.support.sinks import create_group

pytestmark = pytest.mark.slow
ENDPOINT_BODY = {
    "project": "infra",
    "name": "azure-repos",
    "type": "externaltfs",
    "scheme": "Token",
    "parameters": {"apitoken": "old"},
}


def sink_tokens(emulator: RunningEmulator) -> dict[str, Any]:
    create_group(emulator, variables={"OTHER": {"value": "1"}})
    endpoint = emulator.admin("POST", "/service-endpoints", json=ENDPOINT_BODY).json()["id"]
    return {
        "flux": {
            "scopes": ["vso.code"],
            "lifetime": "30d",
            "rotate_before": "7d",
            "sinks": [
                {"kind": "variable_group", "project": "infra", "group": "gitops",
                 "variable": "FLUX_PAT", "identity": "writer"},
                {"kind": "service_connection", "project": "infra", "endpoint_id": endpoint,
                 "identity": "writer"},
            ],
        }
    }  # fmt: skip


def probe(config: Path, *, allow_write: bool = False) -> ProbeReport:
    # The tests' clock agrees with the emulator's at any pinned date (the probe PAT's expiry).
    with AppContext(config=load_config(config), clock=TestClock()) as app:
        return run_probe(
            config=app.config, credentials=app.credentials, clock=app.clock, allow_write=allow_write
        )


def results(report: ProbeReport) -> dict[str, Any]:
    return {r.probe: r for r in report.results}


@pytest.fixture
def signed_in(emulator: RunningEmulator, tmp_path: Path) -> Path:
    config = write_config(emulator, tmp_path, tokens=sink_tokens(emulator))
    login_in_process(emulator, config)
    return config


def test_against_the_emulator_every_probe_matches(
    emulator: RunningEmulator, signed_in: Path
) -> None:
    report = probe(signed_in, allow_write=True)
    verdicts = {r.probe: r.verdict for r in report.results}
    assert verdicts.pop("tokenadmin.list") is Verdict.SKIPPED  # the rotator is no admin
    assert set(verdicts.values()) == {Verdict.MATCH}, report.to_json()
    assert set(verdicts) == {
        *(name for name in EXPECTED if name != "tokenadmin.list"),
        "rate-limit headers",
    }
    assert report.exit_code == 0
    # The probe's PAT: vso.profile, one hour, and revoked again.
    username = emulator["identities"]["rotator"]["username"]
    pats = emulator.admin("GET", "/pats", params={"username": username}).json()["value"]
    (made,) = [p for p in pats if p["displayName"].startswith("patwarden-probe-")]
    assert (made["scope"], made["revoked"]) == ("vso.profile", True)
    assert_no_secret_in(emulator, json.dumps(report.to_json()))


def test_token_admin_is_probed_as_the_auditor(emulator: RunningEmulator, tmp_path: Path) -> None:
    example = yaml.safe_load(Path(emulator["example_config"]).read_text())
    auditor = {**example["identities"]["rotator"]}
    auditor["username"] = emulator["identities"]["org_admin"]["username"]
    config = write_config(emulator, tmp_path, identities={"auditor": auditor}, auditor="auditor")
    login_in_process(emulator, config)
    login_in_process(emulator, config, "auditor")
    admin = results(probe(config))["tokenadmin.list"]
    assert admin.verdict is Verdict.MATCH, admin.detail


def test_a_fault_that_changes_status_and_envelope_is_a_difference(
    emulator: RunningEmulator, signed_in: Path
) -> None:
    emulator.admin(
        "POST", "/faults", json={"route": "^GET /vssps/[^/]+/_apis/graph/", "kind": "status",
                                 "status": 503}
    )  # fmt: skip
    emulator.admin(
        "POST", "/faults", json={"route": "^GET /vssps/[^/]+/_apis/tokens/pats", "kind": "throttle",
                                 "retry_after": 1, "count": 1}
    )  # fmt: skip
    report = probe(signed_in)
    found = results(report)
    assert found["graph.users"].verdict is Verdict.DIFFERS
    assert found["graph.users"].differences == (
        "status 503, expected 200",
        "envelope vss-error, expected collection",
    )
    assert found["pats.list.active"].differences[0] == "status 429, expected 200"
    assert found["pats.list.revoked"].verdict is Verdict.MATCH
    assert "seen: X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, retry-after" in (
        found["rate-limit headers"].detail
    )
    assert report.exit_code == 1


def test_a_creation_policy_shows_as_a_null_pat(emulator: RunningEmulator, signed_in: Path) -> None:
    emulator.admin("PUT", "/policies", json={"disable_pat_creation": True})
    found = results(probe(signed_in, allow_write=True))
    assert found["pats.create"].differences == ("patToken is null, expected an object",)
    assert found["pats.revoke"].verdict is Verdict.SKIPPED
    assert "if a PAT named patwarden-probe-" in found["pats.revoke"].detail


def test_a_revoke_answering_200_still_matches(emulator: RunningEmulator, signed_in: Path) -> None:
    emulator.admin("PUT", "/policies", json={"revoke_status": 200})
    revoke = results(probe(signed_in, allow_write=True))["pats.revoke"]
    assert revoke.verdict is Verdict.MATCH
    assert revoke.observed is not None
    assert (revoke.observed.status, revoke.observed.envelope) == (200, "object")


def test_without_a_sign_in_the_probe_fails_with_exit_3(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    report = probe(write_config(emulator, tmp_path))
    found = results(report)
    assert found["sign-in"].verdict is Verdict.FAILED
    assert "run `patwarden doctor` for the fix" in found["sign-in"].detail
    assert found["pats.list.all"].verdict is Verdict.SKIPPED
    assert found["pats.sp-refused"].verdict is Verdict.MATCH  # the writer needs no sign-in
    assert report.exit_code == 3


def test_the_recording_holds_shapes_only_and_replays(
    emulator: RunningEmulator, signed_in: Path
) -> None:
    recording = probe(signed_in, allow_write=True).recording()
    text = json.dumps(recording)
    ids = emulator["identities"]
    for value in (
        emulator["organization"],
        ids["rotator"]["username"],
        ids["service_principal"]["client_id"],
        "infra",
        "gitops",
        "OTHER",
        "azure-repos",
        "apitoken",
        "patwarden-probe-2",  # the probe PAT's name (patwarden-probe-<date>)
        "127.0.0.1",
    ):
        assert value not in text, value
    assert_no_secret_in(emulator, text)
    # Replayed as a fixture: every recorded shape compares clean with what patwarden expects.
    for entry in recording["probes"]:
        if entry["probe"] in EXPECTED and entry["observed"]:
            observed = Observed(
                **{**entry["observed"], "headers": tuple(entry["observed"]["headers"])}
            )
            assert compare(EXPECTED[entry["probe"]], observed) == entry["differences"]
