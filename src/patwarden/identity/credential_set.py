"""Build each configured identity into a credential once, lazily, and share it.

Every credential honours ``azure.authority_host``, ``azure.ca_bundle`` and, for hosts MSAL does not
know, ``disable_instance_discovery=True``. TLS verification is never switched off.
azure.identity and msal are imported inside the builders so that importing this module stays cheap.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from patwarden.clock import Clock, SystemClock
from patwarden.config.refs import KeyVaultRef
from patwarden.config.schema import (
    AzureCliIdentity,
    Config,
    FileCacheConfig,
    LegacyPasswordIdentity,
    ManagedIdentity,
    ServicePrincipalIdentity,
    UserIdentity,
    WorkloadIdentity,
)
from patwarden.errors import ConfigError
from patwarden.identity.cache_crypto import identity_binding
from patwarden.identity.cache_keys import LocalKey, cache_cipher
from patwarden.identity.cache_store import CacheStore
from patwarden.identity.file_cache import FileCache
from patwarden.identity.legacy import LegacyPasswordCredential
from patwarden.identity.secret_refs import resolve_secret
from patwarden.identity.single_flight import SingleFlightCredential
from patwarden.identity.user import UserCredential, UserSettings
from patwarden.secret import Secret

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from patwarden.config.refs import EnvRef, FileRef

log = logging.getLogger(__name__)


class CredentialSet:
    """``get(name)`` → the ``TokenCredential`` of an identity, built on first use and cached.

    Worker threads share it: concurrent fetches of one scope set wait for a single one
    (:class:`~patwarden.identity.single_flight.SingleFlightCredential`).

    *clock* is the run's time source, handed to the user credentials (re-login countdown).
    """

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._built: dict[str, TokenCredential] = {}
        self._building: set[str] = set()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"CredentialSet(identities={sorted(self.config.identities)!r})"

    def get(self, name: str) -> TokenCredential:
        """The credential for identity ``name``.

        Raises:
            ConfigError: no identity of that name, or its secrets reference each other in a circle.
            patwarden.errors.PatwardenError: a secret or cache key it needs cannot be resolved.
        """
        with self._lock:
            if name in self._built:
                return self._built[name]
            if name not in self.config.identities:
                raise ConfigError(
                    f"no identity named {name!r} in the configuration",
                    hint="configured identities: "
                    + (", ".join(sorted(self.config.identities)) or "none"),
                )
            if name in self._building:
                raise ConfigError(
                    f"identity {name!r} needs itself to read its own secret",
                    hint="use an env or file reference",
                )
            self._building.add(name)
            try:
                credential = self._build(name)
            finally:
                self._building.discard(name)
            if not isinstance(credential, UserCredential):  # that one holds a lock of its own
                credential = SingleFlightCredential(credential)
            self._built[name] = credential
            return credential

    def user(self, name: str) -> UserCredential:
        """The credential of a ``kind: user`` identity, with ``login``/``logout``/status.

        Raises:
            ConfigError: the identity is not of kind user.
        """
        credential = self.get(name)
        if not isinstance(credential, UserCredential):
            kind = getattr(self.config.identities[name], "kind", "?")
            raise ConfigError(
                f"identity {name!r} is a {kind}; only kind: user identities log in interactively",
                hint="pick the rotator identity: `patwarden login --identity <user identity>`",
            )
        return credential

    def secret(self, ref: EnvRef | FileRef | KeyVaultRef) -> Secret:
        """Resolve a secret reference, using this set's identities for Key Vault references."""
        return resolve_secret(ref, credentials=self, azure=self.config.azure)

    def close(self) -> None:
        """Close every credential built so far."""
        with self._lock:
            for credential in self._built.values():
                close = getattr(credential, "close", None)
                if callable(close):
                    close()
            self._built.clear()

    # --- builders -------------------------------------------------------------------------------

    def _common(self) -> dict[str, Any]:
        azure = self.config.azure
        options: dict[str, Any] = {"authority": azure.authority_host}
        if not azure.is_well_known_authority:
            options["disable_instance_discovery"] = True
        if azure.ca_bundle is not None:  # the default CAs plus the bundle (patwarden.tls)
            options["connection_verify"] = azure.verify
        return options

    def _tenant(self, name: str) -> str:
        return tenant_of(self.config, name)

    def _build(self, name: str) -> TokenCredential:
        identity = self.config.identities[name]
        if isinstance(identity, UserIdentity):
            return self._user(name, identity)
        if isinstance(identity, ServicePrincipalIdentity):
            return self._service_principal(name, identity)
        if isinstance(identity, ManagedIdentity):
            from azure.identity import ManagedIdentityCredential

            options: dict[str, Any] = {}
            if self.config.azure.ca_bundle is not None:
                options["connection_verify"] = self.config.azure.verify
            return ManagedIdentityCredential(client_id=identity.client_id, **options)
        if isinstance(identity, WorkloadIdentity):
            from azure.identity import WorkloadIdentityCredential

            options = self._common()
            options.pop("disable_instance_discovery", None)  # token endpoint is called directly
            return WorkloadIdentityCredential(
                tenant_id=self._tenant(name),
                client_id=identity.client_id,
                token_file_path=str(identity.token_file),
                **options,
            )
        if isinstance(identity, AzureCliIdentity):
            from azure.identity import AzureCliCredential

            # `az` does its own HTTP; it honours REQUESTS_CA_BUNDLE, not our ca_bundle.
            return AzureCliCredential(
                tenant_id=identity.tenant_id or self.config.azure.tenant_id or ""
            )
        if isinstance(identity, LegacyPasswordIdentity):
            return self._legacy(name, identity)
        raise ConfigError(
            f"identity {name!r} has an unsupported kind"
        )  # pragma: no cover - exhaustive

    def _service_principal(self, name: str, identity: ServicePrincipalIdentity) -> TokenCredential:
        tenant = self._tenant(name)
        if identity.client_secret is not None:
            from azure.identity import ClientSecretCredential

            secret = self.secret(identity.client_secret)
            return ClientSecretCredential(
                tenant, identity.client_id, secret.reveal(), **self._common()
            )
        from azure.identity import CertificateCredential

        certificate = identity.certificate
        if certificate is None:  # pragma: no cover - the model requires one of the two
            raise ConfigError(f"identity {name!r} has neither client_secret nor certificate")
        password = (
            self.secret(certificate.password).reveal().encode() if certificate.password else None
        )
        return CertificateCredential(
            tenant,
            identity.client_id,
            str(certificate.path),
            password=password,
            send_certificate_chain=certificate.send_certificate_chain,
            **self._common(),
        )

    def _legacy(self, name: str, identity: LegacyPasswordIdentity) -> TokenCredential:
        if (
            not identity.legacy_password_flow
        ):  # load_config refuses this; double-check for code-built configs
            raise ConfigError(
                f"identity {name!r} uses the password flow without legacy_password_flow: true"
            )
        azure = self.config.azure
        return LegacyPasswordCredential(
            name=name,
            client_id=identity.client_id,
            authority=f"{azure.authority_host}/{self._tenant(name)}",
            username=identity.username,
            password=lambda: self.secret(identity.password),
            verify=azure.verify,
            instance_discovery=azure.is_well_known_authority,
        )

    def _user(self, name: str, identity: UserIdentity) -> UserCredential:
        cache = file_cache(self.config, name)
        return UserCredential(
            settings=user_settings(self.config, name),
            open_store=cache.open
            if cache is not None
            else lambda create: self._key_vault_store(name, identity, create),
            clock=self.clock.now,
        )

    def _key_vault_store(self, name: str, identity: UserIdentity, create_key: bool) -> CacheStore:
        from patwarden.identity.cache_generation import guarded
        from patwarden.identity.keyvault import secret_client
        from patwarden.identity.keyvault_store import KeyVaultCacheStore

        cache = identity.cache
        if isinstance(cache, FileCacheConfig):  # pragma: no cover - _user opens those
            raise ConfigError(f"identity {name!r}: its token cache is a file")
        azure = self.config.azure
        cipher = cache_cipher(
            identity=name,
            key=cache.key,
            credentials=self,
            azure=azure,
            create=create_key,
            # A Key Vault cache is plaintext only when its config says so (docs/security.md).
            required=not cache.plaintext,
            binding=identity_binding(
                identity=name,
                tenant=identity.tenant_id or azure.tenant_id,
                client_id=identity.client_id,
                account=identity.username,
            ),
        )
        store = KeyVaultCacheStore(
            client_factory=lambda: secret_client(
                vault_url=cache.vault_url, credential=self.get(cache.identity), azure=azure
            ),
            vault_url=cache.vault_url,
            secret=cache.secret,
            identity=cache.identity,
            cipher=cipher,
        )
        return guarded(store, state_dir=self.config.state_dir, identity=name)


