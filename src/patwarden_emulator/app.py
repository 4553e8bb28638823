"""Assemble the emulator's ASGI application from its feature modules."""

from __future__ import annotations

import hmac

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from patwarden_emulator import admin
from patwarden_emulator.context import Emulator
from patwarden_emulator.devops import routes as devops
from patwarden_emulator.entra import routes as entra
from patwarden_emulator.faults.injector import FaultMiddleware
from patwarden_emulator.keyvault import routes as keyvault
from patwarden_emulator.ratelimit import RateLimitMiddleware
from patwarden_emulator.requestlog import RequestLogMiddleware

_DEVOPS_PREFIXES = ("/devops/", "/vssps/")


async def _not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.lower().startswith(_DEVOPS_PREFIXES):
        return devops.unknown_route(request, 404)
    return JSONResponse({"error": "not_found", "path": request.url.path}, status_code=404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    if request.url.path.lower().startswith(_DEVOPS_PREFIXES):
        return devops.unknown_route(request, 405)
    headers = getattr(exc, "headers", None)
    return PlainTextResponse("Method Not Allowed", status_code=405, headers=headers)


class AdminAuthMiddleware:
    """Refuse every ``/_admin`` request without ``Authorization: Bearer <admin_token>``.

    The admin API hands out every issued PAT and refresh token and grants vault roles: on a
    shared machine any local user could reach the loopback port, so it needs the per-process
    token the emulator writes only to its 0600 ready file (docs/security.md).
    """

    def __init__(self, app: ASGIApp, *, emu: Emulator) -> None:
        self.app = app
        self.expected = f"Bearer {emu.admin_token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].lower().startswith("/_admin"):
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                message = (
                    "The admin API needs 'Authorization: Bearer <admin_token>'; the token is in "
                    "the emulator's ready file (mode 0600), never on stdout."
                )
                response = JSONResponse(
                    {"error": "unauthorized", "message": message},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="patwarden-emulator-admin"'},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(emu: Emulator) -> Starlette:
    """Return the Starlette app serving Entra, Azure DevOps, Key Vault and the admin API."""
    routes: list[BaseRoute] = [
        *admin.routes(emu),
        *keyvault.routes(emu),
        *devops.routes(emu),
        *entra.routes(emu),
    ]
    # Outermost first: the log sees what the client saw (faults and 429s included); faults wrap
    # the rate limiter so a lost response can follow a counted request. None touch /_admin.
    middleware = [
        Middleware(RequestLogMiddleware, emu=emu),
        Middleware(FaultMiddleware, emu=emu),
        Middleware(RateLimitMiddleware, emu=emu),
        Middleware(AdminAuthMiddleware, emu=emu),
    ]
    handlers = {404: _not_found, 405: _not_allowed}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.emulator = emu
    return app
