"""What every sink kind declares and receives: its spec model and a :class:`SinkContext`.

A sink's config entry is the mapping under ``tokens.<name>.sinks[i]`` (``{kind: file, path: …}``).
Each sink kind owns its keys as a frozen pydantic model derived from :class:`SinkSpec`: its fields
and validators are the kind's validation (the config layer reports their problems with key paths),
and :meth:`SinkSpec.target` says where the kind writes. The sink class names the model in its
``spec_model`` attribute; :mod:`patwarden.sinks.registry` validates entries against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from patwarden.sinks.errors import SinkConfigError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from patwarden.azdo.client import AzureDevOpsClient
    from patwarden.clock import Clock
    from patwarden.sinks.client_pool import ClientPool

_Spec = TypeVar("_Spec", bound="SinkSpec")


class SinkSpec(BaseModel):
    """Keys every sink entry has. Frozen; a misspelt key is an error, never silently ignored.

    Subclass it once per sink kind with ``kind: Literal["<kind>"]`` and the kind's own keys. A
    field named ``identity`` names the configured identity the sink writes as; the config layer
    checks that it exists (its default too).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str

    def target(self, organization: str | None) -> tuple[str, ...] | None:
        """Where this entry writes, normalised so that two entries writing to one place are equal.

        The config layer refuses two entries (of one token or of two) with the same target, as
        they would overwrite each other. *organization* is the token's organization (None when the
        config has several and the token names none). Return None to opt out of the check (the
        default).
        """
        return None


@dataclass(frozen=True, kw_only=True)
class SinkContext:
    """What a sink may use besides its own config entry.

    ``credential`` returns the azure-identity credential of a configured identity by name
    (``"writer"``); ``azure_devops`` returns an Azure DevOps client authenticated as that
    identity; ``organization`` is the token's organization; ``clock`` is the run's time source
    (None: the system clock); ``ca_bundle`` is the PEM file every
    HTTPS client must trust in addition to the system store (None: system store only);
    ``lock(name)`` holds a lock shared by every patwarden run on the same state, for writes that
    read, change and put back something other tokens share (None: threads of this process only,
    see :mod:`patwarden.sinks.locks`); ``vault_scope(url)`` is the only audience a Key Vault
    token for *url* may be asked for (the configured cloud's for a custom host name);
    ``clients`` shares one SDK client per target among every sink of the run (None: each sink
    builds and closes its own).
    """

    credential: Callable[[str], TokenCredential]
    azure_devops: Callable[[str], AzureDevOpsClient] | None = None
    organization: str | None = None
    ca_bundle: str | None = None
    clock: Clock | None = None
    lock: Callable[[str], AbstractContextManager[None]] | None = None
    # The Key Vault scope for a vault URL (``AzureConfig.vault_scope``; None: by its host only).
    vault_scope: Callable[[str], str] | None = None
    clients: ClientPool | None = None


def parse_spec(model: type[_Spec], spec: _Spec | Mapping[str, Any]) -> _Spec:
    """Validate one sink entry against *model* and return it (an instance of *model* as is).

    Raises:
        SinkConfigError: one error listing every problem, each with its key path inside the entry
            (:func:`patwarden.sinks.registry.build_sink` prefixes the entry's own location).
    """
    if isinstance(spec, model):
        return spec
    if isinstance(spec, BaseModel):
        # Another kind's model: validate its keys against this one (reports the mismatch).
        spec = spec.model_dump(exclude_unset=True)
    try:
        return model.model_validate(dict(spec))
    except ValidationError as err:
        problems = tuple(
            (".".join(str(part) for part in problem["loc"]), problem["msg"])
            for problem in err.errors(include_url=False, include_input=False)
        )
        raise SinkConfigError.for_entry(
            kind=str(spec.get("kind", "?")), problems=problems
        ) from None
