"""The device-code flow on the emulator, with the admin API playing the person who signs in.

The person opens the URL, types the code and completes MFA; here that is
``POST /_admin/device-codes/approve`` (or ``/deny``). Three ways to drive a flow:

- raw HTTP (:func:`start_device_code`, :func:`poll`, :func:`approve`, :func:`device_code_token`);
- patwarden's own in-process login, printing its instructions to an :class:`ApprovingStream`
  (:func:`login`, :func:`login_in_process`);
- a ``patwarden login`` process, whose pending code :func:`approve_next_device_code` settles.
"""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from patwarden.config.model import load_config
from patwarden.identity.credential_set import CredentialSet
from tests.support.clock import TestClock
from tests.support.emulator import RunningEmulator
from tests.support.tokens import ADO, ADO_PATS, post_token, public_client_id, tenant_url

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# The seeded user each identity of the test configs signs in as.
SIGNS_IN_AS = {"rotator": "rotator", "auditor": "org_admin"}


def start_device_code(emulator: RunningEmulator, *, scope: str | None = None) -> dict[str, Any]:
    """Begin a device flow for the public client over raw HTTP."""
    with emulator.http() as client:
        response = client.post(
            f"{tenant_url(emulator)}/oauth2/v2.0/devicecode",
            data={
                "client_id": public_client_id(emulator),
                "scope": scope or " ".join([*ADO_PATS, "offline_access", "openid", "profile"]),
            },
        )
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    return flow


def poll(emulator: RunningEmulator, device_code: str) -> httpx.Response:
    """One device-code poll of the token endpoint."""
    return post_token(
        emulator,
        {
            "grant_type": DEVICE_CODE_GRANT,
            "client_id": public_client_id(emulator),
            "device_code": device_code,
            "client_info": "1",
        },
    )


def approve(emulator: RunningEmulator, user_code: str, username: str | None = None) -> None:
    """Approve *user_code* as *username* (the emulator's default user when None)."""
    body = (
        {"user_code": user_code}
        if username is None
        else {"user_code": user_code, "username": username}
    )
    emulator.admin("POST", "/device-codes/approve", json=body)


def device_code_token(
    emulator: RunningEmulator, username: str | None = None, *, scopes: str = ".default"
) -> str:
    """A delegated Azure DevOps token for *username* (default: the rotator) through the real
    device-code flow over raw HTTP; *scopes* are Azure DevOps scopes, space-separated."""
    username = username or emulator["identities"]["rotator"]["username"]
    scope = " ".join(f"{ADO}/{item}" for item in scopes.split()) + " offline_access"
    flow = start_device_code(emulator, scope=scope)
    approve(emulator, flow["user_code"], username)
    issued = poll(emulator, flow["device_code"])
    issued.raise_for_status()
    return str(issued.json()["access_token"])


class ApprovingStream(io.StringIO):
    """Where `login` prints Entra's instructions: approves the pending codes through the admin API.

    It plays the human who opens the URL, types the code and completes MFA, as *username*
    (default: the rotator); :attr:`approved` lists the codes it approved.
    """

    def __init__(self, emulator: RunningEmulator, *, username: str | None = None) -> None:
        super().__init__()
        self.emulator = emulator
        self.username = username or emulator["identities"]["rotator"]["username"]
        self.approved: list[str] = []

    def write(self, text: str) -> int:
        written = super().write(text)
        if "code" in text:
            pending = self.emulator.admin("GET", "/device-codes").json()["value"]
            for code in pending:
                approve(self.emulator, code["user_code"], self.username)
                self.approved.append(code["user_code"])
        return written


def login(emulator: RunningEmulator, config: Path, identity: str) -> CredentialSet:
    """Sign *identity* of *config* in without the CLI (fast: the code is approved before the
    first poll), as the seeded user :data:`SIGNS_IN_AS` names; return the credential set."""
    credentials = CredentialSet(load_config(config), clock=TestClock())
    username = emulator["identities"][SIGNS_IN_AS[identity]]["username"]
    try:
        credentials.user(identity).login(
            out=ApprovingStream(emulator, username=username), timeout=60
        )
    except BaseException:
        credentials.close()
        raise
    return credentials


def login_in_process(emulator: RunningEmulator, config: Path, identity: str = "rotator") -> None:
    """:func:`login`, leaving only the encrypted token cache behind (for a CLI run to use)."""
    login(emulator, config, identity).close()


def approve_next_device_code(
    emulator: RunningEmulator, process: subprocess.Popen[str], *, deny: bool = False
) -> str:
    """Play the human: wait for the pending code the CLI asked for, then approve (or deny) it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pending = emulator.admin("GET", "/device-codes").json()["value"]
        if pending:
            code = str(pending[0]["user_code"])
            if deny:
                emulator.admin("POST", "/device-codes/deny", json={"user_code": code})
            else:
                approve(emulator, code)
            return code
        if process.poll() is not None:
            raise AssertionError(f"login exited early with {process.returncode}")
        time.sleep(0.1)
    raise AssertionError("the login never asked Entra for a device code")
