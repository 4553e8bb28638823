"""Shapes of Azure DevOps answers: what ``doctor --probe`` expects, sees, compares and records.

A *shape* is the structure of an answer without its values: status code, envelope, field names
with JSON types (``string``, ``uuid``, ``date-time``, ``integer``, ``boolean``, ``null``, nested
objects, ``[item]`` for arrays) and header names. Keys of maps that hold user data (variable names,
endpoint data and parameters, claims) become ``*``, so a shape carries no value, id or name and may
be attached to a report.

:data:`EXPECTED` is what patwarden and its emulator assume, written from the REST specs
(MicrosoftDocs/vsts-rest-api-specs: tokens and tokenAdmin 7.2; graph, distributedTask,
serviceEndpoint, core 7.1 — the excerpts in ``tests/emulator/specs``) and from
``docs/azure-api-contract.md`` where the specs are silent (status codes of refusals, envelopes,
headers). A field name ending in ``?`` may be absent; one ending in ``!`` must not be ``null``
(elsewhere ``null`` matches any type: the service writes unset values as null). No I/O here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Shape = Any  # str (a type name), dict[str, Shape], or [Shape]

VSS_ERROR_KEYS = frozenset({"$id", "innerException", "message", "typeName", "typeKey", "eventId"})
# Fields whose keys are data (variable names, parameters, claims), not structure.
MAP_FIELDS = frozenset(
    {"variables", "data", "parameters", "claims", "_links", "properties", "customProperties"}
)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
_SCALARS = frozenset({"string", "uuid", "date-time", "integer", "number", "boolean", "null"})


def scalar_of(value: Any) -> str:
    """The JSON type name of a scalar, with ``uuid``/``date-time`` told apart from strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            return "date-time" if _DATE_TIME.match(value) else "string"
        return "uuid" if len(value) == 36 else "string"
    return type(value).__name__


def shape_of(value: Any, *, key: str = "") -> Shape:
    """The shape of a parsed JSON value (maps named in :data:`MAP_FIELDS` keyed by ``*``)."""
    if isinstance(value, Mapping):
        if key in MAP_FIELDS and value:
            return {"*": _merge([shape_of(item) for item in value.values()])}
        return {str(k): shape_of(v, key=str(k)) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_merge([shape_of(item, key=key) for item in value])] if value else []
    return scalar_of(value)


def _merge(shapes: list[Shape]) -> Shape:
    """One shape for the items of an array or map (the union of their fields)."""
    objects = [s for s in shapes if isinstance(s, dict)]
    if objects:
        merged: dict[str, Shape] = {}
        for obj in objects:
            for name, sub in obj.items():
                merged[name] = sub if merged.get(name) in (None, "null") else merged[name]
        return merged
    concrete = [s for s in shapes if s != "null"]
    return concrete[0] if concrete else "null"


def envelope_of(status: int, content_type: str, body: Any, *, raw: bytes) -> str:
    """What kind of answer this is: ``empty``, ``html``, ``vss-error``, ``collection``, ``object``,
    ``array`` or ``other``."""
    if not raw.strip():
        return "empty"
    if "html" in content_type.lower() or raw.lstrip()[:1] == b"<":
        return "html"
    if isinstance(body, dict):
        if set(body) >= VSS_ERROR_KEYS:
            return "vss-error"
        if set(body) <= {"count", "value"} and isinstance(body.get("value"), list):
            return "collection"
        return "object"
    if isinstance(body, list):
        return "array"
    return "other"


@dataclass(frozen=True)
class Expected:
    """What an answer should look like (see the module docstring)."""

    statuses: frozenset[int]
    envelope: str
    body: Shape = None
    headers: tuple[str, ...] = ()
    about: str = ""


