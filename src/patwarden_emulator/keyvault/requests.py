"""Parsing and validating Key Vault requests, and the vault's error documents (contract §8)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from patwarden_emulator.keyvault.store import PropertyChanges

MAX_TAGS = 15
PAGE_MAX = 25


class Rejected(Exception):
    """A request the vault answers with an error document (never carries a secret value)."""

    def __init__(self, status: int, code: str, message: str, *, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner


def error_response(
    status: int, code: str, message: str, *, inner: str | None = None
) -> JSONResponse:
    """A Key Vault error document: ``{"error": {"code", "message", "innererror"?}}``."""
    error: dict[str, Any] = {"code": code, "message": message}
    if inner is not None:
        error["innererror"] = {"code": inner}
    return JSONResponse({"error": error}, status_code=status, headers={"x-ms-error-code": code})


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object in the request body.

    Raises:
        Rejected: the body is not a JSON object.
    """
    try:
        body = await request.json()
    except ValueError as err:
        raise Rejected(400, "BadParameter", "The request body is not valid JSON.") from err
    if not isinstance(body, dict):
        raise Rejected(400, "BadParameter", "The request body must be a JSON object.")
    return body


def parse_properties(body: dict[str, Any]) -> PropertyChanges:
    """``contentType``, ``tags`` and ``attributes`` of a set or update body.

    Raises:
        Rejected: a property has the wrong type, or there are too many tags.
    """
    content_type = body.get("contentType")
    tags = body.get("tags")
    attributes = body.get("attributes") or {}
    if content_type is not None and not isinstance(content_type, str):
        raise Rejected(400, "BadParameter", "'contentType' must be a string.")
    if tags is not None and not (
        isinstance(tags, dict)
        and len(tags) <= MAX_TAGS
        and all(isinstance(v, str) for v in tags.values())
    ):
        raise Rejected(400, "BadParameter", f"'tags' must map at most {MAX_TAGS} names to strings.")
    if not isinstance(attributes, dict):
        raise Rejected(400, "BadParameter", "'attributes' must be an object.")
    enabled = attributes.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise Rejected(400, "BadParameter", "'attributes.enabled' must be a boolean.")
    times: dict[str, int | None] = {}
    for key in ("nbf", "exp"):
        raw = attributes.get(key)
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
            raise Rejected(400, "BadParameter", f"'attributes.{key}' must be Unix time in seconds.")
        times[key] = raw
    return PropertyChanges(
        content_type=content_type,
        tags=tags,
        enabled=enabled,
        not_before=times["nbf"],
        expires=times["exp"],
    )


def parse_page(request: Request) -> tuple[int, int]:
    """(offset, page size) from ``$skiptoken`` and ``maxresults`` (1..25).

    Raises:
        Rejected: either parameter is malformed or out of range.
    """
    raw_max = request.query_params.get("maxresults")
    token = request.query_params.get("$skiptoken")
    try:
        size = PAGE_MAX if raw_max is None else int(raw_max)
        offset = 0 if token is None else int(base64.urlsafe_b64decode(token + "==").decode())
    except (ValueError, binascii.Error) as err:
        raise Rejected(400, "BadParameter", "Invalid maxresults or $skiptoken.") from err
    if not 1 <= size <= PAGE_MAX:
        raise Rejected(400, "BadParameter", f"'maxresults' must be between 1 and {PAGE_MAX}.")
    return offset, size
