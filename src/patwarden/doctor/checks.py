"""``patwarden doctor``: would the next rotation work? Every check says what it found and the fix.

Checks, in the order they are reported:

1. **config** — the file loads; each problem is a failed check carrying its fix.
2. **identity <name>** — every identity can get a token now. A ``kind: user`` identity redeems its
   refresh token (a cached access token would hide a revoked sign-in) and reports the days until
   re-login, a warning under :data:`RELOGIN_WARNING`. An identity that no rotation uses (not the
   rotator, no sink's) only warns when it fails.
3. **PAT API <org>** — the rotator may use the PAT Lifecycle API there (a list with ``$top=1``).
4. **policy clamps <org>** — the PATs issued for managed tokens got their configured lifetime;
   a shorter one means a maximum-lifespan policy clamps them (a failure when ``rotate_before`` is
   not shorter than what is granted: every run would rotate again).
5. **sink tokens.<t>.sinks[i]** — the sink's identity can read it (Key Vault, variable group, …);
   write permission only shows at the first rotation, which restores on failure.
6. **clock** — the local clock against the ``Date`` header of Azure DevOps (warning over a
   minute, failure over five: Entra tokens and PAT expiries are compared across machines).

The verdicts that need no I/O, the thresholds and the report live in
:mod:`patwarden.doctor.report`.

:meth:`DoctorReport.exit_code`: 0 when nothing fails (warnings allowed), 3 when something would
make the next rotation fail; with ``strict``, warnings alone give 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from patwarden.config.security_checks import security_warnings
from patwarden.doctor.report import (
    Check,
    DoctorReport,
    Status,
    clamp_checks,
    clock_skew_check,
    duration_of,
    field_of,
)
from patwarden.errors import PatwardenError

if TYPE_CHECKING:
    from patwarden.app.context import AppContext
    from patwarden.clock import Clock
    from patwarden.config.model import Config
    from patwarden.identity.credential_set import CredentialSet
    from patwarden.sinks.wiring import SinkWiring

RELOGIN_WARNING = timedelta(days=14)
_APP_FIXES = {
    "service_principal": "check client_id, tenant_id and the secret or certificate it references",
    "managed_identity": "run where a managed identity is assigned (Azure VM, App Service, AKS), "
    "or configure another kind for this identity",
    "workload_identity": "check token_file and the app's federated credential (issuer, subject, "
    "audience)",
    "azure_cli": "run `az login` as the account this identity should use",
    "legacy_password": "check the username and the password reference",
}


def _first_line(err: BaseException) -> str:
    from patwarden.azdo.errors import sanitize_server_text

    text = str(getattr(err, "message", None) or err)
    return sanitize_server_text((text.strip().splitlines() or ["no detail"])[0])


def _force_refresh_claims(now: datetime) -> str:
    # A CAE-style claims challenge makes MSAL skip its cached access token and redeem the refresh
    # token, so a revoked or expired sign-in shows now rather than at the next rotation.
    nbf = {"essential": True, "value": str(int(now.timestamp()))}
    return json.dumps({"access_token": {"nbf": nbf}})


# --- the live checks ---------------------------------------------------------------------------


class Doctor:
    """Runs the checks of the module docstring against live services."""

    def __init__(
        self,
        *,
        config: Config,
        credentials: CredentialSet,
        wiring: SinkWiring,
        clock: Clock,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.wiring = wiring
        self.clock = clock
        self._working: dict[str, bool] = {}

    def run(self) -> DoctorReport:
        """Run every check; never raises for what it checks (bugs still raise)."""
        config = self.config
        checks = [
            Check(
                check="config",
                status=Status.OK,
                detail=f"{config.source or 'configuration'} is valid: organizations "
                f"{', '.join(config.orgs)}; rotator {config.rotator}",
            )
        ]
        checks.extend(
            Check(check=f"security {w.path}", status=Status.WARNING, detail=w.message, fix=w.fix)
            for w in security_warnings(config)
        )
        checks.extend(self.identity(name) for name in config.identities)
        for org in config.orgs:
            api = self.pat_api(org)
            checks.append(api)
            if api.status is Status.OK:
                checks.extend(self.clamps(org))
        checks.extend(self.sinks())
        checks.append(self.clock_skew())
        return DoctorReport(checks=tuple(checks))

    def _sink_identities(self) -> set[str]:
        return {str(field_of(entry, "identity")) for _, _, entry in self._sink_entries()}

    def _roles(self, name: str) -> list[str]:
        roles = [
            role
            for role, who in (("rotator", self.config.rotator), ("auditor", self.config.auditor))
            if who == name
        ]
        if name in self._sink_identities():
            roles.append("sink writer")
        return roles

    def identity(self, name: str) -> Check:
        """Can identity *name* get a token right now?

        A failure of an identity no rotation uses (not the rotator, no sink's) is reported as a
        warning: it must be fixed before it is used, but the next rotation does not need it.
        """
        check = self._probe(name)
        self._working[name] = check.status in (Status.OK, Status.WARNING)
        used = name == self.config.rotator or name in self._sink_identities()
        if check.status is Status.FAILURE and not used:
            return replace(
                check,
                status=Status.WARNING,
                detail=check.detail + " (no rotation uses this identity yet)",
            )
        return check

    def _probe(self, name: str) -> Check:
        from azure.core.exceptions import AzureError

        from patwarden.azdo.constants import DEFAULT_SCOPE, PAT_SCOPES

        kind = self.config.identities[name].kind
        roles = self._roles(name)
        label = f"identity {name}"
        about = f"kind {kind}" + (f" ({', '.join(roles)})" if roles else "")
        try:
            if kind == "user":
                return self._user(name, label=label, about=about)
            scopes = PAT_SCOPES if name == self.config.rotator else (DEFAULT_SCOPE,)
            self.credentials.get(name).get_token(*scopes)
        except PatwardenError as err:
            return Check(
                check=label,
                status=Status.FAILURE,
                detail=f"{about}: {err.message}",
                fix=err.hint or _APP_FIXES.get(kind),
            )
        except AzureError as err:
            return Check(
                check=label,
                status=Status.FAILURE,
                detail=f"{about}: cannot get a token: {_first_line(err)}",
                fix=_APP_FIXES.get(kind),
            )
        if kind == "legacy_password":
            return Check(
                check=label,
                status=Status.WARNING,
                detail=f"{about}: got a token with the deprecated password flow",
                fix=f"switch to kind: user and run `patwarden login --identity {name}`",
            )
        return Check(
            check=label,
            status=Status.OK,
            detail=f"{about}: got an application token for Azure DevOps",
        )

    def _user(self, name: str, *, label: str, about: str) -> Check:
        from patwarden.azdo.constants import DEFAULT_SCOPE, PAT_SCOPES

        user = self.credentials.user(name)
        record = user.account()
        if record is None:
            return Check(
                check=label,
                status=Status.FAILURE,
                detail=f"{about}: not logged in (no token cache in {user.store.description})",
                fix=f"run `patwarden login --identity {name}` once, as the user",
            )
        from patwarden.identity.signin import origin, token_scopes

        scopes = PAT_SCOPES if name == self.config.rotator else (DEFAULT_SCOPE,)
        token = user.get_token(*scopes, claims=_force_refresh_claims(self.clock.now()))
        deadline = user.relogin_deadline()
        carried = " ".join(token_scopes(token.token)) or "unknown"
        signed_in = (
            f"{about}: signed in as {record.username} (tenant {record.tenant_id}), "
            f"{origin(record)}; the token carries scopes {carried}"
        )
        if deadline is None:  # pragma: no cover - the account was read just above
            return Check(check=label, status=Status.OK, detail=signed_in)
        left = deadline.at - self.clock.now()
        when = deadline.at.astimezone(UTC).strftime("%Y-%m-%d")
        days = round(left / timedelta(days=1))
        detail = f"{signed_in}; re-login due in {days} days ({when}, {deadline.cause.value})"
        if left < RELOGIN_WARNING:
            return Check(
                check=label,
                status=Status.WARNING,
                detail=detail,
                fix=f"run `patwarden login --identity {name}` before {when}",
            )
        return Check(check=label, status=Status.OK, detail=detail)

    def pat_api(self, org: str) -> Check:
        """May the rotator use the PAT Lifecycle API in *org*? (list, ``$top=1``)"""
        rotator, label = self.config.rotator, f"PAT API {org}"
        if not self._working.get(rotator, False):
            return Check(
                check=label,
                status=Status.SKIPPED,
                detail=f"needs a working sign-in of the rotator {rotator!r} (see above)",
            )
        try:
            client = self.wiring.azure_devops(rotator)
            next(iter(client.pats.list_tokens(org=org, page_size=1)), None)
        except PatwardenError as err:
            return Check(check=label, status=Status.FAILURE, detail=err.message, fix=err.hint)
        return Check(
            check=label,
            status=Status.OK,
            detail=f"{rotator} may manage PATs in {org} (list answered)",
        )

    def clamps(self, org: str) -> list[Check]:
        """Policy clamps seen on the PATs issued for managed tokens in *org*."""
        tokens = {
            name: body
            for name, body in self.config.tokens.items()
            if duration_of(body, "lifetime") is not None
        }
        if not tokens:
            return []
        try:
            issued = list(self.wiring.azure_devops(self.config.rotator).pats.list_tokens(org=org))
        except PatwardenError as err:
            return [
                Check(
                    check=f"policy clamps {org}",
                    status=Status.FAILURE,
                    detail=err.message,
                    fix=err.hint,
                )
            ]
        return list(clamp_checks(org=org, tokens=tokens, issued=issued))

    def _sink_entries(self) -> Iterator[tuple[str, int, Any]]:
        for token, body in self.config.tokens.items():
            entries = field_of(body, "sinks")
            if isinstance(entries, list | tuple):
                for index, entry in enumerate(entries):
                    yield token, index, entry

    def sinks(self) -> list[Check]:
        """Can each sink's identity read it?"""
        entries = list(self._sink_entries())
        if not entries:
            return [
                Check(
                    check="sinks", status=Status.SKIPPED, detail="no token has sinks configured yet"
                )
            ]
        return [self._sink(token, index, entry) for token, index, entry in entries]

    def _sink(self, token: str, index: int, entry: Any) -> Check:
        from azure.core.exceptions import AzureError

        from patwarden.sinks.errors import SinkReadFailed
        from patwarden.sinks.registry import build_sink

        label = f"sink tokens.{token}.sinks[{index}]"
        identity = field_of(entry, "identity")
        if identity is not None and not self._working.get(str(identity), True):
            return Check(
                check=label,
                status=Status.SKIPPED,
                detail=f"needs a working identity {identity!r} (see above)",
            )
        orgs = self.config.orgs
        org = field_of(self.config.tokens[token], "organization") or (orgs[0] if orgs else None)
        try:
            spec = entry if isinstance(entry, Mapping) else dict(entry.model_dump())
            sink = build_sink(spec, self.wiring.context(org), where=label.removeprefix("sink "))
            version = sink.current_version()
        except SinkReadFailed as err:
            return Check(check=label, status=Status.WARNING, detail=err.message, fix=err.hint)
        except PatwardenError as err:
            return Check(check=label, status=Status.FAILURE, detail=err.message, fix=err.hint)
        except AzureError as err:
            return Check(
                check=label,
                status=Status.FAILURE,
                detail=_first_line(err),
                fix="check the sink's identity and its access",
            )
        serves = (
            f"serves PAT {version.authorization_id}"
            if version and version.authorization_id
            else "holds no PAT from patwarden yet"
        )
        who = f" as {identity}" if identity else ""
        return Check(
            check=label, status=Status.OK, detail=f"{sink.describe()}: readable{who}; {serves}"
        )

    def clock_skew(self) -> Check:
        """Compare the system clock with the Date header of Azure DevOps.

        The system clock, not the run's: it is the one MSAL and TLS use, and the one Entra ID
        judges token times by (they are the same clock outside tests that move the run's).
        """
        import httpx

        from patwarden.clock import SystemClock
        from patwarden.tls import ssl_context

        system = SystemClock()
        azure = self.config.azure
        org = self.config.orgs[0] if self.config.orgs else ""
        url = f"{azure.azure_devops_url}/{org}/_apis/connectionData"
        headers = {"Accept": "application/json", "X-TFS-FedAuthRedirect": "Suppress"}
        try:
            with httpx.Client(verify=ssl_context(azure.ca_bundle), timeout=15) as client:
                sent = system.now()
                response = client.get(url, headers=headers)
                received = system.now()
        except (httpx.HTTPError, OSError) as err:
            return Check(
                check="clock",
                status=Status.WARNING,
                detail=f"could not reach {azure.azure_devops_url} to compare clocks "
                f"({type(err).__name__})",
                fix="check network access and azure.azure_devops_url",
            )
        return clock_skew_check(
            response.headers.get("date"),
            sent_at=sent,
            received_at=received,
            source=azure.azure_devops_url,
        )


def run_doctor(context: AppContext) -> DoctorReport:
    """Run every check with the credentials and clients of *context* (which closes them).

    Raises:
        ConfigError: the configuration of *context* cannot be loaded.
    """
    return Doctor(
        config=context.config,
        credentials=context.credentials,
        wiring=context.wiring,
        clock=context.clock,
    ).run()
