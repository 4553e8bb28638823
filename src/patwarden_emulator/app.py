"""Assemble the emulator's ASGI application from its feature modules."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from patwarden_emulator import admin
from patwarden_emulator.context import Emulator
from patwarden_emulator.devops import routes as devops
from patwarden_emulator.entra import routes as entra
from patwarden_emulator.faults.injector import FaultMiddleware
from patwarden_emulator.keyvault import routes as keyvault
from patwarden_emulator.ratelimit import RateLimitMiddleware
from patwarden_emulator.requestlog import RequestLogMiddleware


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
