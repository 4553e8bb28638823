"""The ``service_connection`` sink: the secret parameter of an existing Azure DevOps endpoint.

Only that one authorization parameter changes (``apitoken`` for "Azure Repos/Team Foundation
Server" connections with scheme ``Token``, ``password`` for ``UsernamePassword``, or the
configured ``parameter``); every other field goes back as read. Which PAT the connection holds is
recorded as a version marker line in its description (see :mod:`patwarden.sinks.devops`). Secret
parameters are never returned, so :meth:`read_back` is None and :meth:`restore` cannot bring
back an older value.

Other secret parameters of the connection (a second password, a client secret) read back as
``null`` too, and a PUT that sends them as ``null`` resets them (terraform-provider-azuredevops
issues 550 and 719), so the sink refuses to update such a connection unless ``other_secrets``
gives a secret reference for each (``{env: NAME}``, ``{file: PATH}`` or ``{key_vault: …}``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.service_endpoints import ServiceEndpoint, secret_update, unsupplied_secrets
from patwarden.config.refs import SecretRef
from patwarden.errors import PatwardenError, SinkError
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks import devops
from patwarden.sinks.errors import SINKS_DOCS, SinkRefused
from patwarden.sinks.spec import SinkContext, SinkSpec, parse_spec

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

# The parameter that carries the PAT, by authorization scheme (contract §9.2).
DEFAULT_PARAMETERS = {"token": "apitoken", "usernamepassword": "password"}


class ServiceConnectionSinkSpec(SinkSpec):
    """Config keys of the ``service_connection`` sink."""

    kind: Literal["service_connection"] = "service_connection"
    project: str = Field(min_length=1, examples=["infra"])
    endpoint_id: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        examples=["6a1c4d9e-0000-4000-8000-000000000000"],
    )
    parameter: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    identity: str = Field(default="writer", min_length=1)
    organization: str | None = None
    other_secrets: dict[str, SecretRef] = Field(
        default_factory=dict, examples=[{"registrypassword": {"env": "REGISTRY_PASSWORD"}}]
    )

    @field_validator("other_secrets")
    @classmethod
    def _other_secrets(cls, value: dict[str, SecretRef]) -> dict[str, SecretRef]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"{name!r} is not an authorization parameter name")
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return devops.checked_project(value)

    def target(self, organization: str | None) -> tuple[str, ...]:
        """The organization, project, endpoint and parameter (case-insensitive)."""
        org = (self.organization or organization or "").lower()
        parameter = (self.parameter or "").lower()
        return (self.kind, org, self.project.lower(), self.endpoint_id.lower(), parameter)


@dataclass(frozen=True)
class _Credentials:
    """The context's credential lookup as the provider :func:`resolve_secret` takes."""

    get: Callable[[str], TokenCredential]


