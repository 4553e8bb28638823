"""Variable groups: read one, find one by name, and write it back with one secret changed.

GET ``{azure_devops_url}/{org}/{project}/_apis/distributedtask/variablegroups/{id}``; PUT at
organization level ``{azure_devops_url}/{org}/_apis/distributedtask/variablegroups/{id}``
(api-version 7.1, contract §9.1). A PUT replaces the whole variable set, and reads return secret
values as ``null``: :func:`secret_update` builds a body that changes one secret and sends every
other secret back as ``isSecret: true, value: null`` so the service keeps it (as the Azure CLI
does, contract §9.1 and open question 11).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from patwarden.azdo import validation
from patwarden.azdo.constants import DISTRIBUTED_TASK_API_VERSION
from patwarden.azdo.errors import AzdoNotFound
from patwarden.azdo.models import as_object, optional_bool, optional_str, required_str
from patwarden.azdo.resource import ResourceClient
from patwarden.azdo.responses import json_body, unexpected
from patwarden.azdo.timestamps import parse_datetime
from patwarden.errors import ConfigError
from patwarden.secret import Secret


@dataclass(frozen=True, kw_only=True)
class Variable:
    """One variable. Secret values read from Azure DevOps are ``None``; a new one is a Secret."""

    value: str | Secret | None
    is_secret: bool = False
    is_read_only: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire form; reveals a Secret value, so call it only while building a request."""
        value = self.value.reveal() if isinstance(self.value, Secret) else self.value
        return {"value": value, "isSecret": self.is_secret, "isReadOnly": self.is_read_only}


@dataclass(frozen=True, kw_only=True)
class ProjectReference:
    """A project that shares the group, and the group's name and description there."""

    name: str
    description: str | None = None
    project_id: str | None = None
    project_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form (``VariableGroupProjectReference``)."""
        project: dict[str, Any] = {}
        if self.project_id:
            project["id"] = self.project_id
        if self.project_name:
            project["name"] = self.project_name
        return {"name": self.name, "description": self.description, "projectReference": project}


def _variables(raw: object, *, action: str) -> Mapping[str, Variable]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise unexpected("'variables' is not an object", action=action)
    parsed: dict[str, Variable] = {}
    for name, item in raw.items():
        obj = as_object(item, what=f"variable {name!r}", action=action)
        value = obj.get("value")
        parsed[str(name)] = Variable(
            value=value if isinstance(value, str) else None,
            is_secret=optional_bool(obj, "isSecret") or False,
            is_read_only=optional_bool(obj, "isReadOnly") or False,
        )
    return MappingProxyType(parsed)


def _references(raw: object, *, action: str) -> tuple[ProjectReference, ...]:
    if not isinstance(raw, list):
        return ()
    refs = []
    for item in raw:
        obj = as_object(item, what="a project reference", action=action)
        project = obj.get("projectReference")
        project = project if isinstance(project, Mapping) else {}
        refs.append(
            ProjectReference(
                name=optional_str(obj, "name") or "",
                description=optional_str(obj, "description"),
                project_id=optional_str(project, "id"),
                project_name=optional_str(project, "name"),
            )
        )
    return tuple(refs)


@dataclass(frozen=True, kw_only=True)
class VariableGroup:
    """A variable group as read (secret values are ``None``)."""

    id: int
    name: str
    description: str | None
    type: str
    variables: Mapping[str, Variable] = field(hash=False)
    provider_data: Mapping[str, Any] | None = field(default=None, hash=False)
    project_references: tuple[ProjectReference, ...] = ()
    modified_on: datetime | None = None

    @property
    def is_key_vault_linked(self) -> bool:
        """True if the group mirrors a Key Vault; its variables cannot be written here."""
        return self.type.lower() == "azurekeyvault"

    @classmethod
    def from_json(cls, data: object, *, action: str, project: str | None = None) -> VariableGroup:
        """Parse a ``VariableGroup``; *project* fills in a missing project reference.

        Raises:
            AzdoUnexpectedResponse: ``id`` or ``name`` is missing or malformed.
        """
        obj = as_object(data, what="the variable group", action=action)
        group_id = obj.get("id")
        if isinstance(group_id, bool) or not isinstance(group_id, int):
            raise unexpected("field 'id' is missing or not an integer", action=action)
        name = required_str(obj, "name", action=action)
        refs = _references(obj.get("variableGroupProjectReferences"), action=action)
        if not refs and project:
            refs = (ProjectReference(name=name, project_name=project),)
        provider = obj.get("providerData")
        modified = optional_str(obj, "modifiedOn")
        try:
            modified_on = parse_datetime(modified) if modified else None
        except ValueError:
            modified_on = None
        return cls(
            id=group_id,
            name=name,
            description=optional_str(obj, "description"),
            type=optional_str(obj, "type") or "Vsts",
            variables=_variables(obj.get("variables"), action=action),
            provider_data=MappingProxyType(dict(provider))
            if isinstance(provider, Mapping)
            else None,
            project_references=refs,
            modified_on=modified_on,
        )


@dataclass(frozen=True, kw_only=True)
class VariableGroupUpdate:
    """The complete PUT body for a group: every variable, since a PUT replaces them all."""

    group_id: int
    name: str
    description: str | None
    type: str
    variables: Mapping[str, Variable] = field(hash=False)
    provider_data: Mapping[str, Any] | None = field(default=None, hash=False)
    project_references: tuple[ProjectReference, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form (``VariableGroupParameters``); reveals the new secret value."""
        body: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "type": self.type,
            "variables": {name: var.to_json() for name, var in self.variables.items()},
            "variableGroupProjectReferences": [ref.to_json() for ref in self.project_references],
        }
        if self.provider_data is not None:
            body["providerData"] = dict(self.provider_data)
        return body


