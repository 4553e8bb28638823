"""The ``state:`` section: where token state, the journal and the audit log live (docs/state.md).

Three backends share one contract (:class:`patwarden.rotation.ports.StateStore`):

- ``sqlite`` (the default): one file, ``state_dir/state.db`` unless ``path`` says otherwise;
- ``postgresql``: a PostgreSQL database (``url`` without a password; the password comes from
  ``password`` as a secret reference, or from libpq's own ``PGPASSFILE``/``.pgpass``);
- ``azblob``: one blob in Azure Blob Storage, leased while a run writes; authenticated with the
  Entra credential of ``identity``, or an account key only when ``account_key`` names one.

``state:`` takes either the mapping or a URL: ``postgresql://USER@HOST:PORT/DB``,
``azblob://ACCOUNT/CONTAINER[/BLOB]`` (public cloud) or ``azblob://HOST:PORT/ACCOUNT/CONTAINER[/BLOB]``
(an emulator or private endpoint, path-style), with ``?identity=NAME`` for the writer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, model_validator

from patwarden.config.refs import ConfigPath, Duration, IdentityName, SecretRef, StrictModel

__all__ = ["DEFAULT_BLOB", "StateConfig", "mask_url", "parse_state_url"]

DEFAULT_BLOB = "patwarden-state.json"
_PUBLIC_BLOB_SUFFIX = ".blob.core.windows.net"


def mask_url(url: str) -> str:
    """*url* with any password replaced by ``***`` (for messages)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f":{password}@", ":***@") if password else url


def _url_error(url: str, why: str) -> ValueError:
    return ValueError(
        f"{why} in {url!r}; write postgresql://USER@HOST:PORT/DATABASE, "
        "azblob://ACCOUNT/CONTAINER[/BLOB] or azblob://HOST:PORT/ACCOUNT/CONTAINER[/BLOB]"
    )


def parse_state_url(url: str) -> dict[str, Any]:
    """Turn a state URL into the mapping form of ``state:``.

    Raises:
        ValueError: not a URL of a known backend (the message shows the accepted shapes).
    """
    parts = urlsplit(url.strip())
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme in ("postgresql", "postgres"):
        if parts.password:
            raise _url_error(
                mask_url(url),
                "a password in the URL (give it as `password:` with a secret reference)",
            )
        return {"backend": "postgresql", "url": url.strip()}
    if parts.scheme == "sqlite":
        path = url.strip()[len("sqlite:") :]
        if not path:
            raise _url_error(url, "no file")
        return {"backend": "sqlite", "path": path}
    if parts.scheme != "azblob":
        raise _url_error(url, f"unknown state backend {parts.scheme or url!r}")
    host = parts.hostname or ""
    segments = [s for s in parts.path.split("/") if s]
    if parts.port is not None or host in ("localhost",) or host.replace(".", "").isdigit():
        if len(segments) < 2:
            raise _url_error(url, "an emulator URL needs the account and the container")
        scheme_host = f"https://{host}:{parts.port}" if parts.port else f"https://{host}"
        account_url = f"{scheme_host}/{segments[0]}"
        rest = segments[1:]
    else:
        if not host or not segments:
            raise _url_error(url, "no account or container")
        account = host if "." in host else host + _PUBLIC_BLOB_SUFFIX
        account_url = f"https://{account}"
        rest = segments
    mapping: dict[str, Any] = {
        "backend": "azblob",
        "account_url": account_url,
        "container": rest[0],
        "blob": "/".join(rest[1:]) or DEFAULT_BLOB,
    }
    if "identity" in query:
        mapping["identity"] = query["identity"]
    return mapping


class StateConfig(StrictModel):
    """The ``state:`` section (a mapping, or a URL string)."""

    backend: Literal["sqlite", "postgresql", "azblob"] = "sqlite"
    # sqlite: the file (default: state_dir/state.db)
    path: ConfigPath | None = None
    # postgresql
    url: str | None = Field(default=None, examples=["postgresql://patwarden@db.internal/patwarden"])
    password: SecretRef | None = None
    pool_size: int = Field(default=4, ge=1, le=64)
    # serve replicas: a standby leads within this long after the leader dies or stops renewing
    failover: Duration = timedelta(seconds=30)
    # azblob
    account_url: str | None = Field(
        default=None, examples=["https://contosostate.blob.core.windows.net"]
    )
    container: str | None = None
    blob: str = DEFAULT_BLOB
    identity: IdentityName | None = None
    account_key: SecretRef | None = None
    lease_duration: int = Field(default=30, ge=15, le=60)  # seconds, Azure's lease limits

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_state_url(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> StateConfig:
        if self.backend == "postgresql":
            if not self.url:
                raise ValueError("the postgresql backend needs `url` (postgresql://USER@HOST/DB)")
            if urlsplit(self.url).password:
                raise ValueError("`url` carries a password: give it as `password:` instead")
        if self.backend == "azblob":
            if not self.account_url or not self.container:
                raise ValueError("the azblob backend needs `account_url` and `container`")
            if not self.account_url.startswith("https://"):
                raise ValueError("`account_url` must be https://")
            if self.identity is None and self.account_key is None:
                raise ValueError(
                    "the azblob backend needs `identity` (the Entra identity that writes the "
                    "state) or, explicitly, `account_key`"
                )
        if self.failover < timedelta(seconds=3):
            raise ValueError("`failover` must be at least 3s")
        return self

    def describe(self) -> str:
        """Where the state lives, secret-free (``postgresql://patwarden@db/patwarden``)."""
        if self.backend == "postgresql":
            return str(self.url)
        if self.backend == "azblob":
            return f"{self.account_url}/{self.container}/{self.blob}"
        return f"sqlite:{self.path}" if self.path else "sqlite"
