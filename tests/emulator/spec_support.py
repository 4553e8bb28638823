"""Validate JSON answers against the response schemas of Swagger 2.0 specs (``specs/``).

The specs are excerpts of MicrosoftDocs/vsts-rest-api-specs (see ``specs/SOURCE.md``). Swagger 2.0
has no ``nullable``, and the Azure DevOps serializer writes unset values as ``null``, so ``null`` is
accepted for every property (never for the whole document). Conventions of the Azure DevOps wire
that the specs do not spell out, applied here on purpose:

- an operation whose schema is an array answers ``{"count": n, "value": [...]}`` (the specs' own
  ``VssJsonCollectionWrapper``), so the array schema applies to ``value``;
- ``ReferenceLinks`` (``_links``) is serialized as its dictionary, ``{"self": {"href": ...}}``,
  not as ``{"links": {...}}``.

Unlike plain JSON Schema, a property the definition does not declare is an error (the emulator
must not invent fields), except for those listed in :data:`UNDECLARED` with the reason.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPECS = Path(__file__).parent / "specs"
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": 2**31, "int64": 2**63}
_METHODS = ("get", "put", "post", "delete", "patch")

# Fields the emulator sends that a definition does not declare, with why.
UNDECLARED: dict[str, frozenset[str]] = {
    # Published answers of the real service carry it; the 7.1 spec does not declare it.
    "ServiceEndpoint": frozenset({"isOutdated"}),
}


@dataclass(frozen=True)
class Operation:
    """One operation of a spec: where it is and what its responses declare."""

    spec: str
    operation_id: str
    method: str
    path: str
    responses: dict[str, Any]


@dataclass(frozen=True)
class Spec:
    """A loaded spec file."""

    name: str
    document: dict[str, Any]

    @property
    def definitions(self) -> dict[str, Any]:
        found: dict[str, Any] = self.document.get("definitions", {})
        return found

    def operations(self) -> dict[str, Operation]:
        """Every operation in ``paths`` and ``x-ms-paths``, by operationId."""
        found: dict[str, Operation] = {}
        for section in ("paths", "x-ms-paths"):
            for path, item in self.document.get(section, {}).items():
                for method in _METHODS:
                    if method in item:
                        op = item[method]
                        found[op["operationId"]] = Operation(
                            spec=self.name,
                            operation_id=op["operationId"],
                            method=method.upper(),
                            path=path,
                            responses=op.get("responses", {}),
                        )
        return found


def load_specs() -> dict[str, Spec]:
    """Every spec under ``specs/``, by file stem (``tokens``, ``graph``, …)."""
    return {
        path.stem: Spec(name=path.stem, document=json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(SPECS.glob("*/*/*.json"))
    }


def validate_response(spec: Spec, operation: Operation, status: int, body: Any) -> list[str]:
    """Errors of *body* (answered with *status*) against *operation*'s declared response."""
    response = operation.responses.get(str(status))
    if response is None:
        declared = sorted(operation.responses)
        return [f"{operation.operation_id}: status {status} is not declared ({declared})"]
    schema = response.get("schema")
    if schema is None:
        return []
    if body is None:
        return [f"{operation.operation_id}: a body is declared but none was sent"]
    resolved = _resolve(spec, schema)
    if resolved.get("type") == "array" and isinstance(body, dict):
        errors = []
        if "count" in body and body["count"] != len(body.get("value") or []):
            errors.append(f"$.count: {body['count']} but {len(body.get('value') or [])} items")
        extra = set(body) - {"count", "value"}
        if extra:
            errors.append(f"$: collection wrapper has unexpected fields {sorted(extra)}")
        return errors + _check(spec, schema, body.get("value"), "$.value", nullable=False)
    return _check(spec, schema, body, "$", nullable=False)


def _resolve(spec: Spec, schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec.definitions[ref.removeprefix("#/definitions/")]
    return resolved


def _declared(spec: Spec, schema: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The properties of *schema* and of everything it inherits (``allOf``), and the parents."""
    properties = dict(schema.get("properties") or {})
    parents = [_resolve(spec, parent) for parent in schema.get("allOf") or []]
    for parent in parents:
        inherited, _ = _declared(spec, parent)
        properties = {**inherited, **properties}
    return properties, parents


def _check(
    spec: Spec, schema: dict[str, Any], value: Any, where: str, *, nullable: bool
) -> list[str]:
    if value is None:
        return [] if nullable else [f"{where}: null"]
    name = (schema.get("$ref") or "").removeprefix("#/definitions/")
    schema = _resolve(spec, schema)
    if name == "ReferenceLinks":
        return _links(value, where)
    if "enum" in schema:
        return [] if value in schema["enum"] else [f"{where}: {value!r} not in the enum"]
    kind = schema.get("type") or ("object" if "properties" in schema or "allOf" in schema else None)
    if kind == "object":
        return _object(spec, schema, value, where, name)
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        errors: list[str] = []
        for index, item in enumerate(value):
            errors += _check(
                spec, schema.get("items") or {}, item, f"{where}[{index}]", nullable=True
            )
        return errors
    return _scalar(schema, kind, value, where)


def _object(spec: Spec, schema: dict[str, Any], value: Any, where: str, name: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    properties, _ = _declared(spec, schema)
    extra_schema = schema.get("additionalProperties")
    errors: list[str] = []
    for key, item in value.items():
        if key in properties:
            errors += _check(spec, properties[key], item, f"{where}.{key}", nullable=True)
        elif isinstance(extra_schema, dict):
            errors += _check(spec, extra_schema, item, f"{where}.{key}", nullable=True)
        elif properties and key not in UNDECLARED.get(name, frozenset()):
            errors.append(f"{where}.{key}: not declared by {name or 'the schema'}")
    return errors


def _links(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: _links must be an object"]
    return [
        f"{where}.{key}: a link must be {{'href': str}}"
        for key, link in value.items()
        if not (isinstance(link, dict) and isinstance(link.get("href"), str))
    ]


def _scalar(schema: dict[str, Any], kind: str | None, value: Any, where: str) -> list[str]:
    fmt = schema.get("format")
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        if fmt == "uuid":
            try:
                uuid.UUID(value)
            except ValueError:
                return [f"{where}: {value!r} is not a uuid"]
        if fmt == "date-time" and not _DATE_TIME.match(value):
            return [f"{where}: {value!r} is not an ISO 8601 date-time"]
        return []
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: expected an integer, got {type(value).__name__}"]
        limit = _INT_RANGES.get(str(fmt))
        return (
            [f"{where}: {value} overflows {fmt}"] if limit and not -limit <= value < limit else []
        )
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean"]
    return []
