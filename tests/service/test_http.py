"""The endpoints over real HTTP on 127.0.0.1: /healthz, /readyz, /metrics (parsed with
prometheus_client.parser), the status page's headers, and the bearer token."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from patwarden.config.service import ServiceConfig, ServiceTls
from patwarden.secret import Secret
from patwarden.service.http import Endpoints, HttpServer
from patwarden.service.metrics import Counters, build_registry, render_metrics
from patwarden.service.snapshot import Snapshot
from tests.service.seeded import seeded_snapshot

TOKEN = "scrape-token-for-tests"  # a test value, not a credential


def serve(
    snapshot: list[Snapshot], *, bearer: str | None = None, settings: ServiceConfig | None = None
) -> HttpServer:
    counters = Counters()
    counters.add("patwarden_rotations", "rotated", amount=3)
    counters.add("patwarden_failures", "rotation")
    registry = build_registry(lambda: snapshot[0], counters)
    server = HttpServer(
        settings or ServiceConfig(listen="127.0.0.1:0"),
        Endpoints(
            snapshot=lambda: snapshot[0],
            metrics=lambda: render_metrics(registry),
            bearer_token=Secret(bearer) if bearer else None,
        ),
    )
    server.start()
    return server


@pytest.fixture
def current() -> list[Snapshot]:
    return [seeded_snapshot()]


@pytest.fixture
def server(current: list[Snapshot]) -> Iterator[HttpServer]:
    running = serve(current)
    try:
        yield running
    finally:
        running.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_readiness_and_metrics(server: HttpServer, current: list[Snapshot]) -> None:
    snap = current[0]
    with httpx.Client(base_url=server.address) as client:
        assert client.get("/healthz").text == "ok\n"
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True
        metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(metrics.text)
    flux, nuget = snap.tokens[0], snap.tokens[1]
    assert flux.valid_to is not None
    assert flux.next_rotation is not None
    expiry = (
        "patwarden_token_expiry_timestamp_seconds",
        (("organization", "contoso"), ("token", "flux-git")),
    )
    assert found[expiry] == flux.valid_to.timestamp()
    due = ("patwarden_token_next_rotation_timestamp_seconds", (("token", "flux-git"),))
    assert found[due] == flux.next_rotation.timestamp()
    assert (
        found[("patwarden_token_last_outcome", (("outcome", "failed"), ("token", nuget.name)))] == 1
    )
    assert (
        found[("patwarden_token_last_outcome", (("outcome", "rotated"), ("token", nuget.name)))]
        == 0
    )
    assert found[("patwarden_token_drift", (("token", "argo-repo"),))] == 1
    deadline = snap.identities[0].relogin_deadline
    assert deadline is not None
    relogin = ("patwarden_identity_relogin_deadline_timestamp_seconds", (("identity", "rotator"),))
    assert found[relogin] == deadline.timestamp()
    assert found[("patwarden_rotations_total", (("outcome", "rotated"),))] == 3
    assert found[("patwarden_failures_total", (("kind", "rotation"),))] == 1
    assert found[("patwarden_service_leader", ())] == 1
    assert ("process_resident_memory_bytes", ()) in found


def test_readyz_says_what_is_wrong(server: HttpServer, current: list[Snapshot]) -> None:
    current[0] = seeded_snapshot(broken_sign_in=True)
    response = httpx.get(server.address + "/readyz")
    assert response.status_code == 503
    body: dict[str, Any] = response.json()
    assert body["ready"] is False
    assert body["problems"] == [
        "identity rotator: refresh token revoked — run `patwarden login --identity rotator`"
    ]
    assert [i["ok"] for i in body["identities"]] == [False, True]


def test_status_page_headers_are_strict(server: HttpServer) -> None:
    response = httpx.get(server.address + "/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert "<script>x</script>" not in response.text  # every value is escaped
    assert "&lt;script&gt;" in response.text


def test_a_bearer_token_guards_everything_but_healthz(current: list[Snapshot]) -> None:
    running = serve(current, bearer=TOKEN)
    try:
        with httpx.Client(base_url=running.address) as client:
            assert client.get("/healthz").status_code == 200
            for path in ("/readyz", "/metrics", "/"):
                assert client.get(path).status_code == 401
                wrong = client.get(path, headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
                good = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
                assert good.status_code == 200
    finally:
        running.stop()


def test_mtls_wants_a_client_certificate_from_the_configured_ca(
    current: list[Snapshot], tmp_path: Path
) -> None:
    ca, stranger = trustme.CA(), trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_cert.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    tls = ServiceTls(
        certificate=tmp_path / "server.pem",
        key=tmp_path / "server.pem",
        client_ca=tmp_path / "ca.pem",
    )
    running = serve(current, settings=ServiceConfig(listen="127.0.0.1:0", tls=tls))
    trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    try:
        assert running.address.startswith("https://127.0.0.1:")
        for name, issuer in (("good", ca), ("bad", stranger)):
            issuer.issue_cert(f"{name}@clients").private_key_and_cert_chain_pem.write_to_path(
                tmp_path / f"{name}.pem"
            )
        good = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        good.load_cert_chain(str(tmp_path / "good.pem"))
        with httpx.Client(verify=good) as client:
            assert client.get(running.address + "/readyz").status_code == 200
        bad = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        bad.load_cert_chain(str(tmp_path / "bad.pem"))
        for context in (trusted, bad):  # no certificate, or one another CA signed
            with pytest.raises(httpx.HTTPError), httpx.Client(verify=context) as client:
                client.get(running.address + "/readyz")
    finally:
        running.stop()
