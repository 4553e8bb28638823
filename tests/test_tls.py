"""The shared TLS settings: verification on, a custom CA only adds trust."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import certifi
import httpx
import pytest
import trustme

from patwarden.errors import ConfigError
from patwarden.tls import requests_verify, ssl_context


def test_no_bundle_means_the_default_trust_store_in_one_context_per_process() -> None:
    # httpx's verify=True built a context per transport: one per worker thread, each parsing
    # certifi's bundle again.
    context = ssl_context(None)
    assert context is ssl_context(None)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    httpx_default = httpx.create_ssl_context(verify=True)  # certifi, or SSL_CERT_FILE/_DIR
    assert _subjects(context) == _subjects(httpx_default)


def test_a_bundle_gives_a_verifying_context(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes())
    context = ssl_context(bundle)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def _subjects(context: ssl.SSLContext) -> set[str]:
    return {str(cert["subject"]) for cert in context.get_ca_certs()}


def test_a_bundle_adds_to_the_default_store_instead_of_replacing_it(tmp_path: Path) -> None:
    # Issue 11, item 10: `ca_bundle` used to replace the trust store (docs said "adds").
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    context = ssl_context(bundle)
    assert isinstance(context, ssl.SSLContext)
    defaults = ssl.create_default_context(cafile=certifi.where())
    assert _subjects(defaults) <= _subjects(context)  # every public CA is still trusted
    assert len(_subjects(context)) == len(_subjects(defaults) | _subjects(context))
    assert context.cert_store_stats()["x509_ca"] > defaults.cert_store_stats()["x509_ca"]
    system = ssl.create_default_context()  # the system's CA file, when it has one
    assert _subjects(system) <= _subjects(context)


def test_requests_clients_get_one_file_with_the_defaults_and_the_bundle(tmp_path: Path) -> None:
    assert requests_verify(None) is True
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    combined = Path(str(requests_verify(bundle)))
    content = combined.read_bytes()
    assert ca.cert_pem.bytes().strip() in content
    assert Path(certifi.where()).read_bytes().strip()[:2000] in content
    assert combined.parent.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_an_unusable_bundle_is_a_config_error(tmp_path: Path, content: bytes | None) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_bytes(content)
    with pytest.raises(ConfigError, match="Cannot use CA bundle") as caught:
        ssl_context(bundle)
    assert caught.value.hint is not None


def test_requests_clients_verify_with_the_httpx_context_of_the_same_bundle(
    tmp_path: Path,
) -> None:
    from patwarden.tls.requests_adapter import context_for

    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes())
    shared = context_for(str(requests_verify(bundle)))
    assert shared is ssl_context(bundle), "the same certificates are parsed once"
    other = tmp_path / "other.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    assert context_for(str(other)) is not ssl_context(bundle), "any other file: its own"


@pytest.mark.parametrize(
    ("ending", "removed"),
    [
        ("", True),  # a normal exit: atexit removes it
        ("tls.remove_files(); os._exit(0)", True),  # what `serve` does past its shutdown timeout
        ("os._exit(0)", False),  # the control: os._exit alone runs no atexit handler
    ],
)
def test_the_combined_file_goes_with_the_process(
    tmp_path: Path, ending: str, removed: bool
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes())
    script = (
        "import os, sys\nfrom patwarden import tls\n"
        "print(tls.requests_verify(sys.argv[1]), flush=True)\n" + ending
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(bundle)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    combined = Path(done.stdout.strip())
    assert combined.parent.parent == tmp_path
    assert combined.parent.exists() is not removed
