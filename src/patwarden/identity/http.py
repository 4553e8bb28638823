"""HTTP for MSAL: a session with TLS pinned to the configured CA, and error translation.

MSAL's own ``verify=`` loses to ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``: requests merges those
environment variables into every request whose ``verify`` is unset. When ``azure.ca_bundle`` is
configured it must win, so this session pins ``verify`` after the merge (proxies from the
environment still apply). Verification is never switched off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from patwarden.errors import DOCS, AuthError

if TYPE_CHECKING:
    import requests

_CODE_FIELD = re.compile(r'("(?:device_code|code)": )"[^"]*"')


class _MaskCodes(logging.Filter):
    """MSAL's DEBUG dump of a token event masks tokens, but not the device code it redeemed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _CODE_FIELD.sub(r'\1"********"', arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


# `patwarden --debug` shows MSAL's DEBUG logs; a device code in them would be a credential.
logging.getLogger("msal.token_cache").addFilter(_MaskCodes())


def msal_session(*, verify: str | bool, timeout: float = 30.0) -> requests.Session:
    """A session for ``msal.PublicClientApplication(http_client=...)``.

    Raises:
        ValueError: ``verify`` is False (TLS verification is never switched off).
    """
    import requests

    from patwarden.tls.requests_adapter import SharedContextAdapter

    if verify is False:
        raise ValueError("TLS verification cannot be switched off")

    class PinnedSession(requests.Session):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
            if isinstance(self.verify, str):
                settings["verify"] = self.verify
            return settings

    session = PinnedSession()
    session.verify = verify
    adapter = SharedContextAdapter(verify, max_retries=1)  # CA file parsed once, not per connection
    session.mount("https://", adapter)
    return session


@contextmanager
def entra_call(*, authority: str, action: str) -> Iterator[None]:
    """Turn transport and service failures around an MSAL call into an AuthError.

    TLS failures point at ``azure.ca_bundle``; unreachable hosts and HTTP 5xx say to retry; a
    failed authority discovery points at ``tenant_id`` / ``authority_host``.

    Raises:
        AuthError: any of the above, naming ``authority`` and ``action``.
    """
    import requests
    from msal.exceptions import MsalServiceError

    try:
        yield
    except requests.exceptions.SSLError as err:
        if "certificate verify failed" not in str(err).lower():  # a reset or EOF mid-TLS
            raise AuthError(
                f"cannot reach Entra ID at {authority} to {action}: connection broken mid-TLS",
                hint="check network access and azure.authority_host; then retry",
            ) from None
        raise AuthError(
            f"TLS verification failed talking to {authority} (to {action})",
            hint="if a proxy or emulator uses its own CA, set azure.ca_bundle to its PEM file",
            docs=f"{DOCS}/configuration.md#azure",
        ) from None
    except requests.exceptions.RequestException as err:
        raise AuthError(
            f"cannot reach Entra ID at {authority} to {action}: {type(err).__name__}",
            hint="check network access and azure.authority_host; then retry",
        ) from None
    except MsalServiceError as err:  # an HTTP error status without an OAuth error body
        raise AuthError(
            f"Entra ID at {authority} is temporarily unable to answer (to {action}): {err}",
            hint="retry later; the sign-in itself is still valid",
        ) from None
    except ValueError as err:  # MSAL raises ValueError when authority discovery fails
        if "authority" not in str(err).lower():
            raise
        raise AuthError(
            f"Entra ID at {authority} did not answer as an authority for this tenant",
            hint="check tenant_id and azure.authority_host",
            docs=f"{DOCS}/identities.md#aadsts90002",
        ) from None