@dataclass(frozen=True)
class Observed:
    """The sanitised shape of one answer."""

    status: int
    envelope: str
    body: Shape = None
    headers: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The recorded form (no values, ids or names)."""
        return {
            "status": self.status,
            "envelope": self.envelope,
            "body": self.body,
            "headers": list(self.headers),
        }


def compare(expected: Expected, observed: Observed) -> list[str]:
    """The differences between *observed* and *expected*, each a short sentence."""
    differences: list[str] = []
    if observed.status not in expected.statuses:
        wanted = " or ".join(str(s) for s in sorted(expected.statuses))
        differences.append(f"status {observed.status}, expected {wanted}")
    if observed.envelope not in expected.envelope.split("|"):
        wanted = expected.envelope.replace("|", " or ")
        differences.append(f"envelope {observed.envelope}, expected {wanted}")
    elif expected.body is not None:
        differences += _fields(expected.body, observed.body, "")
    names = {name.lower() for name in observed.headers}
    differences += [
        f"header {name} missing" for name in expected.headers if name.lower() not in names
    ]
    return differences


def _fields(expected: Shape, observed: Shape, where: str) -> list[str]:
    at = where or "body"
    if observed == "null" or expected == "any":
        return []
    if isinstance(expected, dict):
        if not isinstance(observed, dict):
            return [f"{at} is {_kind(observed)}, expected an object"]
        if set(expected) == {"*"}:
            return [d for v in observed.values() for d in _fields(expected["*"], v, f"{at}.*")]
        found: list[str] = []
        for raw_name, sub in expected.items():
            name = raw_name.rstrip("?!")
            path = f"{where}.{name}".lstrip(".")
            if name not in observed:
                found += [] if raw_name.endswith("?") else [f"field {path} missing"]
            elif raw_name.endswith("!") and observed[name] == "null":
                found.append(f"{path} is null, expected {_describe(sub)}")
            else:
                found += _fields(sub, observed[name], path)
        known = {n.rstrip("?!") for n in expected}
        found += [f"new field {f'{where}.{n}'.lstrip('.')}" for n in observed if n not in known]
        return found
    if isinstance(expected, list):
        if not isinstance(observed, list):
            return [f"{at} is {_kind(observed)}, expected an array"]
        return _fields(expected[0], observed[0], f"{at}[]") if expected and observed else []
    if not _scalar_matches(expected, observed):
        return [f"{at} is {_kind(observed)}, expected {expected}"]
    return []


def _describe(shape: Shape) -> str:
    return _kind(shape) if isinstance(shape, dict | list) else str(shape)


def _scalar_matches(expected: str, observed: Shape) -> bool:
    if observed == expected:
        return True
    return expected == "string" and observed in ("uuid", "date-time")


def _kind(shape: Shape) -> str:
    if isinstance(shape, dict):
        return "an object"
    if isinstance(shape, list):
        return "an array"
    return str(shape) if shape in _SCALARS else "unknown"


# --- what patwarden and the emulator assume ----------------------------------------------------

_PAT_TOKEN = {
    "authorizationId": "uuid",
    "displayName": "string",
    "scope": "string",
    "targetAccounts": ["uuid"],
    "token": "string",
    "validFrom": "date-time",
    "validTo": "date-time",
}
_PAT_RESULT = {"patToken": _PAT_TOKEN, "patTokenError": "string", "patTokenErrorMessage?": "string"}
_SESSION_TOKEN = {
    **{name + "?": "uuid" for name in ("accessId", "clientId", "hostAuthorizationId")},
    **{name + "?": "string" for name in ("alternateToken", "crossCompanyCorrelatingId", "source")},
    "authorizationId": "uuid",
    "claims?": {"*": "string"},
    "displayName": "string",
    "isPublic": "boolean",
    "isValid": "boolean",
    "publicData?": "string",
    "scope": "string",
    "targetAccounts": ["uuid"],
    "token?": "string",
    "userId": "uuid",
    "validFrom": "date-time",
    "validTo": "date-time",
}
_IDENTITY_REF = {
    "_links?": {"*": {"href": "string"}},
    "descriptor?": "string",
    "displayName": "string",
    "id": "uuid",
    "uniqueName": "string",
    **{name + "?": "string" for name in ("url", "imageUrl", "directoryAlias", "profileUrl")},
    **{name + "?": "boolean" for name in ("inactive", "isAadIdentity", "isContainer")},
    "isDeletedInOrigin?": "boolean",
}
_GRAPH_USER = {
    "_links?": {"*": {"href": "string"}},
    "descriptor": "string",
    "displayName": "string",
    "principalName": "string",
    "mailAddress": "string",
    "origin": "string",
    "originId": "string",
    "subjectKind": "string",
    "domain": "string",
    "url": "string",
    **{name + "?": "string" for name in ("directoryAlias", "metaType", "legacyDescriptor")},
    "isDeletedInOrigin?": "boolean",
}
_PROJECT_REFERENCE = {"id": "uuid", "name": "string"}
_VARIABLE_GROUP = {
    "createdBy": _IDENTITY_REF,
    "createdOn": "date-time",
    "description": "string",
    "id": "integer",
    "isShared": "boolean",
    "modifiedBy": _IDENTITY_REF,
    "modifiedOn": "date-time",
    "name": "string",
    "providerData?": "any",
    "type": "string",
    "variableGroupProjectReferences": [
        {"description?": "string", "name": "string", "projectReference": _PROJECT_REFERENCE}
    ],
    "variables": {"*": {"isReadOnly?": "boolean", "isSecret?": "boolean", "value": "string"}},
}
_SERVICE_ENDPOINT = {
    "administratorsGroup?": _IDENTITY_REF,
    "authorization": {"parameters": {"*": "string"}, "scheme": "string"},
    "createdBy": _IDENTITY_REF,
    "data": {"*": "string"},
    "description": "string",
    "groupScopeId?": "uuid",
    "id": "uuid",
    "isOutdated?": "boolean",
    "isReady": "boolean",
    "isShared": "boolean",
    "name": "string",
    "operationStatus?": "any",
    "owner": "string",
    "readersGroup?": _IDENTITY_REF,
    "serviceEndpointProjectReferences": [
        {"description?": "string", "name": "string", "projectReference": _PROJECT_REFERENCE}
    ],
    "type": "string",
    "url": "string",
}
_VSS_ERROR = {
    "$id": "string",
    "customProperties?": "any",
    "errorCode": "integer",
    "eventId": "integer",
    "innerException": "any",
    "message": "string",
    "typeKey": "string",
    "typeName": "string",
}
_RATE_LIMIT = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

EXPECTED: dict[str, Expected] = {
    **{
        f"pats.list.{option}": Expected(
            frozenset({200}),
            "object",
            {"continuationToken?": "string", "patTokens": [_PAT_TOKEN]},
            about="tokens 7.2 Pats_List (PagedPatTokens), contract §1.5",
        )
        for option in ("active", "revoked", "expired", "all")
    },
    "pats.get.unknown": Expected(
        frozenset({200}),
        "object",
        _PAT_RESULT,
        about="a business error is HTTP 200 + patTokenError (contract §1.6, open question 4)",
    ),
    "pats.sp-refused": Expected(
        frozenset({401}),
        "vss-error",
        _VSS_ERROR,
        about="InvalidAccessException for a service principal (contract §1.8, open question 1)",
    ),
    "tokenadmin.list": Expected(
        frozenset({200}),
        "object",
        {"continuationToken": "uuid", "value": [_SESSION_TOKEN]},
        about="tokenAdmin 7.2 TokenAdminPagedSessionTokens (contract §3.1, open question 6)",
    ),
    "graph.users": Expected(
        frozenset({200}),
        "collection",
        {"count": "integer", "value": [_GRAPH_USER]},
        about="graph 7.1 Users_List; next page in X-MS-ContinuationToken",
    ),
    "variable-group.list": Expected(
        frozenset({200}),
        "collection",
        {"count": "integer", "value": [_VARIABLE_GROUP]},
        about="distributedTask 7.1 Variablegroups_Get Variable Groups (contract §9.1)",
    ),
    "service-endpoint.get": Expected(
        frozenset({200}),
        "object",
        _SERVICE_ENDPOINT,
        about="serviceEndpoint 7.1 Endpoints_Get (contract §9.2)",
    ),
    "auth.bad-pat-401": Expected(
        frozenset({401}),
        "vss-error",
        _VSS_ERROR,
        headers=("WWW-Authenticate", "X-TFS-ServiceError"),
        about="unknown PAT with X-TFS-FedAuthRedirect: Suppress (contract §6, open question 9)",
    ),
    "auth.bad-pat-203": Expected(
        frozenset({203}),
        "html",
        about="unknown PAT without redirect suppression: 203 sign-in page (contract §6)",
    ),
    "pats.create": Expected(
        frozenset({200}),
        "object",
        {
            "patToken!": {
                **{k: v for k, v in _PAT_TOKEN.items() if k != "token"},
                "token!": "string",
            },
            "patTokenError": "string",
            "patTokenErrorMessage?": "string",
        },
        about="tokens 7.2 Pats_Create; token shown once (contract §1.4)",
    ),
    "pats.revoke": Expected(
        frozenset({200, 204}),
        "empty|object",
        about="tokens 7.2 Pats_Revoke: spec 200, example 204 (open question 5)",
    ),
    "pats.revoke.no-id": Expected(
        frozenset({400}),
        "vss-error",
        _VSS_ERROR,
        about="authorizationId is required by the spec (issue 15 item 7)",
    ),
}
RATE_LIMIT_HEADERS = _RATE_LIMIT
