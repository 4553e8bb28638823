"""What runs after a rotation is promoted: a local command and/or a webhook (Teams, Slack).

Hooks tell consumers that a new PAT is in place; they never receive the PAT itself. A command
gets the token name, the authorization id, the expiry and the sink descriptions in its
environment (``PATWARDEN_*``), never on its argv; a webhook gets a JSON body with a human-readable
``text`` (what Teams and Slack incoming webhooks display) plus the same facts as fields. A hook
that fails or times out yields a failed :class:`HookResult` for the engine to report: it never
raises into the rotation, which has already succeeded by then. What a hook printed is
redacted (:mod:`patwarden.hooks.redaction`) before it reaches a result, the output or the audit
log; the raw tail goes only to this process's stderr with ``--debug``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from patwarden.config.hooks import HookSpec, is_https_url
from patwarden.config.refs import EnvRef, FileRef
from patwarden.errors import ConfigError
from patwarden.hooks.redaction import redact
from patwarden.secret import Secret

if TYPE_CHECKING:
    from patwarden.rotation.outcomes import Promotion

logger = logging.getLogger(__name__)

# Variables a hook command inherits from patwarden's own environment; everything else (cloud
# credentials, the cache key) stays out unless listed in `pass_env`.
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
OUTPUT_TAIL = 400


@dataclass(frozen=True, kw_only=True)
class HookEvent:
    """What a hook is told about a promoted rotation. Deliberately holds no secret."""

    token_name: str
    authorization_id: str
    valid_to: datetime
    sinks: tuple[str, ...]
    organization: str | None = None
    operation_id: str | None = None
    previous_authorization_id: str | None = None
    revoke_previous_at: datetime | None = None

    @classmethod
    def from_promotion(cls, promotion: Promotion) -> HookEvent:
        """The event for the engine's :class:`~patwarden.rotation.outcomes.Promotion`."""
        return cls(
            token_name=promotion.token_name,
            authorization_id=promotion.authorization_id,
            valid_to=promotion.valid_to,
            sinks=tuple(promotion.sinks),
            organization=promotion.organization,
            operation_id=promotion.operation_id,
            previous_authorization_id=promotion.previous_authorization_id,
            revoke_previous_at=promotion.revoke_at,
        )

    def environment(self) -> dict[str, str]:
        """The ``PATWARDEN_*`` variables a hook command receives."""
        env = {
            "PATWARDEN_TOKEN_NAME": self.token_name,
            "PATWARDEN_AUTHORIZATION_ID": self.authorization_id,
            "PATWARDEN_VALID_TO": self.valid_to.isoformat(),
            "PATWARDEN_SINKS": json.dumps(list(self.sinks)),
        }
        optional = {
            "PATWARDEN_ORGANIZATION": self.organization,
            "PATWARDEN_OPERATION_ID": self.operation_id,
            "PATWARDEN_PREVIOUS_AUTHORIZATION_ID": self.previous_authorization_id,
            "PATWARDEN_REVOKE_PREVIOUS_AT": (
                self.revoke_previous_at.isoformat() if self.revoke_previous_at else None
            ),
        }
        env.update({name: value for name, value in optional.items() if value})
        return env

    def message(self) -> dict[str, Any]:
        """The webhook body: ``text`` for Teams/Slack, plus the facts as structured fields."""
        where = ", ".join(self.sinks) or "no sinks"
        org = f" in {self.organization}" if self.organization else ""
        text = (
            f"patwarden rotated the PAT '{self.token_name}'{org}: the new token is valid until "
            f"{self.valid_to.isoformat()} and was written to {where}."
        )
        if self.previous_authorization_id and self.revoke_previous_at:
            text += (
                " The previous PAT will be revoked after "
                f"{self.revoke_previous_at.isoformat()}: consumers must pick up the new one first."
            )
        return {
            "text": text,
            "event": "rotated",
            "token_name": self.token_name,
            "organization": self.organization,
            "authorization_id": self.authorization_id,
            "valid_to": self.valid_to.isoformat(),
            "operation_id": self.operation_id,
            "previous_authorization_id": self.previous_authorization_id,
            "revoke_previous_at": (
                self.revoke_previous_at.isoformat() if self.revoke_previous_at else None
            ),
            "sinks": list(self.sinks),
        }


@dataclass(frozen=True, kw_only=True)
class HookResult:
    """The outcome of one hook; ``detail`` says what happened and, on failure, what to check."""

    kind: Literal["command", "webhook"]
    target: str
    ok: bool
    detail: str
    seconds: float

    def note(self) -> str:
        """One secret-free line for the rotation's outcome (``hook webhook https://h/…: ok``)."""
        return f"hook {self.kind} {self.target}: {'ok' if self.ok else 'FAILED'} ({self.detail})"


