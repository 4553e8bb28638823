"""Admin endpoints for fault injection (see :mod:`patwarden_emulator.faults.injector`).

``POST /_admin/faults`` adds a rule, ``GET`` lists the rules with their counters, ``DELETE`` removes
every rule and lets parked requests carry on, ``DELETE /_admin/faults/{id}`` removes one rule.
``GET /_admin/faults/held`` tells how many requests a ``hold`` rule parked; ``POST
/_admin/faults/release {"action": "continue"|"drop", "count"?: N}`` lets them go (or resets their
connections).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from patwarden_emulator.context import Emulator
from patwarden_emulator.faults.injector import KINDS, faults_of

_FIELDS = {
    "route",
    "kind",
    "status",
    "retry_after",
    "latency_ms",
    "probability",
    "seed",
    "count",
    "after",
}


class InvalidFault(ValueError):
    """A fault specification the admin API refuses (the message says which field and why)."""


def _int(spec: dict[str, Any], key: str, *, minimum: int, maximum: int | None = None) -> Any:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidFault(f"'{key}' must be an integer >= {minimum}.")
    if maximum is not None and value > maximum:
        raise InvalidFault(f"'{key}' must be an integer <= {maximum}.")
    return value


def parse_fault(spec: Any) -> dict[str, Any]:
    """Validate a ``POST /_admin/faults`` body into :meth:`Faults.add` keyword arguments.

    Raises:
        InvalidFault: an unknown field, a missing route or kind, or a value out of range.
    """
    if not isinstance(spec, dict):
        raise InvalidFault("The body must be a JSON object.")
    unknown = set(spec) - _FIELDS
    if unknown:
        raise InvalidFault(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    route = spec.get("route")
    if not isinstance(route, str):
        raise InvalidFault("'route' (a regular expression on \"METHOD /path\") is required.")
    try:
        pattern = re.compile(route)
    except re.error as err:
        raise InvalidFault(f"'route' is not a valid regular expression: {err}.") from err
    kind = spec.get("kind")
    if kind not in KINDS:
        raise InvalidFault(f"'kind' must be one of: {', '.join(KINDS)}.")
    probability = spec.get("probability", 1.0)
    if isinstance(probability, bool) or not isinstance(probability, int | float):
        raise InvalidFault("'probability' must be a number.")
    if not 0 < probability <= 1:
        raise InvalidFault("'probability' must be greater than 0 and at most 1.")
    after = spec.get("after", False)
    if not isinstance(after, bool):
        raise InvalidFault("'after' must be true or false.")
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidFault("'seed' must be an integer.")
    latency_ms = _int(spec, "latency_ms", minimum=0)
    if kind == "latency" and latency_ms is None:
        raise InvalidFault("A 'latency' fault needs 'latency_ms'.")
    return {
        "route": pattern,
        "kind": kind,
        "status": _int(spec, "status", minimum=400, maximum=599) or 503,
        "retry_after": 2
        if spec.get("retry_after") is None
        else _int(spec, "retry_after", minimum=0),
        "latency_ms": latency_ms,
        "probability": float(probability),
        "seed": seed,
        "remaining": _int(spec, "count", minimum=1),
        "after": after,
    }


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": "bad_request", "message": message}, status_code=400)


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return await request.json()
    except ValueError as err:
        raise InvalidFault("The body is not valid JSON.") from err


def admin_routes(emu: Emulator) -> list[BaseRoute]:
    """``/_admin/faults...``."""
    faults = faults_of(emu)

    def listing() -> JSONResponse:
        return JSONResponse({"faults": [rule.as_json() for rule in faults.rules]})

    async def collection(request: Request) -> Response:
        if request.method == "GET":
            return listing()
        if request.method == "DELETE":
            faults.rules.clear()
            faults.release(action="continue")
            return listing()
        try:
            rule = faults.add(**parse_fault(await _json(request)))
        except InvalidFault as err:
            return _bad_request(str(err))
        return JSONResponse(rule.as_json(), status_code=201)

    async def one(request: Request) -> Response:
        if not faults.remove(int(request.path_params["rule_id"])):
            return JSONResponse({"error": "not_found", "message": "No such fault."}, 404)
        return listing()

    async def held(request: Request) -> Response:
        parked = [{"method": h.method, "path": h.path, "after": h.after} for h in faults.held]
        return JSONResponse({"held": len(parked), "requests": parked})

    async def release(request: Request) -> Response:
        try:
            body = await _json(request)
        except InvalidFault as err:
            return _bad_request(str(err))
        action = body.get("action", "continue") if isinstance(body, dict) else None
        count = body.get("count") if isinstance(body, dict) else None
        if action not in ("continue", "drop"):
            return _bad_request('\'action\' must be "continue" or "drop".')
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            return _bad_request("'count' must be a positive integer.")
        return JSONResponse({"released": faults.release(action=action, count=count)})

    return [
        Route("/_admin/faults", collection, methods=["GET", "POST", "DELETE"]),
        Route("/_admin/faults/held", held, methods=["GET"]),
        Route("/_admin/faults/release", release, methods=["POST"]),
        Route("/_admin/faults/{rule_id:int}", one, methods=["DELETE"]),
    ]
