"""Identities: named credentials built once from config and shared.

* :class:`~patwarden.identity.credential_set.CredentialSet` — ``get(name)`` returns an azure-core
  ``TokenCredential`` for any configured identity, built lazily and cached.
* :mod:`~patwarden.identity.user` — the rotator: device-code ``login``, silent refresh from an
  encrypted, lock-protected MSAL cache, ``logout`` and ``days_until_relogin``.
* :func:`~patwarden.identity.secret_refs.resolve_secret` — ``{env}`` / ``{file}`` / ``{key_vault}``.

Nothing here imports azure.identity or msal at module level: the CLI must start fast.
"""
