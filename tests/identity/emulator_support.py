"""Helpers for identity tests running the real MSAL / azure-identity clients on the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import RunningEmulator
from tests.support.configs import emulator_config, sp_identity, user_identity


def config_for(
    emulator: RunningEmulator,
    tmp_path: Path,
    *,
    rotator: dict[str, Any] | None = None,
    identities: dict[str, Any] | None = None,
) -> Path:
    """A patwarden.yaml for the emulator: ``rotator`` the seeded user (file cache keyed from
    $PATWARDEN_CACHE_KEY; *rotator* overrides), ``writer`` the service principal (secret from
    $WRITER_SECRET), plus *identities*."""
    return emulator_config(
        emulator,
        tmp_path,
        identities={
            "rotator": user_identity(emulator, "rotator", **(rotator or {})),
            "writer": sp_identity(emulator, "WRITER_SECRET"),
            **(identities or {}),
        },
    )


_GET_TOKEN = textwrap.dedent(
    """
    import json, sys
    import jwt
    from patwarden.config.model import load_config
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
