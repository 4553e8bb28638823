"""Emulated Azure Key Vault secrets data plane (contract §8, §8.1), served at the base origin.

Callers authenticate with the emulator's own Entra access tokens for ``https://vault.azure.net``
(first obtained through the 401 challenge, exactly as ``SecretClient`` expects) and need a vault
role assignment (Azure RBAC): ``Key Vault Secrets Officer`` may do everything, ``Key Vault Secrets
User`` may only read and list. The seeded service principal is a Secrets Officer; nobody else has
a role until ``PUT /_admin/key-vault/grants`` assigns one.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.auth import Principal, authorization, bearer_principal
from patwarden_emulator.context import Emulator
from patwarden_emulator.directory import KEY_VAULT_RESOURCE
from patwarden_emulator.keyvault.admin import admin_routes as admin_routes
from patwarden_emulator.keyvault.admin import default_grants, vault_store
from patwarden_emulator.keyvault.requests import (
    Rejected,
    error_response,
    parse_page,
    parse_properties,
    read_body,
)
from patwarden_emulator.keyvault.store import (
    ADMINISTRATOR,
    SECRETS_OFFICER,
    SECRETS_USER,
    SecretDeletedError,
    SecretStore,
    SecretVersion,
)

_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_MAX_VALUE_BYTES = 25 * 1024
_RETENTION_DAYS = 90

# What each operation needs, as the RBAC data action Azure would name in a 403.
_ACTIONS = {
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "update": "Microsoft.KeyVault/vaults/secrets/update/action",
    "delete": "Microsoft.KeyVault/vaults/secrets/delete",
    "deleted": "Microsoft.KeyVault/vaults/deletedsecrets/read/action",
    "recover": "Microsoft.KeyVault/vaults/deletedsecrets/recover/action",
    "purge": "Microsoft.KeyVault/vaults/deletedsecrets/delete",
}
_READ_ONLY = frozenset({"get", "list"})


def _not_found(name: str) -> Rejected:
    return Rejected(
        404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault."
    )


def _attributes(item: SecretVersion) -> dict[str, Any]:
    attributes: dict[str, Any] = {"enabled": item.enabled}
    if item.not_before is not None:
        attributes["nbf"] = item.not_before
    if item.expires is not None:
        attributes["exp"] = item.expires
    attributes.update(
        created=item.created,
        updated=item.updated,
        recoveryLevel="Recoverable+Purgeable",
        recoverableDays=_RETENTION_DAYS,
    )
    return attributes


class _KeyVault:
    """The request handlers, bound to one emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.vault: SecretStore = vault_store(emu)

    # shapes --------------------------------------------------------------------------------
    def _document(self, item: SecretVersion, *, versioned: bool, value: bool) -> dict[str, Any]:
        base = f"{self.emu.key_vault_url}/secrets/{item.name}"
        document: dict[str, Any] = {}
        if value:
            document["value"] = item.value
        document["id"] = f"{base}/{item.version}" if versioned else base
        if item.content_type is not None:
            document["contentType"] = item.content_type
        document["attributes"] = _attributes(item)
        if item.tags is not None:
            document["tags"] = dict(item.tags)
        return document

    def _deleted_document(self, item: SecretVersion, *, item_only: bool) -> dict[str, Any]:
        document = self._document(item, versioned=not item_only, value=False)
        deleted_at = self.vault.deleted_at(name=item.name) or 0
        document.update(
            recoveryId=f"{self.emu.key_vault_url}/deletedsecrets/{item.name}",
            deletedDate=deleted_at,
            scheduledPurgeDate=deleted_at + _RETENTION_DAYS * 86400,
        )
        return document

    # guards --------------------------------------------------------------------------------
    def _challenge(self, message: str) -> JSONResponse:
        response = error_response(401, "Unauthorized", message)
        response.headers["WWW-Authenticate"] = (
            f'Bearer authorization="{self.emu.authority_host}/{self.emu.tenant_id}", '
            f'resource="{KEY_VAULT_RESOURCE}"'
        )
        return response

    def _check_rbac(self, principal: Principal, operation: str) -> None:
        names = [principal.object_id, principal.name if principal.kind == "user" else ""]
        if principal.kind == "app":
            names.append(principal.client_id)
        roles = self.vault.roles_of(names)
        allowed = {SECRETS_OFFICER, ADMINISTRATOR}
        if operation in _READ_ONLY:
            allowed.add(SECRETS_USER)
        if roles & allowed:
            return
        raise Rejected(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            f"Caller: appid={principal.client_id};oid={principal.object_id};"
            f"iss={self.emu.issuer}\r\n"
            f"Action: '{_ACTIONS[operation]}'\r\n"
            "Assignment: (not found)\r\n"
            "DecisionReason: 'DeniedWithNoValidRBAC'\r\n",
            inner="ForbiddenByRbac",
        )

    async def run(self, request: Request, operation: str, handler: Any) -> Response:
        """Authenticate, authorize and validate, then call ``handler(request)``."""
        if authorization(request) is None:
            return self._challenge("AKV10000: Request is missing a Bearer or PoP token.")
        principal = bearer_principal(self.emu, request, audience=KEY_VAULT_RESOURCE)
        if principal is None or principal.tenant_id != self.emu.tenant_id:
            return self._challenge(
                "AKV10022: The access token is invalid, expired, from another tenant "
                f"or not issued for {KEY_VAULT_RESOURCE}."
            )
        try:
            self._check_rbac(principal, operation)
            if not request.query_params.get("api-version"):
                raise Rejected(
                    400, "BadParameter", "The request is missing the 'api-version' parameter."
                )
            name = request.path_params.get("name")
            if name is not None and not _NAME.match(name):
                raise Rejected(
                    400, "BadParameter", f"The request URI contains an invalid name: {name}"
                )
            response: Response = await handler(request)
            return response
        except Rejected as rejected:
            return error_response(
                rejected.status, rejected.code, rejected.message, inner=rejected.inner
            )

    # helpers -------------------------------------------------------------------------------
    def _paged(
        self, request: Request, items: list[dict[str, Any]], offset: int, size: int, more: bool
    ) -> JSONResponse:
        next_link = None
        if more:
            token = base64.urlsafe_b64encode(str(offset + size).encode()).decode().rstrip("=")
            api = request.query_params.get("api-version", "")
            next_link = (
                f"{self.emu.key_vault_url}{request.url.path}?api-version={api}"
                f"&$skiptoken={token}&maxresults={size}"
            )
        return JSONResponse({"value": items, "nextLink": next_link})

    # handlers ------------------------------------------------------------------------------
    async def set_secret(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await read_body(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise Rejected(400, "BadParameter", "The 'value' of a secret must be a string.")
        if len(value.encode()) > _MAX_VALUE_BYTES:
            raise Rejected(400, "BadParameter", "The secret value exceeds 25 KB.")
        props = parse_properties(body)
        try:
            item = self.vault.set_secret(
                name=name,
                value=value,
                content_type=props.content_type,
                tags=props.tags,
                enabled=True if props.enabled is None else props.enabled,
                not_before=props.not_before,
                expires=props.expires,
                now=int(time.time()),
            )
        except SecretDeletedError as err:
            raise Rejected(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            ) from err
        return JSONResponse(self._document(item, versioned=True, value=True))

    async def get_secret(self, request: Request) -> Response:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        item = (
            self.vault.version(name=name, version=version)
            if version
            else self.vault.latest(name=name)
        )
        if item is None:
            raise _not_found(name)
        if not item.enabled:
            raise Rejected(
                403,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                inner="SecretDisabled",
            )
        return JSONResponse(self._document(item, versioned=True, value=True))

    async def update_secret(self, request: Request) -> Response:
        name = request.path_params["name"]
        props = parse_properties(await read_body(request))
        item = self.vault.update(
            name=name,
            version=request.path_params.get("version") or None,
            changes=props,
            now=int(time.time()),
        )
        if item is None:
            raise _not_found(name)
        return JSONResponse(self._document(item, versioned=True, value=False))

    async def list_versions(self, request: Request) -> Response:
        name = request.path_params["name"]
        offset, size = parse_page(request)
        items = self.vault.versions(name=name, offset=offset, limit=size + 1)
        if not items and offset == 0 and not self.vault.exists(name=name):
            raise _not_found(name)
        documents = [self._document(i, versioned=True, value=False) for i in items[:size]]
        return self._paged(request, documents, offset, size, len(items) > size)

    async def list_secrets(self, request: Request) -> Response:
        offset, size = parse_page(request)
        items = self.vault.secrets(offset=offset, limit=size + 1)
        documents = [self._document(i, versioned=False, value=False) for i in items[:size]]
        return self._paged(request, documents, offset, size, len(items) > size)

    async def delete_secret(self, request: Request) -> Response:
        name = request.path_params["name"]
        item = self.vault.delete(name=name, now=int(time.time()))
        if item is None:
            raise _not_found(name)
        return JSONResponse(self._deleted_document(item, item_only=False))

    async def get_deleted(self, request: Request) -> Response:
        name = request.path_params["name"]
        item = self.vault.latest(name=name, include_deleted=True)
        if item is None or self.vault.deleted_at(name=name) is None:
            raise Rejected(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return JSONResponse(self._deleted_document(item, item_only=False))

    async def list_deleted(self, request: Request) -> Response:
        offset, size = parse_page(request)
        items = self.vault.secrets(offset=offset, limit=size + 1, deleted=True)
        documents = [self._deleted_document(i, item_only=True) for i in items[:size]]
        return self._paged(request, documents, offset, size, len(items) > size)

    async def recover(self, request: Request) -> Response:
        name = request.path_params["name"]
        item = self.vault.recover(name=name)
        if item is None:
            raise Rejected(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return JSONResponse(self._document(item, versioned=True, value=False))

    async def purge(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not self.vault.purge(name=name):
            raise Rejected(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return Response(status_code=204)


def routes(emu: Emulator) -> list[BaseRoute]:
    """The vault's data-plane routes (``/secrets...`` and ``/deletedsecrets...``)."""
    kv = _KeyVault(emu)

    def by_method(table: dict[str, tuple[str, Any]]) -> Any:
        """An endpoint running the request method's (operation, handler) behind the guards."""

        async def dispatch(request: Request) -> Response:
            operation, handler = table[request.method]
            return await kv.run(request, operation, handler)

        return dispatch

    latest = by_method(
        {
            "GET": ("get", kv.get_secret),
            "PUT": ("set", kv.set_secret),
            "PATCH": ("update", kv.update_secret),
            "DELETE": ("delete", kv.delete_secret),
        }
    )
    one_version = by_method({"GET": ("get", kv.get_secret), "PATCH": ("update", kv.update_secret)})
    deleted = by_method({"GET": ("deleted", kv.get_deleted), "DELETE": ("purge", kv.purge)})
    return [
        Route("/secrets", by_method({"GET": ("list", kv.list_secrets)})),
        Route("/secrets/{name}", latest, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route("/secrets/{name}/", latest, methods=["GET", "PATCH"]),
        Route("/secrets/{name}/versions", by_method({"GET": ("list", kv.list_versions)})),
        Route("/secrets/{name}/{version}", one_version, methods=["GET", "PATCH"]),
        Route("/deletedsecrets", by_method({"GET": ("deleted", kv.list_deleted)})),
        Route("/deletedsecrets/{name}", deleted, methods=["GET", "DELETE"]),
        Route(
            "/deletedsecrets/{name}/recover",
            by_method({"POST": ("recover", kv.recover)}),
            methods=["POST"],
        ),
    ]


def reset(emu: Emulator) -> None:
    """Forget every secret; restore the default role assignments."""
    vault_store(emu).clear(default_grants=default_grants(emu))
