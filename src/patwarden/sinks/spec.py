"""What every sink factory receives: its validated config entry and a :class:`SinkContext`.

A sink's config entry is the mapping under ``tokens.<name>.sinks[i]`` (``{kind: file, path: …}``).
Each sink module declares its keys as a frozen pydantic model derived from :class:`SinkSpec` and
validates its entry with :func:`parse_spec`, which reports every problem at once.
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

_Spec = TypeVar("_Spec", bound="SinkSpec")


class SinkSpec(BaseModel):
    """Keys every sink entry has. Frozen; a misspelt key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str


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
    see :mod:`patwarden.sinks.locks`).
    """

    credential: Callable[[str], TokenCredential]
    azure_devops: Callable[[str], AzureDevOpsClient] | None = None
    organization: str | None = None
    ca_bundle: str | None = None
    clock: Clock | None = None
    lock: Callable[[str], AbstractContextManager[None]] | None = None


def parse_spec(model: type[_Spec], spec: Mapping[str, Any]) -> _Spec:
    """Validate one sink entry against *model* and return it.

    Raises:
        SinkConfigError: one error listing every problem, each with its key path inside the entry
            (:func:`patwarden.sinks.registry.build_sink` prefixes the entry's own location).
    """
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
