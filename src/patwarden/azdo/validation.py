"""Validate names and ids before they reach a URL, so no value can change the path or the host.

Every function returns the value in the form to put into a URL (percent-encoded where needed) or
raises :class:`~patwarden.errors.ConfigError` naming the bad value.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote, urlsplit

from patwarden.errors import ConfigError

# Azure DevOps organization names: letters, digits and hyphens, starting and ending with a letter
# or digit, at most 50 characters (Azure DevOps naming restrictions).
_ORG_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?")
# Project names: at most 64 characters, none of these, not starting with "_" or ".", not ending
# with "." (Azure DevOps naming restrictions). "/" "\" and ".." would also change the URL path.
_PROJECT_FORBIDDEN = set('/\\:*?"<>;#$*{},+=[]|')
_PROJECT_MAX = 64
# Graph subject descriptors look like "aad.<base64url>" / "msa.<…>" / "svc.<…>" (contract §3.1).
_DESCRIPTOR_RE = re.compile(r"[a-z]{2,8}\.[A-Za-z0-9_=+-]{1,500}")
# PAT scope strings: "vso.code_write", "app_token" (contract §7.1). No spaces: the API joins them.
_SCOPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,99}")
_NAMING_DOCS = (
    "https://learn.microsoft.com/en-us/azure/devops/organizations/settings/naming-restrictions"
)


def _has_control(value: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)


def organization(value: str) -> str:
    """Return *value* if it is a valid Azure DevOps organization name.

    Raises:
        ConfigError: the name has characters or a length Azure DevOps does not allow.
    """
    if not isinstance(value, str) or not _ORG_RE.fullmatch(value):
        raise ConfigError(
            f"Invalid Azure DevOps organization name {value!r}: use 1-50 letters, digits or "
            "hyphens, starting and ending with a letter or digit.",
            hint="Set `organization` to the name in https://dev.azure.com/<name>, not a URL.",
            docs=_NAMING_DOCS,
        )
    return value


def project(value: str) -> str:
    """Return *value* percent-encoded for a URL path if it is a valid project name or id.

    Raises:
        ConfigError: the name is empty, too long, has control characters, ``..`` or a character
            Azure DevOps forbids in project names (including ``/`` and ``\\``).
    """
    problem = None
    if not isinstance(value, str) or not value.strip():
        problem = "it is empty"
    elif len(value) > _PROJECT_MAX:
        problem = f"it is longer than {_PROJECT_MAX} characters"
    elif _has_control(value):
        problem = "it contains control characters"
    elif ".." in value:
        problem = "it contains '..'"
    elif forbidden := sorted(set(value) & _PROJECT_FORBIDDEN):
        problem = f"it contains {' '.join(forbidden)!r}"
    elif value.startswith(("_", ".")) or value.endswith("."):
        problem = "it starts with '_' or '.', or ends with '.'"
    if problem:
        raise ConfigError(
            f"Invalid Azure DevOps project name {value!r}: {problem}.",
            hint="Use the project's name as shown in Azure DevOps, or its id (a GUID).",
            docs=_NAMING_DOCS,
        )
    return quote(value, safe="")


def uuid_id(value: str | uuid.UUID, *, what: str) -> str:
    """Return *value* as a canonical lower-case UUID string.

    Raises:
        ConfigError: *value* is not a UUID; *what* names the field (e.g. "authorization id").
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ConfigError(
            f"Invalid {what} {value!r}: expected a GUID like 4ab5764f-4193-4f1d-b995-64144880b7d7.",
            hint=f"Copy the {what} from Azure DevOps or from `patwarden status`.",
        ) from None


def positive_int(value: int, *, what: str) -> str:
    """Return a positive integer id (e.g. a variable group id) as a string.

    Raises:
        ConfigError: *value* is not a positive integer.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"Invalid {what} {value!r}: expected a positive integer.",
            hint=f"Copy the {what} from the Azure DevOps URL (…?variableGroupId=<id>).",
        )
    return str(value)


def descriptor(value: str) -> str:
    """Return a Graph subject descriptor (``aad.<…>``) percent-encoded for a URL path.

    Raises:
        ConfigError: *value* does not look like a subject descriptor.
    """
    if not isinstance(value, str) or not _DESCRIPTOR_RE.fullmatch(value):
        raise ConfigError(
            f"Invalid subject descriptor {value!r}: expected '<type>.<base64>', e.g. 'aad.N2Q…'.",
            hint="Take the descriptor from the Graph users list (`patwarden inventory`).",
        )
    return quote(value, safe="")


def pat_scopes(values: tuple[str, ...]) -> tuple[str, ...]:
    """Return the PAT scopes if each is a single well-formed scope string.

    Raises:
        ConfigError: no scope was given, or one is empty, has spaces or odd characters.
    """
    if not values:
        raise ConfigError(
            "No PAT scopes given.", hint="List explicit scopes such as vso.code or vso.packaging."
        )
    for value in values:
        if not isinstance(value, str) or not _SCOPE_RE.fullmatch(value):
            raise ConfigError(
                f"Invalid PAT scope {value!r}: expected one scope string like 'vso.code_write'.",
                hint="Give scopes as a list, one per entry; see the scope table in the docs.",
                docs="https://learn.microsoft.com/en-us/azure/devops/integrate/get-started/"
                "authentication/oauth#available-scopes",
            )
    return values


def display_name(value: str) -> str:
    """Return a PAT display name if it is non-empty and free of control characters.

    Raises:
        ConfigError: the display name is empty or has control characters.
    """
    if not isinstance(value, str) or not value.strip() or _has_control(value):
        raise ConfigError(
            f"Invalid PAT display name {value!r}: it must be non-empty text without control "
            "characters.",
            hint="Use the token's name from the configuration.",
        )
    return value


def base_url(value: str, *, setting: str) -> str:
    """Return an ``https://host[:port][/path]`` base URL without a trailing slash.

    Raises:
        ConfigError: the URL is not https, has credentials, a query or a fragment.
    """
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme != "https"
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.query
        or parts.fragment
        or _has_control(value)
    ):
        raise ConfigError(
            f"Invalid {setting} {value!r}: expected an https:// base URL without credentials, "
            "query or fragment.",
            hint=f"Set {setting} like 'https://dev.azure.com' (or the emulator's URL).",
        )
    return value.rstrip("/")
