"""Azure DevOps authentication headers, and whether a PAT authenticates on the emulator.

A PAT "works" when ``connectionData`` answers HTTP 200 to it as Basic auth. This module is not
assertion-rewritten by pytest, so a failure of :func:`check_pat` or :func:`check_same` shows only
its message, never a secret value.
"""

from __future__ import annotations

import base64

from tests.support.emulator import RunningEmulator

SUPPRESS = {"X-TFS-FedAuthRedirect": "Suppress", "Accept": "application/json"}


def basic_auth(pat: str) -> str:
    """The ``Authorization`` value for a PAT: Basic with an empty user name."""
    return "Basic " + base64.b64encode(f":{pat}".encode()).decode()


def basic(pat: str) -> dict[str, str]:
    """Headers for PAT (Basic) authentication with redirects suppressed."""
    return {"Authorization": basic_auth(pat), **SUPPRESS}


def bearer(token: str) -> dict[str, str]:
    """Headers for Entra bearer authentication with redirects suppressed."""
    return {"Authorization": f"Bearer {token}", **SUPPRESS}


def pat_status(emulator: RunningEmulator, pat: str, org: str = "contoso") -> int:
    """The HTTP status of ``connectionData`` with *pat* as Basic auth (200: it authenticates)."""
    with emulator.http() as client:
        response = client.get(
            f"{emulator['azure_devops_url']}/{org}/_apis/connectionData", headers=basic(pat)
        )
    return response.status_code


def check_pat(
    emulator: RunningEmulator, pat: str, *, works: bool, what: str, org: str = "contoso"
) -> None:
    """Assert that *pat* authenticates in *org* (or not) without ever showing its value."""
    status = pat_status(emulator, pat, org)
    expected = "authenticate" if works else "be refused"
    assert (status == 200) is works, f"{what}: expected the PAT to {expected}, got HTTP {status}"


def check_same(first: str, second: str, *, what: str) -> None:
    """Assert two secret values are equal without showing them in a failure."""
    assert first == second, f"{what}: the values differ"