def user_settings(config: Config, name: str) -> UserSettings:
    """What the credential of user identity *name* needs from *config* (no secrets).

    Raises:
        ConfigError: the identity has no tenant (load_config already refuses that).
    """
    identity = config.identities[name]
    if not isinstance(identity, UserIdentity):  # pragma: no cover - callers check the kind
        raise ConfigError(f"identity {name!r} is not of kind user")
    azure = config.azure
    return UserSettings(
        name=name,
        client_id=identity.client_id,
        tenant_id=tenant_of(config, name),
        authority_host=azure.authority_host,
        ca_bundle=None if azure.ca_bundle is None else str(azure.ca_bundle),
        instance_discovery=azure.is_well_known_authority,
        expected_username=identity.username,
        sign_in_frequency=identity.sign_in_frequency,
    )


def tenant_of(config: Config, name: str) -> str:
    """The tenant identity *name* signs in to.

    Raises:
        ConfigError: it has none (load_config already refuses that; kept for configs built in
            code).
    """
    tenant = config.tenant_for(name)
    if not tenant:
        raise ConfigError(
            f"identity {name!r} has no tenant", hint="set its tenant_id or azure.tenant_id"
        )
    return tenant


def file_cache(config: Config, name: str) -> FileCache | None:
    """The encrypted cache file of user identity *name*, as plain values; None when its cache
    is in Key Vault or its key is a Key Vault reference (reading those needs another identity)."""
    identity = config.identities[name]
    if not isinstance(identity, UserIdentity) or not isinstance(identity.cache, FileCacheConfig):
        return None
    key = LocalKey.of(identity.cache.key)
    if key is None:
        return None
    return FileCache(
        identity=name,
        path=config.cache_path(name),
        key=key,
        tenant_id=identity.tenant_id or config.azure.tenant_id,
        client_id=identity.client_id,
        account=identity.username,
        state_dir=config.state_dir,
    )
