"""The sink contract test, shipped so that every sink's tests, built-in or plugin, inherit it.

Needs pytest (a plugin's test dependency; patwarden itself does not depend on it)::

    from patwarden.plugins.testing import SinkContract

    class TestEnvFileSink(SinkContract):
        kind = "env_file"  # also checks the entry point and the spec model

        @pytest.fixture
        def sink(self, tmp_path):
            return EnvFileSink.from_spec(EnvFileSinkSpec(path=tmp_path / "pat.env"), CONTEXT)

The ``sink`` fixture must return a fresh sink whose target holds nothing patwarden wrote. Class
attributes say what the sink can do: ``reads_back`` (``read_back`` returns the value rather than
None) and ``restores_previous`` (``restore(v1)`` after a second write brings v1 back; write-only
sinks cannot). Set ``kind`` to the name the sink registers under ``patwarden.sinks`` to also check
that it loads through the registry with a usable ``spec_model``.
"""

from __future__ import annotations

import logging
import secrets
import string
import uuid
from datetime import timedelta
from typing import ClassVar

import pytest

from patwarden.clock import SystemClock
from patwarden.rotation.ports import Sink, SinkVersion, SinkWriteMeta
from patwarden.secret import Secret
from patwarden.sinks.registry import load_sink_kind
from patwarden.sinks.spec import SinkSpec

__all__ = ["SinkContract", "fake_meta", "fake_pat"]

_PAT_ALPHABET = string.ascii_lowercase + string.digits


def fake_pat() -> Secret:
    """A fresh PAT-shaped value (52 characters), unique per call so leaks are attributable."""
    return Secret("".join(secrets.choice(_PAT_ALPHABET) for _ in range(52)))


def fake_meta(token_name: str = "flux-git") -> SinkWriteMeta:  # noqa: S107  # a token *name*
    """Write metadata for a PAT that is valid for 30 days."""
    return SinkWriteMeta(
        token_name=token_name,
        authorization_id=str(uuid.uuid4()),
        operation_id=f"op-{uuid.uuid4().hex[:12]}",
        valid_to=(SystemClock().now() + timedelta(days=30)).replace(microsecond=0),
    )


class SinkContract:
    """Behaviour every sink promises (:class:`~patwarden.rotation.ports.Sink`). Inherit it."""

    reads_back: ClassVar[bool] = True
    restores_previous: ClassVar[bool] = True
    kind: ClassVar[str | None] = None

    @pytest.fixture
    def sink(self) -> Sink:
        """A fresh sink; every subclass must override this fixture."""
        raise NotImplementedError("the sink's test class must provide a `sink` fixture")

    def test_is_a_sink(self, sink: Sink) -> None:
        assert isinstance(sink, Sink)

    def test_kind_loads_through_the_registry(self, sink: Sink) -> None:
        if self.kind is None:
            pytest.skip("set `kind` to check the entry point")
        loaded = load_sink_kind(self.kind)
        assert issubclass(loaded.spec_model, SinkSpec)
        owner = getattr(loaded.from_spec, "__self__", None)  # the class of a classmethod
        if isinstance(owner, type):
            assert isinstance(sink, owner), f"{self.kind!r} is registered as {owner.__name__}"
        spec = getattr(sink, "spec", None)
        if isinstance(spec, SinkSpec):
            assert isinstance(spec, loaded.spec_model)
            assert spec.kind == self.kind
            assert loaded.parse(spec) is spec
            assert loaded.parse(spec.model_dump(mode="json")) == spec

    def test_write_then_read_back_and_current_version(
        self, sink: Sink, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        pat, meta = fake_pat(), fake_meta()
        version = sink.write(pat, meta)
        assert isinstance(version, SinkVersion)
        assert version.authorization_id == meta.authorization_id
        current = sink.current_version()
        assert current is not None
        assert current.ref == version.ref
        assert current.authorization_id == meta.authorization_id
        value = sink.read_back()
        if self.reads_back:
            assert value == pat
        else:
            assert value is None
        assert pat.reveal() not in caplog.text

    def test_write_twice_keeps_previous(self, sink: Sink) -> None:
        first_pat, first_meta = fake_pat(), fake_meta()
        first = sink.write(first_pat, first_meta)
        second_pat, second_meta = fake_pat(), fake_meta()
        second = sink.write(second_pat, second_meta)
        assert second.ref != first.ref
        current = sink.current_version()
        assert current is not None
        assert (current.ref, current.authorization_id) == (second.ref, second_meta.authorization_id)
        restored = sink.restore(first)
        assert restored is self.restores_previous
        current = sink.current_version()
        assert current is not None
        expected, expected_pat = (first, first_pat) if restored else (second, second_pat)
        assert current.authorization_id == expected.authorization_id
        if self.reads_back:
            assert sink.read_back() == expected_pat

    def test_restore_of_the_current_version_is_true(self, sink: Sink) -> None:
        version = sink.write(fake_pat(), fake_meta())
        assert sink.restore(version) is True
        current = sink.current_version()
        assert current is not None
        assert current.authorization_id == version.authorization_id

    def test_describe_has_no_secret(self, sink: Sink) -> None:
        pat = fake_pat()
        sink.write(pat, fake_meta())
        description = sink.describe()
        assert description
        assert "\n" not in description
        assert pat.reveal() not in description

    def test_repr_has_no_secret(self, sink: Sink) -> None:
        pat = fake_pat()
        version = sink.write(pat, fake_meta())
        for text in (repr(sink), str(sink), repr(version), repr(sink.current_version())):
            assert pat.reveal() not in text
