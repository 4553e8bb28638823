"""Run the emulator: bind loopback, serve HTTPS with uvicorn, announce readiness, stop cleanly."""

from __future__ import annotations

import ipaddress
import json
import shutil
import signal
import socket
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from patwarden.errors import EmulatorError
from patwarden.sinks.safe_files import ensure_private_directory
from patwarden_emulator import clock
from patwarden_emulator.context import Emulator


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise EmulatorError(
            f"The emulator only serves on loopback, not on {host!r}.",
            hint="use --host 127.0.0.1 (the default) or another 127.x.y.z address",
        )


def ready_document(emu: Emulator, *, example_config: Path | None) -> dict[str, Any]:
    """What the emulator writes to its ready file once it accepts connections.

    It holds ``admin_token``, the admin API's bearer token: the file is 0600 and stdout gets
    :func:`public_ready_document` instead.
    """
    ids = emu.identities
    return {
        "admin_token": emu.admin_token,
        "authority_host": emu.authority_host,
        "tenant_id": emu.tenant_id,
        "organization": emu.organization,
        "organization_id": emu.organization_id,
        "azure_devops_url": emu.azure_devops_url,
        "vssps_url": emu.vssps_url,
        "key_vault_url": emu.key_vault_url,
        "admin_url": emu.admin_url,
        "ca_bundle": str(emu.tls.ca_bundle),
        "state_dir": str(emu.state_dir),
        "identities": {
            "rotator": {
                "username": ids.rotator.upn,
                "object_id": ids.rotator.oid,
                "mfa_required": ids.rotator.mfa_required,
            },
            "org_admin": {"username": ids.org_admin.upn, "object_id": ids.org_admin.oid},
            "legacy_user": {
                "username": ids.legacy_user.upn,
                "password": ids.legacy_password,
                "mfa_required": False,
            },
            "public_client": {
                "client_id": ids.public_client.client_id,
                "scopes": list(ids.public_client.delegated_scopes),
            },
            "service_principal": {
                "client_id": ids.service_principal.client_id,
                "client_secret": ids.service_principal.secret,
                "certificate_path": str(ids.service_principal_certificate),
                "object_id": ids.service_principal.sp_oid,
            },
        },
        "example_config": str(example_config) if example_config else None,
    }


def public_ready_document(document: dict[str, Any], *, ready_file: Path) -> dict[str, Any]:
    """The ready document as printed on stdout: without the admin token, naming the ready file."""
    public = {key: value for key, value in document.items() if key != "admin_token"}
    public["ready_file"] = str(ready_file)
    return public


def _write_ready_file(path: Path, document: dict[str, Any]) -> None:
    # It holds the admin API's bearer token: the one secret-file helper writes it (a random
    # O_EXCL|O_NOFOLLOW 0600 temp file, then an atomic replace), never a predictable temp name.
    from patwarden.sinks.safe_files import write_atomic

    write_atomic(path, json.dumps(document, indent=2).encode("utf-8"))


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: Path | None = None,
    ready_file: Path | None = None,
    organization: str = "contoso",
    auto_approve_device_codes: bool = False,
    now: datetime | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM.

    Raises:
        EmulatorError: the host is not loopback, or the port cannot be bound.
    """
    import uvicorn

    from patwarden_emulator.app import build_app
    from patwarden_emulator.example_config import write_example_config
    from patwarden_emulator.faults.injector import ConnectionExposingH11Protocol

    _check_loopback(host)
    if now is not None:
        clock.move_to(now)
    temporary = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="patwarden-emulator-")) if temporary else state_dir
    assert directory is not None
    ensure_private_directory(directory, purpose="emulator state directory")
    ready_path = ready_file or directory / "ready.json"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose protocol is TCP, and
    # without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise EmulatorError(
            f"The emulator cannot listen on {host}:{port}: {err.strerror}.",
            hint="choose another --port, or --port 0 to let the system pick a free one",
        ) from err
    sock.listen(1024)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    emu = Emulator.open(
        state_dir=directory,
        base_url=f"https://{url_host}:{bound_port}",
        organization=organization,
        auto_approve_device_codes=auto_approve_device_codes,
    )
    example = write_example_config(emu)
    document = ready_document(emu, example_config=example)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            _write_ready_file(ready_path, document)
            public = public_ready_document(document, ready_file=ready_path)
            sys.stdout.write(json.dumps(public) + "\n")
            sys.stdout.flush()

    config = uvicorn.Config(
        build_app(emu),
        http=ConnectionExposingH11Protocol,  # lets fault injection reset connections
        ssl_certfile=str(emu.tls.server_cert),
        ssl_keyfile=str(emu.tls.server_key),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )
    # uvicorn re-raises the signal that stopped it once shutdown is done; a no-op handler turns
    # that into a normal exit (status 0) instead of death by SIGTERM.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        _Server(config).run(sockets=[sock])
    finally:
        sock.close()
        emu.store.close()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