def run_hooks(
    *,
    spec: HookSpec,
    event: HookEvent,
    ca_bundle: str | None = None,
    known: Sequence[Secret] = (),
) -> tuple[HookResult, ...]:
    """Run the configured command, then post the webhook; never raise. Returns one result each.

    *known* are secret values (the new and previous PAT, when the caller holds them) scrubbed from
    any output a result quotes, besides everything shaped like a PAT or a JWT.
    """
    results = []
    if spec.command is not None:
        results.append(
            run_command(
                spec.command,
                event=event,
                timeout=spec.timeout,
                pass_env=spec.pass_env,
                known=known,
            )
        )
    if spec.webhook is not None:
        url = spec.webhook if isinstance(spec.webhook, str) else _resolve_url(spec.webhook)
        if isinstance(url, HookResult):
            results.append(url)
        else:
            results.append(
                post_webhook(
                    url, event=event, timeout=spec.timeout, ca_bundle=ca_bundle, known=known
                )
            )
    return tuple(results)


def _resolve_url(ref: EnvRef | FileRef) -> Secret | HookResult:
    from patwarden.config.schema import AzureConfig
    from patwarden.identity.secret_refs import describe_ref, resolve_secret

    target = f"from {describe_ref(ref)}"
    try:
        url = resolve_secret(ref, credentials=None, azure=AzureConfig())
    except ConfigError as err:
        return HookResult(kind="webhook", target=target, ok=False, detail=err.message, seconds=0.0)
    if not is_https_url(url.reveal()):
        detail = "the referenced value is not an https:// URL"
        return HookResult(kind="webhook", target=target, ok=False, detail=detail, seconds=0.0)
    return url


def promotion_notes(
    *, spec: HookSpec, promotion: Promotion, ca_bundle: str | None = None
) -> tuple[str, ...]:
    """Run the hooks for an engine promotion and return one secret-free note per hook.

    Wire it as the engine's ``PromotionHook``:
    ``lambda token, promotion: promotion_notes(spec=hook_spec, promotion=promotion)``.
    """
    event = HookEvent.from_promotion(promotion)
    results = run_hooks(spec=spec, event=event, ca_bundle=ca_bundle, known=promotion.secrets)
    return tuple(result.note() for result in results)


def _tail(output: bytes, *, target: str, known: Sequence[Secret] = ()) -> str:
    """The last characters of *output*, redacted; the raw tail is logged at debug level only."""
    raw = output.decode(errors="replace").strip()
    if raw:
        # --debug only (stderr of this process): never stored, never in a result or the audit.
        logger.debug("raw output of hook %s (not stored): %s", target, raw[-OUTPUT_TAIL:])
    text = redact(raw, known=known)  # before cutting: a PAT cut in half would escape the shapes
    return text if len(text) <= OUTPUT_TAIL else "…" + text[-OUTPUT_TAIL:]


def run_command(
    argv: Sequence[str],
    *,
    event: HookEvent,
    timeout: float,
    pass_env: Sequence[str] = (),
    known: Sequence[Secret] = (),
) -> HookResult:
    """Run *argv* (no shell) with the event in its environment; on timeout kill its group.

    A failure's detail quotes the end of the output, redacted (:func:`redact`).
    """
    target = argv[0]
    env = {name: os.environ[name] for name in (*BASE_ENV, *pass_env) if name in os.environ}
    env.update(event.environment())
    started = time.monotonic()

    def result(ok: bool, detail: str) -> HookResult:
        return HookResult(
            kind="command", target=target, ok=ok, detail=detail, seconds=time.monotonic() - started
        )

    try:
        process = subprocess.Popen(  # noqa: S603  # argv from the operator's config, no shell
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a timeout kills the command's children too
        )
    except OSError as err:
        return result(
            False,
            f"could not start {target}: {err.strerror} (check the path and that it is executable)",
        )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        return result(
            False,
            f"{target} did not finish within {timeout:g} s and was killed; "
            f"output: {_tail(output, target=target, known=known)!r}",
        )
    if process.returncode != 0:
        return result(
            False,
            f"{target} exited with status {process.returncode}; "
            f"output: {_tail(output, target=target, known=known)!r}",
        )
    return result(True, f"{target} exited with status 0")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have exited meanwhile
        os.killpg(process.pid, signal.SIGKILL)


def webhook_target(url: str) -> str:
    """The webhook as shown in results and logs: scheme and host only (the path is a credential)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


def post_webhook(
    url: str | Secret,
    *,
    event: HookEvent,
    timeout: float,
    ca_bundle: str | None = None,
    known: Sequence[Secret] = (),
) -> HookResult:
    """POST the event's message as JSON to *url*; any non-2xx answer or transport error fails."""
    import httpx

    from patwarden.tls import ssl_context

    url = url.reveal() if isinstance(url, Secret) else url
    target = webhook_target(url)
    started = time.monotonic()

    def result(ok: bool, detail: str) -> HookResult:
        return HookResult(
            kind="webhook", target=target, ok=ok, detail=detail, seconds=time.monotonic() - started
        )

    try:
        verify = ssl_context(ca_bundle)
        with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, json=event.message())
    except httpx.TimeoutException:
        return result(False, f"no answer from {target} within {timeout:g} s")
    except (httpx.HTTPError, OSError) as err:
        # Never str(err) of an httpx error: it can quote the full URL, whose path is a credential.
        return result(
            False,
            f"could not reach {target}: {type(err).__name__} (check the URL, proxy and CA bundle)",
        )
    if not response.is_success:
        return result(
            False,
            f"{target} answered HTTP {response.status_code}: "
            f"{_tail(response.content, target=target, known=known)!r}",
        )
    return result(True, f"{target} answered HTTP {response.status_code}")
