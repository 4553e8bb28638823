"""A small JSON Schema validator for the keywords pydantic emits (no jsonschema dependency).

Covers ``$ref`` (local ``#/$defs/…``), ``type``, ``properties``, ``patternProperties``,
``additionalProperties``, ``required``, ``items``, ``minItems``, ``enum``, ``const``,
``pattern``, ``minLength``/``maxLength``, ``minimum``/``maximum``/``exclusiveMinimum``, ``anyOf``,
``oneOf`` and ``allOf``. Annotations (``title``, ``default``, ``examples``, ``format``,
``description``) are ignored. Returns the list of errors, each with its JSON path.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every error of *instance* against *schema* (empty when it is valid)."""
    return _check(instance, schema, root=schema, path="$")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), f"unsupported $ref {ref}"
        extra = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**root["$defs"][ref.removeprefix("#/$defs/")], **extra}
    return schema


def _check(value: Any, schema: dict[str, Any], *, root: dict[str, Any], path: str) -> list[str]:
    schema = _resolve(schema, root)
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is_type(value, name) for name in kinds):
            return [f"{path}: expected {kind}, got {type(value).__name__}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not one of {schema['enum']}")
    if isinstance(value, str):
        errors += _string(value, schema, path)
    if _is_type(value, "number"):
        errors += _number(value, schema, path)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                errors += _check(item, schema["items"], root=root, path=f"{path}[{index}]")
    if isinstance(value, dict):
        errors += _object(value, schema, root=root, path=path)
    for sub in schema.get("allOf", []):
        errors += _check(value, sub, root=root, path=path)
    if "anyOf" in schema:
        results = [_check(value, sub, root=root, path=path) for sub in schema["anyOf"]]
        if all(results):
            errors.append(f"{path}: matches none of anyOf ({results})")
    if "oneOf" in schema:
        results = [_check(value, sub, root=root, path=path) for sub in schema["oneOf"]]
        passing = sum(1 for result in results if not result)
        if passing != 1:
            errors.append(f"{path}: matches {passing} of oneOf, not exactly 1 ({results})")
    return errors


def _string(value: str, schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path}: longer than {schema['maxLength']}")
    return errors


def _number(value: float, schema: dict[str, Any], path: str) -> list[str]:
    errors = []
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{path}: above {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{path}: not above {schema['exclusiveMinimum']}")
    return errors


def _object(
    value: dict[str, Any], schema: dict[str, Any], *, root: dict[str, Any], path: str
) -> list[str]:
    errors = [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in value]
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    for key, item in value.items():
        where = f"{path}.{key}"
        matched = False
        if key in properties:
            matched = True
            errors += _check(item, properties[key], root=root, path=where)
        for pattern, sub in patterns.items():
            if re.search(pattern, key):
                matched = True
                errors += _check(item, sub, root=root, path=where)
        if matched:
            continue
        extra = schema.get("additionalProperties", True)
        if extra is False:
            errors.append(f"{where}: unknown key")
        elif isinstance(extra, dict):
            errors += _check(item, extra, root=root, path=where)
    return errors
