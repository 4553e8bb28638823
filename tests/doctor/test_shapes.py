"""Shapes of answers (no I/O): extraction without values, envelopes, comparison, and that the
expected shapes agree with the REST spec excerpts kept in tests/emulator/specs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from patwarden.doctor.shapes import EXPECTED, Expected, Observed, compare, envelope_of, shape_of
from tests.emulator.spec_support import load_specs

PAT = {
    "authorizationId": "4ab5764f-4193-4f1d-b995-64144880b7d7",
    "displayName": "ci-feed-reader",
    "scope": "vso.packaging",
    "targetAccounts": ["38aaa865-2c70-4bf7-a308-0c6539c38c1a"],
    "token": None,
    "validFrom": "2026-06-01T09:12:44.1033333Z",
    "validTo": "2026-07-01T00:00:00Z",
}


def test_a_shape_keeps_structure_and_types_but_no_value() -> None:
    group = {
        "id": 7,
        "name": "gitops",
        "variables": {"FLUX_PAT": {"value": None, "isSecret": True}, "PLAIN": {"value": "x"}},
        "createdBy": {"id": PAT["authorizationId"], "_links": {"avatar": {"href": "https://a"}}},
    }
    shape = shape_of(group)
    assert shape == {
        "createdBy": {"_links": {"*": {"href": "string"}}, "id": "uuid"},
        "id": "integer",
        "name": "string",
        "variables": {"*": {"isSecret": "boolean", "value": "string"}},
    }
    text = json.dumps(shape_of({"patTokens": [PAT]}))
    for value in ("ci-feed-reader", "4ab5764f", "vso.packaging", "FLUX_PAT", "gitops"):
        assert value not in text
    assert json.loads(text)["patTokens"][0]["validFrom"] == "date-time"


@pytest.mark.parametrize(
    ("content_type", "raw", "body", "envelope"),
    [
        ("application/json", b"", None, "empty"),
        ("text/html", b"<html>", None, "html"),
        ("application/json", b"{}", {"count": 1, "value": [1]}, "collection"),
        ("application/json", b"{}", {"patTokens": []}, "object"),
        (
            "application/json",
            b"{}",
            dict.fromkeys(("$id", "innerException", "message", "typeName", "typeKey", "eventId")),
            "vss-error",
        ),
    ],
)
def test_envelopes(content_type: str, raw: bytes, body: Any, envelope: str) -> None:
    assert envelope_of(200, content_type, body, raw=raw) == envelope


def test_compare_names_every_difference() -> None:
    expected = Expected(
        frozenset({200}),
        "object",
        {"patToken!": {"authorizationId": "uuid", "validTo": "date-time"}, "error?": "string"},
        headers=("X-Thing",),
    )
    good = Observed(200, "object", {"patToken": {"authorizationId": "uuid", "validTo": "null"}})
    assert compare(expected, Observed(200, "object", good.body, ("x-thing",))) == []
    bad = Observed(
        500,
        "object",
        {"patToken": {"authorizationId": "string", "extra": "integer"}, "other": "boolean"},
    )
    assert compare(expected, bad) == [
        "status 500, expected 200",
        "patToken.authorizationId is string, expected uuid",
        "field patToken.validTo missing",
        "new field patToken.extra",
        "new field other",
        "header X-Thing missing",
    ]
    assert compare(expected, Observed(200, "object", {"patToken": "null"}, ("x-thing",))) == [
        "patToken is null, expected an object"
    ]
    assert compare(expected, Observed(203, "html")) == [
        "status 203, expected 200",
        "envelope html, expected object",
        "header X-Thing missing",
    ]


def _spec_type(spec: Any, schema: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _spec_type(spec, spec.definitions[schema["$ref"].split("/")[-1]])
    if schema.get("type") == "integer":
        return "integer"
    return schema.get("format") or schema.get("type") or ("string" if "enum" in schema else None)


@pytest.mark.parametrize(
    ("probe", "spec_name", "definition", "path"),
    [
        ("pats.list.all", "tokens", "PatToken", ("patTokens", 0)),
        ("pats.get.unknown", "tokens", "PatTokenResult", ()),
        ("tokenadmin.list", "tokenAdmin", "SessionToken", ("value", 0)),
        ("variable-group.list", "taskAgent", "VariableGroup", ("value", 0)),
        ("service-endpoint.get", "serviceEndpoint", "ServiceEndpoint", ()),
    ],
)
def test_expected_fields_are_declared_by_the_spec_with_the_same_type(
    probe: str, spec_name: str, definition: str, path: tuple[Any, ...]
) -> None:
    spec = load_specs()[spec_name]
    declared = spec.definitions[definition]["properties"]
    shape: Any = EXPECTED[probe].body
    for step in path:
        shape = shape[step]
    for raw_name, expected in shape.items():
        name = raw_name.rstrip("?!")
        if name == "isOutdated":  # sent by the real service, not in the 7.1 spec (spec_support)
            continue
        assert name in declared, f"{probe}: {name} is not in {definition}"
        declared_type = _spec_type(spec, declared[name])
        if isinstance(expected, str) and expected != "any":
            assert expected == declared_type or (expected, declared_type) == ("uuid", "string"), (
                probe,
                name,
            )
