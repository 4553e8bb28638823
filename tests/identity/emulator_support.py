"""Helpers for identity tests running the real MSAL / azure-identity clients on the emulator."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import RunningEmulator

ADO = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_DEFAULT = f"{ADO}/.default"
KEY_ENV = "PATWARDEN_CACHE_KEY"


def config_for(
    emulator: RunningEmulator,
    tmp_path: Path,
    *,
    rotator: dict[str, Any] | None = None,
    identities: dict[str, Any] | None = None,
) -> Path:
    """Write a patwarden.yaml for the emulator (file cache keyed from $PATWARDEN_CACHE_KEY)."""
    ids = emulator["identities"]
    sp = ids["service_principal"]
    data = {
        "azure": {
            "authority_host": emulator["authority_host"],
            "azure_devops_url": emulator["azure_devops_url"],
            "vssps_url": emulator["vssps_url"],
            "tenant_id": emulator["tenant_id"],
            "ca_bundle": emulator.ca_bundle,
        },
        "organization": emulator["organization"],
        "state_dir": str(tmp_path / "state"),
        "identities": {
            "rotator": {
                "kind": "user",
                "client_id": ids["public_client"]["client_id"],
                "username": ids["rotator"]["username"],
                "cache": {"key": {"env": KEY_ENV}},
                **(rotator or {}),
            },
            "writer": {
                "kind": "service_principal",
                "client_id": sp["client_id"],
                "client_secret": {"env": "WRITER_SECRET"},
            },
            **(identities or {}),
        },
    }
    path = tmp_path / "patwarden.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


class ApprovingStream(io.StringIO):
    """Where `login` prints Entra's instructions: approves the pending code through the admin API.

    It plays the human who opens the URL, types the code and completes MFA.
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
                body = {"user_code": code["user_code"], "username": self.username}
                self.emulator.admin("POST", "/device-codes/approve", json=body)
                self.approved.append(code["user_code"])
        return written


_GET_TOKEN = textwrap.dedent(
    """
    import json, sys
    import jwt
    from patwarden.config import load_config
    from patwarden.errors import PatwardenError
    from patwarden.identity.credential_set import CredentialSet

    creds = CredentialSet(load_config(sys.argv[1]))
    try:
        token = creds.get(sys.argv[2]).get_token(*sys.argv[3:])
    except PatwardenError as err:
        print(json.dumps({"error": type(err).__name__, "message": str(err)}))
        sys.exit(err.exit_code)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    print(json.dumps({key: claims.get(key) for key in ("scp", "upn", "aud")}))
    """
)


def get_token_in_new_process(
    config: Path, identity: str, *scopes: str, env: dict[str, str]
) -> tuple[int, dict[str, Any], str]:
    """Run `get_token` in a fresh interpreter with no stdin; return (exit code, summary, stderr).

    The summary holds token claims (scp, upn, aud), never the token itself.
    """
    result = subprocess.run(
        [sys.executable, "-c", _GET_TOKEN, str(config), identity, *scopes],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    return result.returncode, summary, result.stderr
