"""The ``variable_group`` sink: one secret variable of an Azure DevOps variable group.

A PUT replaces the group's whole variable set, so every write is read-modify-write: read the
group, change only our variable, send every other secret back as ``isSecret: true, value: null``
(the service keeps its value) and every plain variable as read. Which PAT the variable holds is
recorded in the non-secret companion variable ``<VARIABLE>_PATWARDEN`` (a version marker, see
:mod:`patwarden.sinks.devops`). Azure DevOps never returns secret values: :meth:`read_back` is
None and :meth:`restore` can bring back only "no variable", not an older value.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from patwarden.azdo.client import AzureDevOpsClient
from patwarden.azdo.variable_groups import (
    Variable,
    VariableGroup,
    VariableGroupUpdate,
    secret_update,
)
from patwarden.errors import SinkError
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks import devops
from patwarden.sinks.errors import SINKS_DOCS, SinkRefused, SinkWriteFailed
from patwarden.sinks.locks import process_lock
from patwarden.sinks.spec import SinkContext, SinkSpec, parse_spec

logger = logging.getLogger(__name__)

COMPANION_SUFFIX = "_PATWARDEN"
_VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,254}$"


class VariableGroupSinkSpec(SinkSpec):
    """Config keys of the ``variable_group`` sink."""

    kind: Literal["variable_group"] = "variable_group"
    project: str = Field(min_length=1, examples=["infra"])
    group: int | str = Field(description="the group's id, or its name", examples=["gitops", 42])
    variable: str = Field(pattern=_VARIABLE_NAME, examples=["FLUX_PAT"])
    identity: str = Field(default="writer", min_length=1)
    organization: str | None = None

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return devops.checked_project(value)

    @field_validator("group", mode="before")
    @classmethod
    def _group(cls, value: Any) -> Any:
        ok = (isinstance(value, int) and not isinstance(value, bool) and value > 0) or (
            isinstance(value, str) and value.strip()
        )
        if not ok:
            raise ValueError("must be the group's id (a positive number) or its name")
        return value

    def target(self, organization: str | None) -> tuple[str, ...]:
        """The organization, project, group and variable (names case-insensitive)."""
        org = (self.organization or organization or "").lower()
        return (self.kind, org, self.project.lower(), str(self.group).lower(), self.variable)


@dataclass(kw_only=True)
class VariableGroupSink:
    """Writes the PAT into one secret variable of a variable group (see the module docstring)."""

    spec_model: ClassVar[type[VariableGroupSinkSpec]] = VariableGroupSinkSpec
    spec: VariableGroupSinkSpec
    organization: str
    client: AzureDevOpsClient = dataclasses.field(repr=False, compare=False)
    # Serialises the read-change-put of the group with every other token that shares it.
    lock: Callable[[str], AbstractContextManager[None]] = dataclasses.field(
        default=process_lock, repr=False, compare=False
    )
    _group_id: int | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_spec(
        cls, spec: VariableGroupSinkSpec | Mapping[str, Any], context: SinkContext
    ) -> VariableGroupSink:
        """Build the sink from its config entry; the client is the one of ``identity``.

        Raises:
            SinkConfigError: the entry is invalid or no organization is known.
        """
        parsed = parse_spec(VariableGroupSinkSpec, spec)
        org = devops.organization_for(parsed.organization, context, kind="variable_group")
        client = devops.client_for(context, identity=parsed.identity, kind="variable_group")
        return cls(spec=parsed, organization=org, client=client, lock=context.lock or process_lock)

    def _locked(self) -> AbstractContextManager[None]:
        """The lock of the group itself, whether the config names it by name or by id: two
        tokens sharing a group must serialise their read-change-put however they name it."""
        group_id = self._group_id or self.spec.group
        if not isinstance(group_id, int):
            with devops.translated(target=self.describe(), writing=False):
                group_id = self._group().id
        return self.lock(f"variable group {self.organization.lower()}/{group_id}")

    def preflight(self) -> None:
        """Check the group exists, the writer can read it, and it can be written (not linked to
        a Key Vault); change nothing.

        Raises:
            SinkRefused: the group does not exist or is linked to a Key Vault.
            SinkUnavailable: Azure DevOps could not be reached or the identity lacks access.
        """
        with devops.translated(target=self.describe(), writing=False):
            group = self._group()
            secret_update(group, variable=self.spec.variable, value=Secret("-"))

    def _confirm(self, marker: devops.VersionMarker) -> None:
        """Re-read the group after a PUT: another writer may have put back an older variable set.

        Raises:
            SinkWriteFailed: the group does not hold the variable with this write's marker.
        """
        with devops.translated(target=self.describe(), writing=False):
            group = self._group()
        companion = group.variables.get(self.companion)
        if (
            self.spec.variable in group.variables
            and companion
            and companion.value == (marker.render())
        ):
            return
        raise SinkWriteFailed(
            f"{self.describe()}: after the write the group does not hold the new variable "
            "(another writer replaced the group's variables at the same time).",
            hint="Run `patwarden rotate` again; it repairs the variable.",
            docs=SINKS_DOCS,
        )

    @property
    def companion(self) -> str:
        """The non-secret variable that holds the version marker."""
        return self.spec.variable + COMPANION_SUFFIX

    def describe(self) -> str:
        """Return ``variable_group <org>/<project>/<group>:<variable>``."""
        s = self.spec
        return f"variable_group {self.organization}/{s.project}/{s.group}:{s.variable}"

    def _group(self) -> VariableGroup:
        api, org, project = self.client.variable_groups, self.organization, self.spec.project
        if self._group_id is not None:
            return api.get(org=org, project=project, group_id=self._group_id)
        if isinstance(self.spec.group, int):
            group = api.get(org=org, project=project, group_id=self.spec.group)
        else:
            found = api.find_by_name(org=org, project=project, name=self.spec.group)
            if found is None:
                raise SinkRefused(
                    f"Variable group {self.spec.group!r} does not exist in project "
                    f"{project!r} of organization {org!r}.",
                    hint="Create the group (patwarden never creates groups) or fix `group`; check "
                    "that the identity may see it.",
                    docs=SINKS_DOCS,
                )
            group = found
        self._group_id = group.id
        return group

    def _put(self, update: VariableGroupUpdate) -> VariableGroup:
        return self.client.variable_groups.put(org=self.organization, update=update)

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        """Set the variable to *secret* and the companion to the new version marker.

        Raises:
            SinkRefused: the group does not exist, is linked to a Key Vault, or the request was
                refused (nothing changed).
            SinkUnavailable: Azure DevOps could not be reached or the identity lacks access
                (nothing changed).
            SinkWriteFailed: the PUT failed in a way that may have applied it.
        """
        marker = devops.VersionMarker.for_write(ref=uuid.uuid4().hex, meta=meta)
        with self._locked():
            with devops.translated(target=self.describe(), writing=False):
                group = self._group()
                update = secret_update(group, variable=self.spec.variable, value=secret)
            variables = dict(update.variables)
            variables[self.companion] = Variable(value=marker.render(), is_secret=False)
            update = dataclasses.replace(update, variables=MappingProxyType(variables))
            with devops.translated(target=self.describe(), writing=True):
                self._put(update)
            self._confirm(marker)
        return marker.version()

    def read_back(self) -> None:
        """Azure DevOps never returns secret values: always None."""
        return None

    def current_version(self) -> SinkVersion | None:
        """Return the version the companion variable records (``unmanaged`` if it has none).

        Raises:
            SinkUnavailable: the group could not be read.
        """
        with devops.translated(target=self.describe(), writing=False):
            group = self._group()
        if self.spec.variable not in group.variables:
            return None
        companion = group.variables.get(self.companion)
        value = companion.value if companion and not companion.is_secret else None
        marker = devops.VersionMarker.find(value if isinstance(value, str) else None)
        return marker.version() if marker else devops.unmanaged()

    def restore(self, previous: SinkVersion | None) -> bool:
        """True if *previous* is current; with None, remove the variable and its companion.

        An older value cannot be put back (it cannot be read), so any other *previous* is False.
        Never raises.
        """
        try:
            if previous is not None:
                current = self.current_version()
                return current is not None and current.ref == previous.ref
            return self._remove()
        except SinkError as err:
            logger.warning("could not restore %s: %s", self.describe(), err)
            return False

    def _remove(self) -> bool:
        with self._locked(), devops.translated(target=self.describe(), writing=True):
            group = self._group()
            if self.spec.variable not in group.variables:
                return True
            # Build the body through secret_update so other secrets go back as value null.
            keep = secret_update(group, variable=self.spec.variable, value=Secret("-"))
            variables = {
                name: variable
                for name, variable in keep.variables.items()
                if name not in (self.spec.variable, self.companion)
            }
            self._put(dataclasses.replace(keep, variables=MappingProxyType(variables)))
        return True
