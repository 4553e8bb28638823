"""Where the token-cache key comes from: the OS keyring when usable, else a key you supply.

Order for a file cache: an explicit ``key:`` reference (``{env}``, ``{file}``, ``{key_vault}``)
wins;
``{keyring: true}`` or no ``key`` uses the OS keyring if one is usable (on a headless Linux box
there usually is none). With no usable source the cache is refused — it is never written in
plaintext silently. A Key Vault cache needs a key too, unless it says ``plaintext: true``
(``config check`` and ``doctor`` warn about it; docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patwarden.errors import AuthError, ConfigError
from patwarden.identity.cache_crypto import (
    KEY_DOCS,
    CacheCipher,
    decode_cache_key,
    generate_cache_key,
)
from patwarden.identity.secret_refs import (
    CredentialProvider,
    describe_env,
    describe_file,
    describe_ref,
    env_secret,
    file_secret,
    resolve_secret,
)
from patwarden.secret import Secret

if TYPE_CHECKING:
    from patwarden.config.refs import EnvRef, FileRef, KeyringRef, KeyVaultRef
    from patwarden.config.schema import AzureConfig

KEYRING_SERVICE = "patwarden"
_SUPPLY_KEY = (
    "create a key with `patwarden config cache-key --output-file /etc/patwarden/cache.key` and set "
    "cache: {key: {file: /etc/patwarden/cache.key}} (or key: {env: PATWARDEN_CACHE_KEY})"
)


class CacheKeyUnavailable(ConfigError):
    """No key is available to encrypt or decrypt a token cache."""


def keyring_problem() -> str | None:
    """Why the OS keyring cannot hold the cache key, or None when it can.

    A backend below priority 1 (the "fail" backend, plaintext fallbacks) counts as unusable.
    """
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:  # pragma: no cover - keyring is a declared dependency
        return "the keyring package is not installed"
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return "no OS keyring backend is available (typical on a headless server or in a container)"
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return "no OS keyring backend is available"
    if getattr(backend, "priority", 0) < 1:
        return f"the only keyring backend ({type(backend).__name__}) is not a secure OS keyring"
    return None


def _keyring_key(identity: str, *, create: bool) -> Secret:
    import keyring
    from keyring.errors import KeyringError

    username = f"cache-key:{identity}"
    try:
        stored = keyring.get_password(KEYRING_SERVICE, username)
        if stored is None and create:
            fresh = generate_cache_key()
            keyring.set_password(KEYRING_SERVICE, username, fresh.reveal())
            return fresh
    except KeyringError as err:
        raise AuthError(
            f"the OS keyring refused access to the cache key of identity {identity!r}: "
            f"{type(err).__name__}",
            hint="unlock the keyring (log in to the desktop session) or " + _SUPPLY_KEY,
            docs=KEY_DOCS,
        ) from None
    if stored is None:
        raise CacheKeyUnavailable(
            f"the OS keyring holds no cache key for identity {identity!r} (service "
            f"{KEYRING_SERVICE!r})",
            hint=f"run `patwarden login --identity {identity}` on this machine to create one",
            docs=KEY_DOCS,
        )
    return Secret(stored)


def _check_key_file(path: Path) -> None:
    """Refuse a key file another user could replace: whoever swaps the key reads the next cache.

    Raises:
        UnsafeDirectory: its directory belongs to another user or others may write it.
        CacheKeyUnavailable: the file itself belongs to another user or others may write it.
    """
    import os
    import stat

    from patwarden.sinks.safe_files import check_private_directory

    check_private_directory(path.parent, purpose="cache key's directory")
    try:
        info = os.stat(path)
    except OSError:
        return  # reading it reports the missing or unreadable file with its fix
    if info.st_uid not in (os.geteuid(), 0) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheKeyUnavailable(
            f"refusing the cache key file {path}: another user owns it or may write it, and "
            "whoever replaces the key can read the next token cache written with it",
            hint=f"chmod 600 {path} and make it yours (or root's), or create a new one with "
            "`patwarden config cache-key --output-file`",
            docs=KEY_DOCS,
        )


@dataclass(frozen=True, kw_only=True)
class LocalKey:
    """A token-cache key this machine reads itself: an environment variable (``env``), a file
    (``file``), or neither: the OS keyring (``keyring`` says it was asked for explicitly).

    Plain values, unlike the config's references, so that ``status`` can open a cache from its
    snapshot of the config without loading the config models (:mod:`patwarden.app.snapshot`).
    """

    env: str | None = None
    file: Path | None = None
    keyring: bool = False

    @classmethod
    def of(cls, key: EnvRef | FileRef | KeyVaultRef | KeyringRef | None) -> LocalKey | None:
        """The local key a config reference names; None for a Key Vault reference."""
        from patwarden.config.refs import EnvRef, FileRef, KeyringRef

        if isinstance(key, EnvRef):
            return cls(env=key.env)
        if isinstance(key, FileRef):
            return cls(file=key.file)
        if key is None or isinstance(key, KeyringRef):
            return cls(keyring=key is not None)
        return None


def cache_cipher(
    *,
    identity: str,
    key: EnvRef | FileRef | KeyVaultRef | KeyringRef | None,
    credentials: CredentialProvider | None,
    azure: AzureConfig,
    create: bool,
    required: bool,
    binding: bytes = b"",
) -> CacheCipher | None:
    """The cipher for ``identity``'s token cache, or None when encryption is optional and unset.

    ``create`` (login only) lets the keyring path generate and store a new key. ``required`` is True
    unless the config explicitly allows a plaintext Key Vault cache (``plaintext: true``).
    ``binding`` (:func:`~patwarden.identity.cache_crypto.identity_binding`) ties the sealed cache
    to its identity.

    Raises:
        CacheKeyUnavailable: no usable key source, or the keyring has no key yet.
        CacheKeyInvalid: the supplied key is malformed.
        SecretUnavailable: the referenced variable/file/secret is missing.
    """
    from patwarden.config.refs import KeyVaultRef

    if isinstance(key, KeyVaultRef):
        source = describe_ref(key)
        secret = resolve_secret(key, credentials=credentials, azure=azure)
        return CacheCipher(
            key=decode_cache_key(secret, source=source), source=source, binding=binding
        )
    local = LocalKey.of(key)
    if local is None or (key is None and not required):
        return None
    return local_cache_cipher(identity=identity, key=local, create=create, binding=binding)


def local_cache_cipher(
    *, identity: str, key: LocalKey, create: bool, binding: bytes = b""
) -> CacheCipher:
    """The cipher for ``identity``'s token cache from a key read on this machine (see
    :func:`cache_cipher`).

    Raises:
        CacheKeyUnavailable: the key file is unsafe, no keyring is usable or it has no key yet.
        CacheKeyInvalid: the key is malformed.
        SecretUnavailable: the variable or file is missing.
    """
    if key.file is not None:
        _check_key_file(key.file)
        source = describe_file(key.file)
        secret = file_secret(key.file)
    elif key.env is not None:
        source = describe_env(key.env)
        secret = env_secret(key.env)
    else:
        problem = keyring_problem()
        if problem is not None:
            asked = "key: {keyring: true} is set, but " if key.keyring else ""
            raise CacheKeyUnavailable(
                f"no key to encrypt the token cache of identity {identity!r}: {asked}{problem}",
                hint=_SUPPLY_KEY,
                docs=KEY_DOCS,
            )
        source = f"the OS keyring (service {KEYRING_SERVICE!r}, identity {identity!r})"
        secret = _keyring_key(identity, create=create)
    return CacheCipher(key=decode_cache_key(secret, source=source), source=source, binding=binding)
