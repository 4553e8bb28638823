"""A wrapper that keeps secret values out of reprs, logs and tracebacks.

Wrap every PAT, refresh token, client secret and cache key in :class:`Secret` as soon as it enters
patwarden, and call :meth:`Secret.reveal` only at the point of use (an Authorization header, a sink
write). ``str()``, ``repr()`` and f-strings show ``Secret('***')``.
"""

from __future__ import annotations

REDACTED = "***"


class Secret:
    """An opaque secret string. Equality is constant-time; it is deliberately unhashable."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value. Use it only where the value must leave patwarden."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # here, not at module level: the CLI's start-up imports this module

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # a secret must not become a dict key by accident

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the value into whatever store receives the pickle.
        raise TypeError("Secret values cannot be pickled")
