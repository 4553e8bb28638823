"""What the Azure DevOps sinks (variable groups, service connections) share.

Azure DevOps never returns secret values, so these sinks record which PAT they hold in a
*version marker*: one line of text, ``patwarden:v1 ref=… authorizationId=… operationId=…
validTo=… token=…``, kept in a non-secret companion variable (variable groups) or in the
description (service connections). This module writes and parses that marker, finds the Azure
DevOps client for the sink's identity, and translates the client's errors into sink errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.errors import (
    AzdoBadRequest,
    AzdoConnectionError,
    AzdoNotFound,
    AzdoRateLimited,
    AzdoServerError,
    RequestOutcomeUnknown,
)
from patwarden.errors import AuthError, ConfigError, PatwardenError
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.sinks.errors import (
    SINKS_DOCS,
    SinkConfigError,
    SinkReadFailed,
    SinkRefused,
    SinkUnavailable,
    SinkWriteFailed,
)
from patwarden.sinks.spec import SinkContext

MARKER_PREFIX = "patwarden:v1"


def checked_project(value: str) -> str:
    """Return ``value`` if Azure DevOps would accept it as a project name or id (for a spec).

    Checked when the config is read, so ``config check`` reports a path-injecting name such as
    ``../../_apis`` with its key path instead of the first run failing on it.

    Raises:
        ValueError: why the name cannot be a project (pydantic reports it at the key path).
    """
    from patwarden.azdo import validation

    try:
        validation.project(value)
    except ConfigError as err:
        raise ValueError(err.message) from None
    return value


UNMANAGED_REF = "unmanaged"
_MARKER = re.compile(r"patwarden:v1((?: [A-Za-z]+=\S*)+)")
_SAFE = "-._~:+@"


@dataclass(frozen=True, kw_only=True)
class VersionMarker:
    """The non-secret record of which PAT a write stored."""

    ref: str
    authorization_id: str
    operation_id: str
    valid_to: str
    token_name: str

    @classmethod
    def for_write(cls, *, ref: str, meta: SinkWriteMeta) -> VersionMarker:
        """The marker for a write of *meta* under the new version id *ref*."""
        return cls(
            ref=ref,
            authorization_id=meta.authorization_id,
            operation_id=meta.operation_id,
            valid_to=meta.valid_to.isoformat(),
            token_name=meta.token_name,
        )

    def render(self) -> str:
        """The one-line text form."""
        fields = {
            "ref": self.ref,
            "authorizationId": self.authorization_id,
            "operationId": self.operation_id,
            "validTo": self.valid_to,
            "token": self.token_name,
        }
        return MARKER_PREFIX + "".join(f" {k}={quote(v, safe=_SAFE)}" for k, v in fields.items())

    def version(self) -> SinkVersion:
        """The version this marker describes."""
        return SinkVersion(ref=self.ref, authorization_id=self.authorization_id)

    @classmethod
    def find(cls, text: str | None) -> VersionMarker | None:
        """Return the last marker in *text*, or None if there is none (or it is incomplete)."""
        matches = list(_MARKER.finditer(text or ""))
        if not matches:
            return None
        fields = dict(pair.split("=", 1) for pair in matches[-1].group(1).split())
        try:
            return cls(
                ref=unquote(fields["ref"]),
                authorization_id=unquote(fields["authorizationId"]),
                operation_id=unquote(fields.get("operationId", "")),
                valid_to=unquote(fields.get("validTo", "")),
                token_name=unquote(fields.get("token", "")),
            )
        except KeyError:
            return None


def replace_marker(text: str | None, marker: VersionMarker) -> str:
    """Return *text* with its marker line replaced by *marker* (appended if there was none)."""
    lines = [line for line in (text or "").splitlines() if not _MARKER.search(line)]
    return "\n".join([*lines, marker.render()]) if any(lines) else marker.render()


def unmanaged() -> SinkVersion:
    """The version of a value patwarden did not write (no marker)."""
    return SinkVersion(ref=UNMANAGED_REF, authorization_id=None)


def client_for(context: SinkContext, *, identity: str, kind: str) -> AzureDevOpsClient:
    """Return the Azure DevOps client authenticated as *identity*.

    Raises:
        SinkConfigError: the context offers no Azure DevOps client.
    """
    if context.azure_devops is None:
        raise SinkConfigError(
            f"The {kind} sink needs an Azure DevOps client, but none was configured.",
            hint="This is a bug in how patwarden built the sink context; please report it.",
        )
    client: AzureDevOpsClient = context.azure_devops(identity)
    return client


def organization_for(explicit: str | None, context: SinkContext, *, kind: str) -> str:
    """Return the sink's organization: its own ``organization`` key, else the token's.

    Raises:
        SinkConfigError: neither is set.
    """
    org = explicit or context.organization
    if not org:
        raise SinkConfigError.for_entry(
            kind=kind,
            problems=(
                ("organization", "is required when the configuration names no organization"),
            ),
        )
    return org


@contextmanager
def translated(*, target: str, writing: bool) -> Iterator[None]:
    """Turn Azure DevOps client errors into sink errors about *target*.

    While *writing*, a failure after the request may have been acted on (5xx, no answer) becomes
    :class:`SinkWriteFailed`; everything that proves nothing changed stays :class:`SinkUnavailable`.
    """
    try:
        yield
    except (SinkUnavailable, SinkWriteFailed, SinkReadFailed):
        raise
    except (AuthError, AzdoNotFound, ConfigError, AzdoBadRequest) as err:
        cls = SinkUnavailable if isinstance(err, AuthError) else SinkRefused
        raise cls(
            f"Cannot {'write to' if writing else 'read'} {target}: {err.message}",
            hint=err.hint or "Check the sink's settings and the identity's permissions.",
            docs=err.docs or SINKS_DOCS,
        ) from err
    except (AzdoServerError, AzdoConnectionError, RequestOutcomeUnknown) as err:
        if writing:
            raise SinkWriteFailed(
                f"Writing {target} failed and may or may not have taken effect: {err.message}",
                hint="Run the rotation again; the old PAT stays valid until every sink holds the "
                "new one.",
                docs=SINKS_DOCS,
            ) from err
        raise SinkUnavailable(f"Cannot reach {target}: {err.message}", hint=err.hint) from err
    except (AzdoRateLimited, PatwardenError) as err:
        raise SinkUnavailable(f"Cannot use {target}: {err.message}", hint=err.hint) from err
