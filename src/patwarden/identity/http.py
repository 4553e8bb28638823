"""The ``requests`` session MSAL uses: TLS verification pinned to the configured CA bundle.

MSAL's own ``verify=`` loses to ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``: requests merges those
environment variables into every request whose ``verify`` is unset. When ``azure.ca_bundle`` is
configured it must win, so this session pins ``verify`` after the merge (proxies from the
environment still apply). Verification is never switched off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


def msal_session(*, verify: str | bool, timeout: float = 30.0) -> requests.Session:
    """A session for ``msal.PublicClientApplication(http_client=...)``.

    Raises:
        ValueError: ``verify`` is False (TLS verification is never switched off).
    """
    import requests
    from requests.adapters import HTTPAdapter

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
    adapter = HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    return session
