"""``patwarden doctor --probe``: ask the real Azure DevOps what patwarden assumes, and compare.

Read-only by default, each probe makes one request (as the rotator unless noted):

- ``pats.list.<option>``: the PAT list with each ``displayFilterOption``;
- ``pats.get.unknown``: a PAT that does not exist (is a business error HTTP 200?);
- ``graph.users``: one Graph users page; ``tokenadmin.list``: one Token Admin page for the rotator
  (as the auditor when one is configured);
- ``variable-group.list`` / ``service-endpoint.get``: the first configured sink of that kind, as
  its identity;
- ``pats.sp-refused``: the PAT list with a configured service principal's token;
- ``auth.bad-pat-401`` / ``auth.bad-pat-203``: ``connectionData`` with a made-up PAT, with and
  without ``X-TFS-FedAuthRedirect: Suppress``;
- ``rate-limit headers``: which ``X-RateLimit-*`` headers came back on any of the above.

With ``allow_write`` it also creates one PAT (``vso.profile``, valid one hour, this organization
only), revokes it, and sends a revoke without ``authorizationId``. The new PAT's value is never
kept, shown or recorded.

Each answer is reduced to its shape (:mod:`patwarden.doctor.shapes`) and compared with
:data:`~patwarden.doctor.shapes.EXPECTED`. :meth:`ProbeReport.recording` is the sanitised record
(shapes, status codes, header names; no values, ids or names).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from patwarden.doctor.probe_report import ProbeReport, ProbeResult, Verdict, observe
from patwarden.doctor.report import field_of
from patwarden.doctor.shapes import (
    EXPECTED,
    RATE_LIMIT_HEADERS,
    compare,
)
from patwarden.errors import PatwardenError

if TYPE_CHECKING:
    from patwarden.clock import Clock
    from patwarden.config.model import Config
    from patwarden.identity.credential_set import CredentialSet

_SP_KINDS = ("service_principal", "workload_identity", "managed_identity")
_JSON = {"Accept": "application/json"}
_SUPPRESS = {**_JSON, "X-TFS-FedAuthRedirect": "Suppress"}
_PAT_API = {"api-version": "7.1-preview.1"}
_API = {"api-version": "7.1"}


@dataclass
class _Call:
    """One HTTP request of a probe."""

    method: str
    host: str  # "ado" or "vssps"
    path: str  # after /{org}/
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=lambda: dict(_SUPPRESS))
    body: Any = None

    def label(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items() if k != "api-version")
        return f"{self.method} {{{self.host}}}/{{org}}/{self.path}" + (f"?{query}" if query else "")


class Prober:
    """Runs the probes of the module docstring against the configured Azure DevOps."""

    def __init__(
        self,
        *,
        config: Config,
        credentials: CredentialSet,
        clock: Clock,
        client: httpx.Client,
        allow_write: bool = False,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.clock = clock
        self.client = client
        self.allow_write = allow_write
        self.org = config.orgs[0]
        self._headers_seen: set[str] = set()

    # --- plumbing -------------------------------------------------------------------------------
    def _token(self, identity: str, *scopes: str) -> str:
        return self.credentials.get(identity).get_token(*scopes).token

    def _send(self, call: _Call, auth: str) -> httpx.Response:
        azure = self.config.azure
        base = azure.vssps_url if call.host == "vssps" else azure.azure_devops_url
        return self.client.request(
            call.method,
            f"{base}/{self.org}/{call.path}",
            params=dict(call.params),
            headers={**call.headers, "Authorization": auth},
            json=call.body,
        )

    def _probe(self, name: str, call: _Call, auth: str | None) -> tuple[ProbeResult, Any]:
        """Send *call*, compare the answer with ``EXPECTED[name]``; also return the parsed body."""
        expected = EXPECTED[name]
        if auth is None:
            return ProbeResult(name, call.label(), Verdict.SKIPPED, "no credential"), None
        try:
            response = self._send(call, auth)
        except httpx.HTTPError as err:
            detail = f"no answer ({type(err).__name__}): check the network and azure URLs"
            return ProbeResult(name, call.label(), Verdict.FAILED, detail), None
        observed = observe(response)
        self._headers_seen.update(observed.headers)
        body = response.json() if observed.envelope in ("object", "collection") else None
        differences = tuple(compare(expected, observed))
        verdict = Verdict.DIFFERS if differences else Verdict.MATCH
        detail = "; ".join(differences) if differences else f"as modelled: {expected.about}"
        result = ProbeResult(name, call.label(), verdict, detail, observed, differences)
        return result, body

    def _bearer(self, identity: str, *scopes: str) -> tuple[str | None, str]:
        """``Bearer <token>`` for *identity*, or None and why not."""
        from azure.core.exceptions import AzureError

        try:
            return f"Bearer {self._token(identity, *scopes)}", ""
        except (PatwardenError, AzureError) as err:
            reason = str(getattr(err, "message", None) or err).splitlines()[0]
            return None, f"no token for {identity!r}: {reason}"

    # --- the probes -----------------------------------------------------------------------------
    def run(self) -> ProbeReport:
        """Run every probe; never raises for what it probes."""
        from patwarden.azdo.constants import DEFAULT_SCOPE, PAT_SCOPES

        rotator = self.config.rotator
        pat_auth, why = self._bearer(rotator, *PAT_SCOPES)
        results: list[ProbeResult] = []
        if pat_auth is None:
            label = "POST {login}/token"
            fix = f"{why} (run `patwarden doctor` for the fix)"
            results.append(ProbeResult("sign-in", label, Verdict.FAILED, fix))
        for option in ("active", "revoked", "expired", "all"):
            params = {**_PAT_API, "displayFilterOption": option, "$top": "1"}
            call = _Call("GET", "vssps", "_apis/tokens/pats", params)
            results.append(self._probe(f"pats.list.{option}", call, pat_auth)[0])
        params = {**_PAT_API, "authorizationId": "00000000-0000-4000-8000-000000000000"}
        call = _Call("GET", "vssps", "_apis/tokens/pats", params)
        results.append(self._probe("pats.get.unknown", call, pat_auth)[0])
        default_auth, _ = self._bearer(rotator, DEFAULT_SCOPE)
        results += self._graph_and_token_admin(default_auth)
        results += self._sinks()
        results.append(self._sp_refused())
        results += self._bad_pat()
        if self.allow_write:
            results += self._write(pat_auth)
        results.append(self._rate_limits())
        return ProbeReport(results=tuple(results))

    def _graph_and_token_admin(self, auth: str | None) -> list[ProbeResult]:
        from patwarden.azdo.constants import DEFAULT_SCOPE

        params = {"api-version": "7.1-preview.1", "subjectTypes": "aad"}
        graph, body = self._probe(
            "graph.users", _Call("GET", "vssps", "_apis/graph/users", params), auth
        )
        users = body.get("value") if isinstance(body, dict) else None
        descriptor = self._descriptor(users if isinstance(users, list) else [])
        admin = self.config.auditor or self.config.rotator
        label = _Call("GET", "vssps", "_apis/tokenadmin/personalaccesstokens/{descriptor}").label()
        if descriptor is None:
            skipped = ProbeResult("tokenadmin.list", label, Verdict.SKIPPED, "no user descriptor")
            return [graph, skipped]
        admin_auth, _ = self._bearer(admin, DEFAULT_SCOPE)
        path = f"_apis/tokenadmin/personalaccesstokens/{descriptor}"
        call = _Call("GET", "vssps", path, {"api-version": "7.2-preview.1", "pageSize": "1"})
        result, _ = self._probe("tokenadmin.list", call, admin_auth)
        if not self.config.auditor and result.observed and result.observed.status in (401, 403):
            why = (
                f"the rotator may not use Token Admin (HTTP {result.observed.status}); set "
                "`auditor:` to a Project Collection Administrator identity to probe it"
            )
            observed, differences = result.observed, result.differences
            result = ProbeResult(
                "tokenadmin.list", label, Verdict.SKIPPED, why, observed, differences
            )
        # Never record the descriptor: the request names its place, not its value.
        return [graph, _relabel(result, label)]

    def _descriptor(self, users: list[Any]) -> str | None:
        try:
            record = self.credentials.user(self.config.rotator).account()
        except PatwardenError:
            record = None
        wanted = record.username.lower() if record else None
        found = [u for u in users if isinstance(u, dict) and isinstance(u.get("descriptor"), str)]
        for user in found:
            if wanted and str(user.get("principalName", "")).lower() == wanted:
                return str(user["descriptor"])
        return str(found[0]["descriptor"]) if found else None

    def _sink_entries(self, kind: str) -> list[Mapping[str, Any]]:
        entries: list[Mapping[str, Any]] = []
        for body in self.config.tokens.values():
            for entry in field_of(body, "sinks") or ():
                spec = entry if isinstance(entry, Mapping) else dict(entry.model_dump())
                if spec.get("kind") == kind:
                    entries.append(spec)
        return entries

    def _sinks(self) -> list[ProbeResult]:
        from patwarden.azdo.constants import DEFAULT_SCOPE

        results: list[ProbeResult] = []
        groups = self._sink_entries("variable_group")
        label = "GET {ado}/{org}/{project}/_apis/distributedtask/variablegroups?groupName={group}"
        if not groups:
            why = "no variable_group sink is configured"
            results.append(ProbeResult("variable-group.list", label, Verdict.SKIPPED, why))
        else:
            spec = groups[0]
            auth, _ = self._bearer(str(spec.get("identity") or "writer"), DEFAULT_SCOPE)
            group = spec.get("group")
            key = "groupIds" if isinstance(group, int) else "groupName"
            path = f"{spec['project']}/_apis/distributedtask/variablegroups"
            call = _Call("GET", "ado", path, {**_API, key: str(group)})
            result, _ = self._probe("variable-group.list", call, auth)
            results.append(_relabel(result, label))
        endpoints = self._sink_entries("service_connection")
        label = "GET {ado}/{org}/{project}/_apis/serviceendpoint/endpoints/{id}"
        if not endpoints:
            why = "no service_connection sink is configured"
            results.append(ProbeResult("service-endpoint.get", label, Verdict.SKIPPED, why))
        else:
            spec = endpoints[0]
            auth, _ = self._bearer(str(spec.get("identity") or "writer"), DEFAULT_SCOPE)
            path = f"{spec['project']}/_apis/serviceendpoint/endpoints/{spec['endpoint_id']}"
            result, _ = self._probe("service-endpoint.get", _Call("GET", "ado", path, _API), auth)
            results.append(_relabel(result, label))
        return results

    def _sp_refused(self) -> ProbeResult:
        from patwarden.azdo.constants import DEFAULT_SCOPE

        call = _Call("GET", "vssps", "_apis/tokens/pats", {**_PAT_API, "$top": "1"})
        kinds = {n: getattr(i, "kind", "") for n, i in self.config.identities.items()}
        sps = sorted((n != "writer", n) for n, kind in kinds.items() if kind in _SP_KINDS)
        if not sps:
            why = "no service principal is configured"
            return ProbeResult("pats.sp-refused", call.label(), Verdict.SKIPPED, why)
        auth, why = self._bearer(sps[0][1], DEFAULT_SCOPE)
        if auth is None:
            return ProbeResult("pats.sp-refused", call.label(), Verdict.SKIPPED, why)
        return self._probe("pats.sp-refused", call, auth)[0]

    def _bad_pat(self) -> list[ProbeResult]:
        import base64

        made_up = base64.b64encode(f":{secrets.token_hex(26)}".encode()).decode()
        params = {"api-version": "7.1-preview"}
        suppressed = _Call("GET", "ado", "_apis/connectionData", params)
        redirected = _Call("GET", "ado", "_apis/connectionData", params, headers=dict(_JSON))
        return [
            self._probe("auth.bad-pat-401", suppressed, f"Basic {made_up}")[0],
            self._probe("auth.bad-pat-203", redirected, f"Basic {made_up}")[0],
        ]

    def _write(self, auth: str | None) -> list[ProbeResult]:
        expires = self.clock.now() + timedelta(hours=1)
        name = f"patwarden-probe-{self.clock.now():%Y%m%dT%H%M%SZ}"
        body = {
            "displayName": name,
            "scope": "vso.profile",
            "validTo": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "allOrgs": False,
        }
        create = _Call("POST", "vssps", "_apis/tokens/pats", _PAT_API, body=body)
        created, answer = self._probe("pats.create", create, auth)
        pat = answer.get("patToken") if isinstance(answer, dict) else None
        answer = None  # the new PAT's value is in there: drop it now
        authorization_id = pat.get("authorizationId") if isinstance(pat, dict) else None
        revoke_label = _Call("DELETE", "vssps", "_apis/tokens/pats?authorizationId={id}").label()
        if not isinstance(authorization_id, str):
            why = f"nothing to revoke; if a PAT named {name} exists, revoke it (`patwarden pat`)"
            revoke = ProbeResult("pats.revoke", revoke_label, Verdict.SKIPPED, why)
        else:
            params = {**_PAT_API, "authorizationId": authorization_id}
            call = _Call("DELETE", "vssps", "_apis/tokens/pats", params)
            revoke = _relabel(self._probe("pats.revoke", call, auth)[0], revoke_label)
        no_id = _Call("DELETE", "vssps", "_apis/tokens/pats", _PAT_API)
        return [created, revoke, self._probe("pats.revoke.no-id", no_id, auth)[0]]

    def _rate_limits(self) -> ProbeResult:
        seen = [h for h in RATE_LIMIT_HEADERS if h.lower() in self._headers_seen]
        extra = sorted(h for h in self._headers_seen if h in ("retry-after", "x-ratelimit-delay"))
        names = ", ".join([*seen, *extra]) or "none"
        detail = (
            f"seen: {names} (Azure DevOps sends them only near the limit, contract §5; "
            "patwarden honours them when present)"
        )
        return ProbeResult("rate-limit headers", "(all answers above)", Verdict.MATCH, detail)


def _relabel(result: ProbeResult, label: str) -> ProbeResult:
    return ProbeResult(
        result.probe, label, result.verdict, result.detail, result.observed, result.differences
    )


def run_probe(
    *, config: Config, credentials: CredentialSet, clock: Clock, allow_write: bool
) -> ProbeReport:
    """Run the probes against the configured Azure DevOps (see the module docstring)."""
    from patwarden.tls import ssl_context

    verify = ssl_context(config.azure.ca_bundle)
    with httpx.Client(verify=verify, timeout=30, follow_redirects=False) as client:
        prober = Prober(
            config=config,
            credentials=credentials,
            clock=clock,
            client=client,
            allow_write=allow_write,
        )
        return prober.run()
