"""The ready-to-use patwarden config the emulator writes into its state directory.

``<state_dir>/patwarden.yaml`` points every Azure URL and the CA bundle at this emulator and
declares two identities: ``rotator`` (the seeded MFA user, signed in with the seeded public client
through ``patwarden login``; its token cache is encrypted with a key file generated once) and
``writer`` (the seeded service principal, its secret in a file), and one managed token,
``example-pat``, rotated into the emulator's Key Vault and a file. Secret files are 0600. The file
is rewritten on every start because the port changes; the cache key is kept, so a sign-in made
against an emulator with a persistent ``--state-dir`` survives restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from patwarden.identity.cache_crypto import generate_cache_key
from patwarden.identity.cache_store import write_private_file
from patwarden_emulator.context import Emulator

CONFIG_FILE = "patwarden.yaml"
CACHE_KEY_FILE = "rotator-cache.key"
WRITER_SECRET_FILE = "writer-secret"  # noqa: S105  # a file name, not a secret
PATWARDEN_STATE = "patwarden"  # patwarden's own state_dir, inside the emulator's

_HEADER = """\
# patwarden configuration for the local emulator at {base_url}
# Written by `patwarden emulator` on every start (the port changes); edit a copy, not this file.
# Try it:
#   export PATWARDEN_CONFIG={path}
#   patwarden login          # then approve the code in the browser, or via the admin API
#   patwarden doctor
#   patwarden rotate         # example-pat into the emulator's Key Vault and {sinks}
#   patwarden status
"""

EXAMPLE_TOKEN = "example-pat"  # noqa: S105  # a managed token's name, not a secret


def example_config(
    emu: Emulator, *, cache_key_file: Path, writer_secret_file: Path
) -> dict[str, Any]:
    """The config document for *emu* (no secret values: only references to the files)."""
    ids = emu.identities
    return {
        "azure": {
            "authority_host": emu.authority_host,
            "azure_devops_url": emu.azure_devops_url,
            "vssps_url": emu.vssps_url,
            "tenant_id": emu.tenant_id,
            "ca_bundle": str(emu.tls.ca_bundle),
            # Its Key Vault is not under *.vault.azure.net: say it is meant (docs/security.md).
            "custom_vault_hosts": {urlsplit(emu.key_vault_url).hostname or "": "emulator"},
        },
        "organization": emu.organization,
        "state_dir": str(emu.state_dir / PATWARDEN_STATE),
        "identities": {
            "rotator": {
                "kind": "user",
                "client_id": ids.public_client.client_id,
                "username": ids.rotator.upn,
                "cache": {"kind": "file", "key": {"file": str(cache_key_file)}},
            },
            "writer": {
                "kind": "service_principal",
                "client_id": ids.service_principal.client_id,
                "client_secret": {"file": str(writer_secret_file)},
            },
        },
        "rotator": "rotator",
        "tokens": {
            EXAMPLE_TOKEN: {
                "scopes": ["vso.code"],
                "lifetime": "30d",
                "rotate_before": "7d",
                "revoke_after": "1d",
                "sinks": [
                    {
                        "kind": "key_vault",
                        "vault_url": emu.key_vault_url,
                        "secret": EXAMPLE_TOKEN,
                        "identity": "writer",
                    },
                    {"kind": "file", "path": str(_example_sink_file(emu)), "format": "raw"},
                ],
            }
        },
    }


def _example_sink_file(emu: Emulator) -> Path:
    return emu.state_dir / PATWARDEN_STATE / "sinks" / f"{EXAMPLE_TOKEN}.txt"


def write_example_config(emu: Emulator) -> Path:
    """Write ``patwarden.yaml`` (and its key and secret files, 0600) into the emulator's state dir.

    The cache key is generated only once; the config and the writer's secret are rewritten.
    """
    state = emu.state_dir
    key_file = state / CACHE_KEY_FILE
    if not key_file.exists():
        write_private_file(key_file, (generate_cache_key().reveal() + "\n").encode("ascii"))
    secret = emu.identities.service_principal.secret or ""
    secret_file = state / WRITER_SECRET_FILE
    write_private_file(secret_file, (secret + "\n").encode("utf-8"))
    _example_sink_file(emu).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state / CONFIG_FILE
    document = example_config(emu, cache_key_file=key_file, writer_secret_file=secret_file)
    header = _HEADER.format(base_url=emu.base_url, path=path, sinks=_example_sink_file(emu))
    text = header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    write_private_file(path, text.encode("utf-8"))
    return path
