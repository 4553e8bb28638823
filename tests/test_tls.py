"""The shared TLS settings: verification on, a custom CA only adds trust."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from patwarden.errors import ConfigError
from patwarden.tls import ssl_context


def test_no_bundle_means_the_default_trust_store() -> None:
    assert ssl_context(None) is True


def test_a_bundle_gives_a_verifying_context(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes())
    context = ssl_context(bundle)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_an_unusable_bundle_is_a_config_error(tmp_path: Path, content: bytes | None) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_bytes(content)
    with pytest.raises(ConfigError, match="Cannot use CA bundle") as caught:
        ssl_context(bundle)
    assert caught.value.hint is not None