def secret_update(group: VariableGroup, *, variable: str, value: Secret) -> VariableGroupUpdate:
    """Return the PUT body that sets *variable* to *value* and leaves every other variable as is.

    The target becomes ``{"value": <new>, "isSecret": true}`` (keeping its read-only flag; it is
    added if missing). Other secrets go back as ``{"value": null, "isSecret": true}``, which
    keeps their stored values; plain variables go back with the values just read.

    Raises:
        ConfigError: the group is linked to a Key Vault, or *variable* is empty.
    """
    if group.is_key_vault_linked:
        raise ConfigError(
            f"Variable group {group.name!r} (id {group.id}) is linked to a Key Vault; its "
            "variables cannot be written through Azure DevOps.",
            hint="Write the PAT to that Key Vault with a key_vault sink instead.",
        )
    if not variable or not variable.strip():
        raise ConfigError(f"No variable name given for variable group {group.name!r}.")
    variables: dict[str, Variable] = {}
    for name, current in group.variables.items():
        if current.is_secret:
            variables[name] = Variable(
                value=None, is_secret=True, is_read_only=current.is_read_only
            )
        else:
            variables[name] = current
    existing = group.variables.get(variable)
    variables[variable] = Variable(
        value=value, is_secret=True, is_read_only=existing.is_read_only if existing else False
    )
    return VariableGroupUpdate(
        group_id=group.id,
        name=group.name,
        description=group.description,
        type=group.type,
        variables=MappingProxyType(variables),
        provider_data=group.provider_data,
        project_references=group.project_references,
    )


class VariableGroupClient(ResourceClient):
    """Read and replace variable groups (thread-safe)."""

    def get(self, *, org: str, project: str, group_id: int) -> VariableGroup:
        """Return the group *group_id* of *project*.

        Raises:
            ConfigError: a bad organization, project or id.
            AzdoNotFound: no such group (or the identity cannot see it).
        """
        gid = validation.positive_int(group_id, what="variable group id")
        url = (
            f"{self._urls.azure_devops_url}/{validation.organization(org)}/"
            f"{validation.project(project)}/_apis/distributedtask/variablegroups/{gid}"
        )
        action = f"read variable group {group_id} in project {project!r} of organization {org!r}"
        response = self._transport.send(
            "GET", url, action=action, api_version=DISTRIBUTED_TASK_API_VERSION, auth=self._auth
        )
        body = json_body(response, action=action) if response.content.strip() else None
        if body is None:  # the service answers 200 with null or nothing for an unknown id
            raise AzdoNotFound(
                f"Variable group {group_id} was not found in project {project!r} of "
                f"organization {org!r}.",
                status=response.status_code,
                hint="Check the group id, the project, and that the identity may read the group.",
            )
        return VariableGroup.from_json(body, action=action, project=project)

    def find_by_name(self, *, org: str, project: str, name: str) -> VariableGroup | None:
        """Return the group called *name* in *project* (case-insensitive), or None.

        Raises:
            ConfigError: a bad organization or project, or several groups match *name*.
        """
        url = (
            f"{self._urls.azure_devops_url}/{validation.organization(org)}/"
            f"{validation.project(project)}/_apis/distributedtask/variablegroups"
        )
        action = f"look up variable group {name!r} in project {project!r} of organization {org!r}"
        response = self._transport.send(
            "GET",
            url,
            action=action,
            api_version=DISTRIBUTED_TASK_API_VERSION,
            auth=self._auth,
            params={"groupName": name},
        )
        page = as_object(json_body(response, action=action), what="the list", action=action)
        items = page.get("value", [])
        if not isinstance(items, list):
            raise unexpected("'value' is not a list", action=action)
        groups = [VariableGroup.from_json(i, action=action, project=project) for i in items]
        matches = [g for g in groups if g.name.casefold() == name.casefold()]
        if len(matches) > 1:
            raise ConfigError(
                f"{len(matches)} variable groups are called {name!r} in project {project!r}.",
                hint="Refer to the group by its id instead of its name.",
            )
        return matches[0] if matches else None

    def put(self, *, org: str, update: VariableGroupUpdate) -> VariableGroup:
        """Replace the group's definition and variables with *update* (organization-level PUT).

        Raises:
            ConfigError: a bad organization or id.
            AzdoAccessDenied: the identity is not an Administrator of the group.
        """
        gid = validation.positive_int(update.group_id, what="variable group id")
        url = (
            f"{self._urls.azure_devops_url}/{validation.organization(org)}"
            f"/_apis/distributedtask/variablegroups/{gid}"
        )
        action = f"update variable group {update.name!r} (id {gid}) in organization {org!r}"
        response = self._transport.send(
            "PUT",
            url,
            action=action,
            api_version=DISTRIBUTED_TASK_API_VERSION,
            auth=self._auth,
            body=update.to_json(),
        )
        return VariableGroup.from_json(json_body(response, action=action), action=action)
