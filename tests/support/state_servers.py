"""Real servers for the state backends: Debian's PostgreSQL and Microsoft's Azurite (from npm).

Both run on 127.0.0.1 in temporary directories for the session (one per xdist worker):

- PostgreSQL from ``/usr/lib/postgresql/*/bin`` (``.ci/run`` installs the ``postgresql``
  package); ``initdb`` refuses root, so as root the cluster runs as ``nobody``. Each test gets
  a database of its own (:func:`PostgresServer.new_database`).
- Azurite, pinned in ``tests/azurite/package.json`` and installed by ``make azurite`` (npm ci),
  over HTTPS with a certificate from a throwaway trustme CA, in ``--oauth basic`` mode: it accepts
  the emulator's Entra tokens (issuer ``https://sts.windows.net/…``, audience
  ``https://storage.azure.com``), so the tests authenticate exactly like production.
  ``ca_bundle`` holds the emulator's CA and Azurite's, for ``azure.ca_bundle``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
AZURITE_DIR = REPO / "tests" / "azurite"
AZURITE = AZURITE_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
# Azurite's documented development account (public, the same in every Azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"{what} exited with {process.returncode}: {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


# --- PostgreSQL --------------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: float(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresServer:
    port: int
    user: str
    process: subprocess.Popen[bytes]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_postgres(base: Path) -> PostgresServer:
    bindir = postgres_bin()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    as_root = os.geteuid() == 0
    owner: dict[str, Any] = {}
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    if as_root:
        nobody = pwd.getpwnam("nobody")
        base.chmod(0o755)
        for path in (base, sockets):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        owner = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    user = "patwarden"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust",
         "--no-sync", "-E", "UTF8", "--locale=C"],
        check=True, capture_output=True, cwd=base, **owner,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
         "-k", str(sockets), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
         "-c", "max_connections=200", "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base, **owner,
    )  # fmt: skip
    _wait_port(port, process, "postgres", 30)
    server = PostgresServer(port=port, user=user, process=process)
    _wait_accepting(server)
    return server


def _wait_accepting(server: PostgresServer, timeout: float = 30) -> None:
    """The port opens before the server accepts sessions ("the database system is starting up")."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(server.url(), connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    base = Path(tempfile.mkdtemp(prefix="patwarden-pg-"))
    server = start_postgres(base)
    try:
        yield server
    finally:
        server.process.send_signal(signal.SIGINT)  # "fast" shutdown: no wait for clients
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        if server.process.stderr is not None:
            server.process.stderr.close()
        shutil.rmtree(base, ignore_errors=True)


# --- Azurite -----------------------------------------------------------------------------------


@dataclass
class AzuriteServer:
    port: int
    ca_pem: Path  # the CA of Azurite's certificate
    process: subprocess.Popen[bytes]

    @property
    def account_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def new_container(self) -> str:
        """Create an empty container (with the documented key) and return its name."""
        from azure.core.credentials import AzureNamedKeyCredential
        from azure.storage.blob import BlobServiceClient

        name = f"state-{uuid.uuid4().hex[:12]}"
        key = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
        with BlobServiceClient(
            self.account_url, credential=key, connection_verify=str(self.ca_pem)
        ) as service:
            service.create_container(name)
        return name


def start_azurite(base: Path) -> AzuriteServer:
    import trustme

    if not AZURITE.exists():
        pytest.fail("Azurite is not installed: run `make azurite` (npm ci in tests/azurite)")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    cert.private_key_pem.write_to_path(str(base / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
    port = free_port()
    process = subprocess.Popen(
        ["node", str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(base / "data"), "--cert", str(base / "cert.pem"),
         "--key", str(base / "key.pem"), "--oauth", "basic", "--skipApiVersionCheck",
         "--disableProductStyleUrl", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=base,
        env={**os.environ, "AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{AZURITE_KEY}"},
    )  # fmt: skip
    _wait_port(port, process, "azurite", 60)
    return AzuriteServer(port=port, ca_pem=base / "ca.pem", process=process)


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    base = Path(tempfile.mkdtemp(prefix="patwarden-azurite-"))
    server = start_azurite(base)
    try:
        yield server
    finally:
        server.process.kill()  # a throwaway: nothing to flush
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        if server.process.stderr is not None:
            server.process.stderr.close()
        shutil.rmtree(base, ignore_errors=True)
