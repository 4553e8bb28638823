"""Fleet rotation against a sequential script: N tokens, one Key Vault sink each, at a latency.

Starts ``patwarden emulator`` through the real CLI (device codes approved automatically), signs
the rotator in with ``patwarden login``, injects ``--latency-ms`` into every emulated request (the
emulator's latency fault: real Azure answers in tens to hundreds of milliseconds), then:

1. runs the real ``patwarden rotate`` (a subprocess, at the concurrency patwarden chooses unless
   ``--concurrency`` is given) on N fresh tokens, each with one Key Vault sink. It measures the
   process's wall time, its CPU seconds and peak RSS (``os.wait4``: the rusage of that one child,
   as ``getrusage(RUSAGE_CHILDREN)`` would give it) and the requests it made (the emulator's
   request log);
2. in the same run, on ``--sample`` other tokens, does what a hand-written script does: get an
   Entra token as the rotator (msal, device code), then for each token one after another create
   the PAT with httpx (PAT Lifecycle API) and set it into Key Vault with one ``SecretClient``
   (as the writer service principal) — no verification, no journal, no revocation scheduling.
   Being sequential by construction, its wall time is scaled linearly to N.

The latency bound is what latency alone costs patwarden: its requests per rotation (every
request of the run, shared ones such as sign-in and listings included, divided by the rotations:
a worker sends its token's requests one after another, so each costs one latency on that
worker's path) x latency x N / concurrency. ``bound_ratio`` is patwarden's wall time over it;
``speedup_vs_sequential`` (printed last) is the scaled sequential wall time over patwarden's.

    .venv/bin/python benchmarks/fleet_rotation.py [--tokens 1000] [--latency-ms 100]
        [--sample 100] [--concurrency N]

``--latency-ms 0`` reports the client's CPU per rotation when nothing waits. ``cpu_bound_s`` is
the CPU both processes used during the run (patwarden's and the emulator's, which share the
machine) over its cores: the wall time no concurrency can go below on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.*
from tests.support.configs import write_config
from tests.support.emulator import RunningEmulator, start_emulator, stop_emulator


def kv_token(emulator: RunningEmulator, name: str) -> dict[str, Any]:
    """A token with a single Key Vault sink written as the example config's writer."""
    sink = {
        "kind": "key_vault",
        "vault_url": emulator["key_vault_url"],
        "secret": f"{name}-pat",
        "identity": "writer",
    }
    return {
        "scopes": ["vso.code"],
        "lifetime": "30d",
        "rotate_before": "7d",
        "revoke_after": "1d",
        "sinks": [sink],
    }


def service(path: str) -> str:
    """Which emulated service a logged request went to."""
    if path.startswith("/vssps/") and "/tokens/pats" in path.lower():
        return "pat_api"
    if path.startswith(("/devops/", "/vssps/")):
        return "azure_devops_other"
    if path.startswith("/secrets"):
        return "key_vault"
    return "entra"


def requests_since(emulator: RunningEmulator, since: int) -> tuple[Counter[str], int]:
    """The requests logged after *since*, by service, and the new last sequence number."""
    answer = emulator.admin("GET", f"/requests?since={since}", timeout=60).json()
    return Counter(service(entry["path"]) for entry in answer["requests"]), answer["last_seq"]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process *pid* has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def last_seq(emulator: RunningEmulator) -> int:
    return int(emulator.admin("GET", "/requests?since=0", timeout=60).json()["last_seq"])


@dataclass
class Measured:
    """One measured side of the comparison."""

    rotated: int
    wall_s: float
    requests: Counter[str]
    cpu_s: float = 0.0
    emulator_cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    concurrency: int = 1
    switches: tuple[int, int] = (0, 0)  # voluntary, involuntary context switches

    @property
    def per_rotation(self) -> float:
        return sum(self.requests.values()) / self.rotated if self.rotated else 0.0

    def by_service(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.requests.items()))


def run_patwarden(
    emulator: RunningEmulator, config: Path, concurrency: int | None, profile: str | None = None
) -> Measured:
    """Run the real `patwarden rotate` once; wall time, rusage and requests of that process."""
    since = last_seq(emulator)
    emulator_cpu = process_cpu_s(emulator.process.pid)
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    argv = [
        sys.executable,
        *profiler,
        "-m",
        "patwarden",
        "rotate",
        "--config",
        str(config),
        "-o",
        "json",
    ]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"rotate exited {process.returncode}: {stderr[-2000:]}{stdout[-2000:]}")
    report = json.loads(stdout)
    requests, _ = requests_since(emulator, since)
    return Measured(
        emulator_cpu_s=process_cpu_s(emulator.process.pid) - emulator_cpu,
        rotated=int(report["summary"].get("rotated", 0)),
        wall_s=wall,
        requests=requests,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        concurrency=int(report["concurrency"]),
        switches=(usage.ru_nvcsw, usage.ru_nivcsw),
    )


