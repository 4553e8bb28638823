"""Assemble the emulator's ASGI application from its feature modules."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden.emulator import admin, devops, entra, keyvault
from patwarden.emulator.context import Emulator
from patwarden.emulator.faults import FaultMiddleware
from patwarden.emulator.ratelimit import RateLimitMiddleware
from patwarden.emulator.requestlog import RequestLogMiddleware


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "not_found", "path": request.url.path}, status_code=404)


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
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: _not_found})
    app.state.emulator = emu
    return app
