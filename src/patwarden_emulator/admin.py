"""The admin API core (``/_admin``, JSON): reset, request log, issued secrets, and every feature's
admin endpoints.

- ``POST /_admin/reset``: back to the freshly seeded state (every feature's ``reset(emu)``, the
  directory's seeded users and flags, the issued-secrets list).
- ``GET /_admin/requests?since=<seq>`` / ``DELETE /_admin/requests``: the request log.
- ``GET /_admin/issued-secrets``: every secret value the emulator handed out since the last reset.
- ``GET /_admin/clock`` / ``PUT /_admin/clock``: the business clock (:mod:`.clock`);
  ``PUT`` takes ``{"now": "<ISO-8601>"}`` or ``{"offset_seconds": <number>}``.
- Fault injection (:mod:`faults_admin`), rate limiting (:mod:`ratelimit`) and each feature module's
  ``admin_routes(emu)``.
"""

from __future__ import annotations

import datetime as dt
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator import clock, ratelimit, requestlog
from patwarden_emulator.context import Emulator
from patwarden_emulator.devops import routes as devops
from patwarden_emulator.entra import routes as entra
from patwarden_emulator.faults import admin as faults_admin
from patwarden_emulator.faults import injector as faults
from patwarden_emulator.keyvault import routes as keyvault


def seeded_user_ids(emu: Emulator) -> set[str]:
    """Object ids of the users every fresh emulator has."""
    ids = emu.identities
    return {ids.rotator.oid, ids.org_admin.oid, ids.legacy_user.oid}


def reset_all(emu: Emulator) -> None:
    """Put the whole emulator back to its freshly seeded state (keys and identities kept)."""
    entra.reset(emu)
    devops.reset(emu)
    keyvault.reset(emu)
    faults.reset(emu)
    ratelimit.reset(emu)
    requestlog.reset(emu)
    ids = emu.identities
    emu.directory.reset(
        keep=seeded_user_ids(emu),
        passwords={
            ids.rotator.oid: ids.rotator_password,
            ids.legacy_user.oid: ids.legacy_password,
        },
    )
    with emu._issued_lock:
        emu.issued_secrets.clear()


def _clock_json() -> dict[str, object]:
    return {
        "now": clock.now().isoformat().replace("+00:00", "Z"),
        "offset_seconds": clock.offset().total_seconds(),
    }


async def clock_route(request: Request) -> Response:
    """``GET``: the business clock; ``PUT``: move it (``now`` or ``offset_seconds``)."""
    if request.method == "PUT":
        try:
            body = json.loads(await request.body() or b"{}")
            if isinstance(body.get("now"), str):
                at = dt.datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
                clock.move_to(at if at.tzinfo else at.replace(tzinfo=dt.UTC))
            elif isinstance(body.get("offset_seconds"), int | float):
                clock.set_offset(dt.timedelta(seconds=body["offset_seconds"]))
            else:
                raise ValueError("missing 'now' or 'offset_seconds'")
        except (ValueError, AttributeError, OverflowError) as exc:
            message = f"Expected {{'now': ISO-8601}} or {{'offset_seconds': number}}: {exc}"
            return JSONResponse({"error": "bad_request", "message": message}, 400)
    return JSONResponse(_clock_json())


def routes(emu: Emulator) -> list[BaseRoute]:
    """Every ``/_admin`` route."""
    log = requestlog.request_log(emu)

    async def reset(request: Request) -> Response:
        reset_all(emu)
        return JSONResponse({"reset": True})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            log.clear()
            return JSONResponse({"requests": []})
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return JSONResponse(
                {"error": "bad_request", "message": "'since' must be an integer."}, 400
            )
        entries = [requestlog.as_json(entry) for entry in log.since(since)]
        last = entries[-1]["seq"] if entries else since
        return JSONResponse({"requests": entries, "last_seq": last})

    async def issued_secrets(request: Request) -> Response:
        with emu._issued_lock:
            issued = [{"kind": kind, "value": value} for kind, value in emu.issued_secrets]
        return JSONResponse({"secrets": issued})

    mounted: list[BaseRoute] = [
        Route("/_admin/reset", reset, methods=["POST"]),
        Route("/_admin/clock", clock_route, methods=["GET", "PUT"]),
        Route("/_admin/requests", requests, methods=["GET", "DELETE"]),
        Route("/_admin/issued-secrets", issued_secrets, methods=["GET"]),
        *faults_admin.admin_routes(emu),
        *ratelimit.admin_routes(emu),
        *keyvault.admin_routes(emu),
        *devops.admin_routes(emu),
        *entra.admin_routes(emu),
    ]
    return mounted
