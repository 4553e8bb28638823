"""Emulated variable groups (contract §9.1): GET one / list (project-scoped), PUT (org-scoped).

List follows ``specification/distributedTask/7.1/taskAgent.json`` (vsts-rest-api-specs,
``Variablegroups_GetVariableGroups`` and ``Variablegroups_GetVariableGroupsById``): ``groupName``
with ``*`` wildcards, ``queryOrder`` (``idDescending`` by default, or ``idAscending``), ``$top``
(all when absent) and ``continuationToken`` (an id: the page starts at that group, inclusive);
when more groups remain, the id of the next one is returned in ``X-MS-ContinuationToken``.
``groupIds`` (comma-separated) selects groups by id instead.

PUT replaces the whole variable set: variables left out are deleted, and a secret sent back as
``{"isSecret": true, "value": null}`` keeps its stored value (what the Azure CLI relies on,
contract open question 11). Reads show secret values as ``null``. Values are stored in clear in
the emulator database: tests read them back through ``GET /_admin/variable-groups/{id}/secrets``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator.devops.auth import authenticate, organization_of, require_scope
from patwarden_emulator.devops.identities import caller_ref, render_stored
from patwarden_emulator.devops.state import DevopsState, Organization, now
from patwarden_emulator.devops.wire import (
    CaseInsensitiveRoute,
    bad_request,
    format_trimmed,
    guarded,
    int_param,
    json_body,
    not_found,
    query_param,
    require_api_version,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS devops_variable_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT 'Vsts',
    variables TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_on TEXT NOT NULL,
    modified_by TEXT NOT NULL,
    modified_on TEXT NOT NULL
);
"""

Variables = dict[str, dict[str, Any]]


def normalise_variables(raw: object, *, previous: Variables) -> Variables:
    """Turn a request's ``variables`` map into stored form, keeping secrets sent back as null.

    Raises:
        VssError: 400 when *raw* is not a map of name → object.
    """
    if not isinstance(raw, dict):
        raise bad_request("'variables' must be an object mapping names to {value, isSecret}.")
    old = {name.lower(): spec for name, spec in previous.items()}
    result: Variables = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise bad_request(f"Variable '{name}' must be an object with 'value'.")
        secret = bool(spec.get("isSecret"))
        value = spec.get("value")
        kept = old.get(name.lower())
        if secret and value is None and kept is not None and kept.get("isSecret"):
            value = kept.get("value")
        entry: dict[str, Any] = {"value": None if value is None else str(value)}
        if secret:
            entry["isSecret"] = True
        if spec.get("isReadOnly"):
            entry["isReadOnly"] = True
        result[name] = entry
    return result


def _public_variables(variables: Variables) -> Variables:
    shown: Variables = {}
    for name, spec in variables.items():
        entry = dict(spec)
        if entry.get("isSecret"):
            entry["value"] = None
        shown[name] = entry
    return shown


class VariableGroups:
    """The ``devops_variable_groups`` table."""

    def __init__(self, state: DevopsState) -> None:
        self.state = state
        self.store = state.store
        self.store.ensure_schema(SCHEMA)

    def create(
        self,
        *,
        org: Organization,
        project: dict[str, str],
        name: str,
        variables: Variables,
        by: str,
    ) -> int:
        """Insert a group and return its id (*by*: a stored identity reference)."""
        stamp = format_trimmed(now())
        return self.store.insert(
            "INSERT INTO devops_variable_groups (org_id, project_id, name, variables, created_by,"
            " created_on, modified_by, modified_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (org.id, project["id"], name, json.dumps(variables), by, stamp, by, stamp),
        )

    def row(self, org: Organization, group_id: int) -> Any:
        """The raw row of a group of *org*, or None."""
        return self.store.one(
            "SELECT * FROM devops_variable_groups WHERE id = ? AND org_id = ?", (group_id, org.id)
        )

    def secrets(self, group_id: int) -> Variables | None:
        """Stored variables with their values (admin API)."""
        row = self.store.one(
            "SELECT variables FROM devops_variable_groups WHERE id = ?", (group_id,)
        )
        return None if row is None else dict(json.loads(row["variables"]))

    def to_json(self, row: Any) -> dict[str, Any]:
        """The ``VariableGroup`` document (secrets shown as null)."""
        project = self.store.one(
            "SELECT id, name FROM devops_projects WHERE id = ?", (row["project_id"],)
        )
        reference = {"id": row["project_id"], "name": project["name"] if project else None}
        return {
            "variables": _public_variables(json.loads(row["variables"])),
            "id": row["id"],
            "type": row["type"],
            "name": row["name"],
            "description": row["description"],
            "createdBy": render_stored(self.state, row["org_id"], row["created_by"]),
            "createdOn": row["created_on"],
            "modifiedBy": render_stored(self.state, row["org_id"], row["modified_by"]),
            "modifiedOn": row["modified_on"],
            "isShared": False,
            "variableGroupProjectReferences": [
                {
                    "projectReference": reference,
                    "name": row["name"],
                    "description": row["description"],
                }
            ],
        }

    def reset(self) -> None:
        """Drop every group."""
        self.store.execute("DELETE FROM devops_variable_groups")
        self.store.execute("DELETE FROM sqlite_sequence WHERE name = 'devops_variable_groups'")


