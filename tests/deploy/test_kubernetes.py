"""The Kubernetes recipe (deploy/kubernetes/): valid against Kubernetes' own JSON schemas, and
the properties the doc promises (2 serve replicas on PostgreSQL, probes, scrape annotations,
non-root, read-only root filesystem).

The schemas come offline with the ``kubernetes-validate`` package (strict: unknown fields are
errors), for the oldest Kubernetes the recipe supports and the newest the package knows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.support import DEPLOY, check_config, cli_accepts
from tests.service.seeded import seeded_snapshot
from tests.service.test_http import serve

KUBERNETES = DEPLOY / "kubernetes"
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
PORT = 9464


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resource(kind: str) -> dict[str, Any]:
    found = [doc for path in MANIFESTS for doc in _documents(path) if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _pod(kind: str) -> dict[str, Any]:
    resource = _resource(kind)
    if kind == "CronJob":
        return dict(resource["spec"]["jobTemplate"]["spec"]["template"])
    return dict(resource["spec"]["template"])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    for document in _documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    deployment = _resource("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_serve_runs_two_replicas_probed_on_readyz_and_healthz_with_scrape_annotations() -> None:
    deployment = _resource("Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = _pod("Deployment")
    (container,) = pod["spec"]["containers"]
    assert cli_accepts(container["args"]) == "patwarden serve"
    assert container["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["/opt/patwarden/bin/python", "-c"]
    assert '"/readyz"' in probe[2]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    service = _resource("Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    budget = _resource("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pods_run_non_root_on_a_read_only_root_filesystem(kind: str) -> None:
    pod = _pod(kind)["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/patwarden"]["readOnly"] is True
        writable = {"/tmp", "/var/lib/patwarden"}  # noqa: S108 - mount points in the pod
        assert writable <= set(mounts)  # the only writable places


def test_the_cronjob_rotates_hourly_without_overlapping_runs() -> None:
    cronjob = _resource("CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = _pod("CronJob")["spec"]["containers"]
    assert cli_accepts(container["args"]) == "patwarden rotate"


def test_the_config_uses_postgresql_workload_identity_and_passes_config_check(
    tmp_path: Path,
) -> None:
    text = _resource("ConfigMap")["data"]["patwarden.yaml"]
    config = yaml.safe_load(text)
    assert config["state"]["backend"] == "postgresql"
    assert config["identities"]["writer"]["kind"] == "workload_identity"
    assert config["identities"]["cache"]["kind"] == "workload_identity"
    assert config["identities"]["rotator"]["cache"]["identity"] == "cache"
    assert config["identities"]["rotator"]["cache"]["kind"] == "key_vault"
    assert config["service"]["listen"] == f"0.0.0.0:{PORT}"
    # Every variable the config reads is set from the Secret in both pods.
    for kind in ("Deployment", "CronJob"):
        (container,) = _pod(kind)["spec"]["containers"]
        names = {e["name"] for e in container["env"]}
        assert {"PATWARDEN_PG_PASSWORD", "PATWARDEN_CACHE_KEY"} <= names
    (serve_container,) = _pod("Deployment")["spec"]["containers"]
    assert "PATWARDEN_BEARER_TOKEN" in {e["name"] for e in serve_container["env"]}
    check_config(text, tmp_path)


def test_the_readiness_probe_asks_readyz_with_the_bearer_token() -> None:
    """The probe's own script against serve's real HTTP server: ready → 0, not ready → 1."""
    (container,) = _pod("Deployment")["spec"]["containers"]
    script = container["readinessProbe"]["exec"]["command"][2]
    assert script.count(f'"127.0.0.1", {PORT}') == 1
    token = "probe-token-for-tests"  # a test value, not a credential
    snapshot = [seeded_snapshot()]
    server = serve(snapshot, bearer=token)
    try:
        port = server.address.rsplit(":", 1)[1]
        local = script.replace(f'"127.0.0.1", {PORT}', f'"127.0.0.1", {port}')

        def probe(bearer: str) -> int:
            env = {"PATWARDEN_BEARER_TOKEN": bearer}
            return subprocess.run([sys.executable, "-c", local], env=env, check=False).returncode

        assert probe(token) == 0
        assert probe("wrong") == 1
        snapshot[0] = seeded_snapshot(broken_sign_in=True)
        assert probe(token) == 1
    finally:
        server.stop()