@dataclass(frozen=True, kw_only=True)
class ServiceConnectionSink:
    """Writes the PAT into a service connection's secret parameter (see the module docstring)."""

    spec_model: ClassVar[type[ServiceConnectionSinkSpec]] = ServiceConnectionSinkSpec
    spec: ServiceConnectionSinkSpec
    organization: str
    client: AzureDevOpsClient = dataclasses.field(repr=False, compare=False)
    # For other_secrets: the identities (Key Vault references) and the CA bundle.
    context: SinkContext | None = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def from_spec(
        cls, spec: ServiceConnectionSinkSpec | Mapping[str, Any], context: SinkContext
    ) -> ServiceConnectionSink:
        """Build the sink from its config entry; the client is the one of ``identity``.

        Raises:
            SinkConfigError: the entry is invalid or no organization is known.
        """
        parsed = parse_spec(ServiceConnectionSinkSpec, spec)
        org = devops.organization_for(parsed.organization, context, kind="service_connection")
        client = devops.client_for(context, identity=parsed.identity, kind="service_connection")
        return cls(spec=parsed, organization=org, client=client, context=context)

    def describe(self) -> str:
        """Return ``service_connection <org>/<project>/<endpoint id>``."""
        return f"service_connection {self.organization}/{self.spec.project}/{self.spec.endpoint_id}"

    def _endpoint(self) -> ServiceEndpoint:
        return self.client.service_endpoints.get(
            org=self.organization, project=self.spec.project, endpoint_id=self.spec.endpoint_id
        )

    def _parameter(self, endpoint: ServiceEndpoint) -> str:
        if self.spec.parameter:
            return self.spec.parameter
        parameter = DEFAULT_PARAMETERS.get((endpoint.scheme or "").lower())
        if parameter is None:
            raise SinkRefused(
                f"Service connection {endpoint.name!r} ({endpoint.id}) uses the authorization "
                f"scheme {endpoint.scheme!r}; patwarden does not know which of its parameters "
                f"({', '.join(sorted(endpoint.parameters)) or 'none'}) holds the PAT.",
                hint="Set `parameter` on this sink to the parameter that carries the PAT.",
                docs=SINKS_DOCS,
            )
        return parameter

    def _others(self, endpoint: ServiceEndpoint, parameter: str) -> dict[str, Secret]:
        """The other secret parameters, from ``other_secrets``; refuse when one is missing."""
        missing = unsupplied_secrets(
            endpoint, parameter=parameter, supplied=self.spec.other_secrets
        )
        if missing:
            example = ", ".join(f"{name}: {{env: ...}}" for name in missing)
            raise SinkRefused(
                f"Service connection {endpoint.name!r} ({endpoint.id}) has other secret "
                f"parameters besides {parameter!r}: {', '.join(missing)}. Azure DevOps never "
                "returns their values and a PUT that sends them as null resets them, so "
                "patwarden will not update this connection.",
                hint=f"Give each a secret reference in this sink's other_secrets "
                f"({{{example}}}), or use a connection whose only secret is the PAT.",
                docs=SINKS_DOCS,
            )
        if not self.spec.other_secrets:
            return {}
        from patwarden.config.schema import AzureConfig
        from patwarden.identity.secret_refs import resolve_secret

        context = self.context
        bundle = context.ca_bundle if context else None
        azure = AzureConfig(ca_bundle=Path(bundle) if bundle else None)
        credentials = _Credentials(context.credential) if context else None
        others: dict[str, Secret] = {}
        for name, ref in self.spec.other_secrets.items():
            try:
                others[name] = resolve_secret(ref, credentials=credentials, azure=azure)
            except PatwardenError as err:
                raise SinkRefused(
                    f"Cannot read other_secrets.{name} of {self.describe()}: {err.message}",
                    hint=err.hint,
                    docs=err.docs or SINKS_DOCS,
                ) from err
        return others

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Replace the secret parameter with *secret* and the description's version marker.

        Raises:
            SinkRefused: the connection does not exist or its scheme is unknown (nothing changed).
            SinkUnavailable: Azure DevOps could not be reached or the identity lacks access
                (nothing changed).
            SinkWriteFailed: the PUT failed in a way that may have applied it.
        """
        marker = devops.VersionMarker.for_write(ref=uuid.uuid4().hex, meta=meta)
        with devops.translated(target=self.describe(), writing=False):
            endpoint = self._endpoint()
            parameter = self._parameter(endpoint)
            update = secret_update(
                endpoint,
                parameter=parameter,
                value=secret,
                others=self._others(endpoint, parameter),
            )
        document = dict(update.document)
        document["description"] = devops.replace_marker(
            endpoint.document.get("description"), marker
        )
        update = dataclasses.replace(update, document=MappingProxyType(document))
        with devops.translated(target=self.describe(), writing=True):
            self.client.service_endpoints.put(org=self.organization, update=update)
        return marker.version()

    def read_back(self) -> None:
        """Azure DevOps never returns secret parameters: always None."""
        return None

    def current_version(self) -> SinkVersion:
        """Return the version the description's marker records (``unmanaged`` if none).

        Raises:
            SinkUnavailable | SinkRefused: the connection could not be read.
        """
        with devops.translated(target=self.describe(), writing=False):
            endpoint = self._endpoint()
        description = endpoint.document.get("description")
        marker = devops.VersionMarker.find(description if isinstance(description, str) else None)
        return marker.version() if marker else devops.unmanaged()

    def restore(self, previous: SinkVersion | None) -> bool:
        """True only if the connection already serves *previous*; never raises.

        The old value cannot be read back and a connection cannot be left without its secret, so
        nothing is changed: a False tells the engine the connection holds the new PAT.
        """
        if previous is None:
            return False
        try:
            return self.current_version().ref == previous.ref
        except SinkError as err:
            logger.warning("could not restore %s: %s", self.describe(), err)
            return False