def run_script(emulator: RunningEmulator, sample: int) -> Measured:
    """What a hand-written rotation script does, one token after another (see the docstring)."""
    import httpx
    import msal
    import requests
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    from patwarden.domain.scopes import PAT_SCOPES

    ids = emulator["identities"]
    authority = f"{emulator['authority_host'].rstrip('/')}/{emulator['tenant_id']}"
    since = last_seq(emulator)
    started = time.perf_counter()
    session = requests.Session()
    session.verify = emulator.ca_bundle
    session.trust_env = False  # else $REQUESTS_CA_BUNDLE replaces the emulator's CA
    app = msal.PublicClientApplication(
        ids["public_client"]["client_id"],
        authority=authority,
        instance_discovery=False,
        http_client=session,
    )
    flow = app.initiate_device_flow(scopes=list(PAT_SCOPES))
    answer = app.acquire_token_by_device_flow(flow)
    if "access_token" not in answer:
        raise SystemExit(f"sign-in failed: {answer.get('error_description')}")
    writer = ClientSecretCredential(
        emulator["tenant_id"],
        ids["service_principal"]["client_id"],
        ids["service_principal"]["client_secret"],
        authority=emulator["authority_host"],
        disable_instance_discovery=True,
        connection_verify=emulator.ca_bundle,
    )
    vault = SecretClient(
        emulator["key_vault_url"],
        writer,
        verify_challenge_resource=False,
        connection_verify=emulator.ca_bundle,
    )
    url = f"{emulator['vssps_url']}/{emulator['organization']}/_apis/tokens/pats"
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    valid_to = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    with httpx.Client(verify=emulator.ca_bundle, timeout=30, headers=headers) as http, vault:
        for i in range(sample):
            body = {
                "displayName": f"script-{i:04d}",
                "scope": "vso.code",
                "validTo": valid_to,
                "allOrgs": False,
            }
            created = http.post(url, params={"api-version": "7.1-preview.1"}, json=body)
            created.raise_for_status()
            vault.set_secret(f"script-{i:04d}-pat", created.json()["patToken"]["token"])
    wall = time.perf_counter() - started
    writer.close()
    logged, _ = requests_since(emulator, since)
    return Measured(rotated=sample, wall_s=wall, requests=logged)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--sample", type=int, default=100, help="tokens the script rotates")
    parser.add_argument("--concurrency", type=int, help="default: what patwarden chooses")
    parser.add_argument("--profile", help="write a cProfile of the rotate process to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="patwarden-fleet-") as tmp:
        work = Path(tmp)
        emulator = start_emulator(work / "emulator", "--auto-approve-device-codes", timeout=60)
        try:
            tokens = {
                f"fleet-{i:04d}": kv_token(emulator, f"fleet-{i:04d}") for i in range(args.tokens)
            }
            config = write_config(emulator, work, tokens=tokens)
            login = subprocess.run(
                [sys.executable, "-m", "patwarden", "login", "--config", str(config)],
                capture_output=True,
                text=True,
                check=False,
            )
            if login.returncode != 0:
                raise SystemExit(f"login failed: {login.stderr}")
            if args.latency_ms:
                rule = {"route": ".", "kind": "latency", "latency_ms": args.latency_ms}
                emulator.admin("POST", "/faults", json=rule)
            ours = run_patwarden(emulator, config, args.concurrency, args.profile)
            script = run_script(emulator, args.sample)
        finally:
            stop_emulator(emulator)
    report(args, ours, script)
    return 0 if ours.rotated == args.tokens else 1


def report(args: argparse.Namespace, ours: Measured, script: Measured) -> None:
    n, latency = args.tokens, args.latency_ms / 1000
    scaled = script.wall_s * n / script.rotated
    bound = ours.per_rotation * latency * n / ours.concurrency
    print(f"tokens={n} latency_ms={args.latency_ms} sinks_per_token=1 (key_vault)")
    print(
        f"patwarden: rotated={ours.rotated} concurrency={ours.concurrency} "
        f"wall_s={ours.wall_s:.2f} requests_per_rotation={ours.per_rotation:.2f} "
        f"({ours.by_service()})"
    )
    print(
        f"patwarden: cpu_s={ours.cpu_s:.2f} cpu_ms_per_rotation="
        f"{1000 * ours.cpu_s / max(ours.rotated, 1):.2f} peak_rss_mb={ours.peak_rss_mb:.1f} "
        f"context_switches={ours.switches[0]}+{ours.switches[1]} (voluntary+involuntary)"
    )
    cores = os.cpu_count() or 1
    print(
        f"cpu_bound_s={(ours.cpu_s + ours.emulator_cpu_s) / cores:.2f} (patwarden cpu "
        f"{ours.cpu_s:.2f} s + emulator cpu {ours.emulator_cpu_s:.2f} s during the run, over "
        f"{cores} cores; load average now {os.getloadavg()[0]:.1f})"
    )
    print(
        f"sequential: sample={script.rotated} wall_s={script.wall_s:.2f} "
        f"requests_per_rotation={script.per_rotation:.2f} ({script.by_service()}) "
        f"scaled_to={n} scaled_wall_s={scaled:.2f}"
    )
    print(
        f"latency_bound_s={bound:.2f} (critical-path requests per rotation "
        f"{ours.per_rotation:.2f} x {latency:.3f} s x {n} / concurrency {ours.concurrency})"
    )
    print(f"bound_ratio={ours.wall_s / bound:.2f}" if bound else "bound_ratio=n/a (latency 0)")
    print(f"speedup_vs_sequential={scaled / ours.wall_s:.2f}")


if __name__ == "__main__":
    sys.exit(main())
