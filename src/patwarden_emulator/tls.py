"""The emulator's throwaway certificate authority and server certificate (trustme)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files the server and its clients need."""

    ca_bundle: Path
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_tls(directory: Path) -> TlsFiles:
    """Create (or reuse) a CA and a server certificate for 127.0.0.1 and localhost in *directory*.

    Reusing them across restarts keeps a client's CA bundle valid for a persistent ``--state-dir``.
    """
    import trustme

    files = TlsFiles(
        ca_bundle=directory / CA_FILE,
        server_cert=directory / SERVER_CERT_FILE,
        server_key=directory / SERVER_KEY_FILE,
    )
    if files.ca_bundle.exists() and files.server_cert.exists() and files.server_key.exists():
        return files
    ca = trustme.CA(organization_name="patwarden emulator")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1", common_name="patwarden emulator")
    files.ca_bundle.write_bytes(ca.cert_pem.bytes())
    _write_private(directory / CA_KEY_FILE, ca.private_key_pem.bytes())
    files.server_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    _write_private(files.server_key, leaf.private_key_pem.bytes())
    return files
