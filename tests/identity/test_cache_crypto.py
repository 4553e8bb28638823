"""AES-GCM sealing of the token cache and cache-key handling."""

from __future__ import annotations

import base64

import pytest

from patwarden.identity.cache_crypto import (
    MAGIC,
    MAGIC_BOUND,
    CacheCipher,
    CacheDecryptError,
    CacheKeyInvalid,
    decode_cache_key,
    generate_cache_key,
    identity_binding,
)
from patwarden.secret import Secret

PLAINTEXT = b'{"RefreshToken": {"secret": "rt-very-secret-value"}}'


def cipher(key: Secret | None = None, source: str = "test") -> CacheCipher:
    key = key or generate_cache_key()
    return CacheCipher(key=decode_cache_key(key, source=source), source=source)


def test_generated_keys_are_distinct_32_byte_urlsafe_base64() -> None:
    first, second = generate_cache_key(), generate_cache_key()
    assert first != second
    assert len(base64.urlsafe_b64decode(first.reveal())) == 32
    assert repr(first) == "Secret('***')"


def test_seal_hides_the_plaintext_and_opens_back() -> None:
    box = cipher()
    sealed = box.seal(PLAINTEXT)
    assert sealed.startswith(MAGIC)
    assert b"rt-very-secret-value" not in sealed
    assert box.open(sealed, where="file x") == PLAINTEXT
    assert box.seal(PLAINTEXT) != sealed  # fresh nonce every time


def test_wrong_key_is_a_clear_error() -> None:
    sealed = cipher().seal(PLAINTEXT)
    with pytest.raises(CacheDecryptError) as caught:
        cipher(source="environment variable K").open(sealed, where="file /x/rotator.cache")
    message = str(caught.value)
    assert "cannot decrypt the token cache file /x/rotator.cache" in message
    assert "environment variable K" in message
    assert "patwarden logout" in message
    assert caught.value.exit_code == 3


def test_tampering_is_detected() -> None:
    box = cipher()
    sealed = bytearray(box.seal(PLAINTEXT))
    sealed[-1] ^= 1
    with pytest.raises(CacheDecryptError, match="altered"):
        box.open(bytes(sealed), where="x")


def test_not_a_cache() -> None:
    with pytest.raises(CacheDecryptError, match="not an encrypted patwarden token cache"):
        cipher().open(b'{"plain": "json"}', where="x")


@pytest.mark.parametrize(
    "text", ["", "short", "!" * 44, base64.urlsafe_b64encode(b"x" * 16).decode()]
)
def test_malformed_keys_are_refused_naming_the_source(text: str) -> None:
    with pytest.raises(CacheKeyInvalid) as caught:
        decode_cache_key(Secret(text), source="file /run/key")
    assert "file /run/key" in str(caught.value)
    assert "patwarden config cache-key" in str(caught.value)
    assert caught.value.exit_code == 2


def test_key_with_surrounding_whitespace_and_no_padding_is_accepted() -> None:
    key = generate_cache_key().reveal()
    assert decode_cache_key(
        Secret(f"  {key.rstrip('=')}\n"), source="x"
    ) == base64.urlsafe_b64decode(key)


def test_cipher_never_shows_or_pickles_its_key() -> None:
    import pickle

    key = generate_cache_key()
    box = cipher(key)
    assert key.reveal() not in repr(box)
    with pytest.raises(TypeError):
        pickle.dumps(box)


# --- binding to the identity (issue 11, item 4) --------------------------------------------------


def _bound(key: Secret, **who: str | None) -> CacheCipher:
    fields: dict[str, str | None] = {
        "identity": "rotator",
        "tenant": "tid",
        "client_id": "cid",
        "account": "svc@contoso.example",
    }
    fields.update(who)
    binding = identity_binding(
        identity=str(fields["identity"]),
        tenant=fields["tenant"],
        client_id=fields["client_id"],
        account=fields["account"],
    )
    return CacheCipher(key=decode_cache_key(key, source="k"), source="k", binding=binding)


@pytest.mark.parametrize(
    "other",
    [
        {"identity": "auditor"},
        {"tenant": "another-tenant"},
        {"client_id": "another-app"},
        {"account": "someone-else@contoso.example"},
    ],
)
def test_a_cache_of_another_identity_sharing_the_key_is_refused(other: dict[str, str]) -> None:
    # Two identities, one key: copying (swapping) one's cache over the other's must be detected.
    key = generate_cache_key()
    theirs = _bound(key, **other).seal(PLAINTEXT)
    assert theirs.startswith(MAGIC_BOUND)
    with pytest.raises(CacheDecryptError, match="belongs to another identity"):
        _bound(key).open(theirs, where="file rotator.cache")
    assert _bound(key).open(_bound(key).seal(PLAINTEXT), where="f") == PLAINTEXT


def test_an_unbound_cache_from_before_opens_once_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = generate_cache_key()
    legacy = cipher(key).seal(PLAINTEXT)  # an old PWCACHE1 blob (associated data: magic only)
    assert legacy.startswith(MAGIC)
    with caplog.at_level("WARNING"):
        assert _bound(key).open(legacy, where="file x") == PLAINTEXT
    assert "not bound to its identity yet" in caplog.text
    with pytest.raises(CacheDecryptError):  # and a bound blob never opens without its binding
        cipher(key).open(_bound(key).seal(PLAINTEXT), where="file x")
