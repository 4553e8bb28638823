"""The emulator's token-signing key: RS256 JWTs that look like Entra ID access tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from patwarden_emulator.store import Store


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SigningKey:
    """An RSA key persisted in the store, used to sign and verify access and id tokens."""

    def __init__(self, store: Store) -> None:
        pem = store.meta_or_create("signing_key_pem", self._new_key_pem)
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - we only ever store RSA keys
            raise TypeError("emulator signing key is not RSA")
        self._private = key
        self._public = key.public_key()
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324 - x5t-style key id, not security

    @staticmethod
    def _new_key_pem() -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        """Return a signed JWT with the given claims."""
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, *, audience: str | list[str] | None) -> dict[str, Any]:
        """Verify signature, expiry and (when given) audience; raise ``jwt.InvalidTokenError``."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._public,
            algorithms=["RS256"],
            audience=audience,
            options={"verify_aud": audience is not None, "require": ["exp", "iat"]},
            leeway=5,
        )
        return claims

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (what ``jwks_uri`` serves)."""
        numbers = self._public.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": self.kid,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }


def unverified_header(token: str) -> dict[str, Any]:
    """Decode a JWT header without verifying anything (for diagnostics)."""
    head = token.split(".", 1)[0]
    padded = head + "=" * (-len(head) % 4)
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return header