def _group_not_found(group_id: object) -> Exception:
    return not_found(
        f"Variable group with id {group_id} does not exist.", "VariableGroupNotFoundException"
    )


def _group_ids(raw: str) -> list[int]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not all(item.isdigit() for item in items):
        raise bad_request(f"The value '{raw}' of query parameter 'groupIds' is not valid.")
    return list(dict.fromkeys(int(item) for item in items))


def _name_pattern(raw: str | None) -> re.Pattern[str]:
    """``groupName`` as a case-insensitive whole-name pattern where ``*`` matches anything."""
    parts = (raw or "*").split("*")
    return re.compile(".*".join(re.escape(part) for part in parts), re.IGNORECASE)


def select_page(rows: list[Any], request: Request) -> tuple[list[Any], int | None]:
    """Filter, order and page group rows as ``GetVariableGroups`` does; the next page's id.

    Raises:
        VssError: 400 for an unknown ``queryOrder``.
    """
    order = (query_param(request, "queryOrder") or "idDescending").lower()
    if order not in ("iddescending", "idascending"):
        raise bad_request(
            f"The value '{query_param(request, 'queryOrder')}' is not valid for queryOrder."
            " Valid values: idAscending, idDescending."
        )
    descending = order == "iddescending"
    pattern = _name_pattern(query_param(request, "groupName"))
    found = sorted(
        (r for r in rows if pattern.fullmatch(r["name"])), key=lambda r: r["id"], reverse=descending
    )
    start = int_param(request, "continuationToken", default=-1)
    if start >= 0:
        found = [r for r in found if (r["id"] <= start if descending else r["id"] >= start)]
    top = int_param(request, "$top", default=-1)
    if top < 0 or len(found) <= top:
        return found, None
    return found[:top], int(found[top]["id"])


def _group_id(request: Request) -> int:
    raw = str(request.path_params["group_id"])
    if not raw.isdigit():
        raise bad_request(f"'{raw}' is not a valid variable group id.")
    return int(raw)


def routes(state: DevopsState, groups: VariableGroups) -> list[BaseRoute]:
    """Variable group routes."""

    async def get_group(request: Request) -> Response:
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.variablegroups_read")
        require_api_version(request, preview=False)
        project = state.require_project(org, str(request.path_params["project"]))
        row = groups.row(org, _group_id(request))
        if row is None or row["project_id"] != project["id"]:
            raise _group_not_found(request.path_params["group_id"])
        return JSONResponse(groups.to_json(row))

    async def list_groups(request: Request) -> Response:
        org = organization_of(state, request)
        require_scope(authenticate(state, request, org), "vso.variablegroups_read")
        require_api_version(request, preview=False)
        project = state.require_project(org, str(request.path_params["project"]))
        rows = state.store.query(
            "SELECT * FROM devops_variable_groups WHERE org_id = ? AND project_id = ? ORDER BY id",
            (org.id, project["id"]),
        )
        ids = query_param(request, "groupIds")
        if ids is not None:
            by_id = {r["id"]: r for r in rows}
            found = [groups.to_json(by_id[i]) for i in _group_ids(ids) if i in by_id]
            return JSONResponse({"count": len(found), "value": found})
        page, next_id = select_page(rows, request)
        value = [groups.to_json(r) for r in page]
        headers = {} if next_id is None else {"X-MS-ContinuationToken": str(next_id)}
        return JSONResponse({"count": len(value), "value": value}, headers=headers)

    async def put_group(request: Request) -> Response:
        org = organization_of(state, request)
        caller = authenticate(state, request, org)
        require_scope(caller, "vso.variablegroups_manage")
        require_api_version(request, preview=False)
        group_id = _group_id(request)
        row = groups.row(org, group_id)
        if row is None:
            raise _group_not_found(group_id)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The body must be a VariableGroupParameters object.")
        variables = normalise_variables(
            body.get("variables"), previous=json.loads(row["variables"])
        )
        name = body.get("name") or row["name"]
        description = body.get("description", row["description"]) or ""
        state.store.execute(
            "UPDATE devops_variable_groups SET name = ?, description = ?, type = ?, variables = ?,"
            " modified_by = ?, modified_on = ? WHERE id = ?",
            (
                name,
                description,
                body.get("type") or row["type"],
                json.dumps(variables),
                caller_ref(caller),
                format_trimmed(now()),
                group_id,
            ),
        )
        return JSONResponse(groups.to_json(groups.row(org, group_id)))

    base = "/devops/{org}/{project}/_apis/distributedtask/variablegroups"
    return [
        CaseInsensitiveRoute(base, guarded(list_groups), methods=["GET"]),
        CaseInsensitiveRoute(base + "/{group_id}", guarded(get_group), methods=["GET"]),
        CaseInsensitiveRoute(
            "/devops/{org}/_apis/distributedtask/variablegroups/{group_id}",
            guarded(put_group),
            methods=["PUT"],
        ),
        # Older clients (api-version 4.1/5.0) PUT to the project-scoped URL; same semantics.
        CaseInsensitiveRoute(base + "/{group_id}", guarded(put_group), methods=["PUT"]),
    ]
