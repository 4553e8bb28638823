"""In-memory fakes of the rotation ports (issuer, sinks, clock) with fault and crash injection.

Fakes, not mocks: they keep real state (which PATs exist, which value each sink serves) so tests
assert outcomes. ``Crash`` is a ``BaseException`` the engine does not catch: raising it from a
fake simulates the process dying at that point.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from patwarden.domain.marker import parse_marker
from patwarden.domain.models import CreatedPat, IssuedPat, TokenSpec
from patwarden.errors import AzureDevOpsError, SinkError
from patwarden.rotation.ports import SinkVersion, SinkWriteMeta
from patwarden.secret import Secret

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the engine catches it)."""


class FakeClock:
    """A settable clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


class WrongOrganization(BaseException):
    """The engine called the issuer for another organization than the token's (a bug)."""


class Faults:
    """Injected failures per method: ``before`` raises instead of acting, ``after`` after it."""

    def __init__(self) -> None:
        self.before: dict[str, list[BaseException]] = defaultdict(list)
        self.after: dict[str, list[BaseException]] = defaultdict(list)

    def fail(self, op: str, exc: BaseException, *, after: bool = False) -> None:
        (self.after if after else self.before)[op].append(exc)

    def check_before(self, op: str) -> None:
        if self.before[op]:
            raise self.before[op].pop(0)

    def check_after(self, op: str) -> None:
        if self.after[op]:
            raise self.after[op].pop(0)


@dataclass
class _Pat:
    pat: IssuedPat
    value: str = field(repr=False)
    revoked: bool = False


class FakeIssuer:
    """An Azure DevOps PAT API in memory: one user's PATs per organization."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        max_lifetime: timedelta | None = None,
        organization: str = "contoso",
    ) -> None:
        self.clock = clock
        self.organization = organization  # every call must name it (raises WrongOrganization)
        self.max_lifetime = max_lifetime
        self.pats: dict[str, _Pat] = {}
        self.faults = Faults()
        self.created: list[str] = []
        self.revoked: list[str] = []
        self._values = (f"pat-value-{n:04d}-" + "x" * 40 for n in itertools.count())

    def create(
        self, *, organization: str, display_name: str, scopes: Sequence[str], valid_to: datetime
    ) -> CreatedPat:
        self._check(organization)
        self.faults.check_before("create")
        now = self.clock.now()
        if self.max_lifetime is not None:
            valid_to = min(valid_to, now + self.max_lifetime)
        pat = IssuedPat(
            authorization_id=str(uuid.uuid4()),
            display_name=display_name,
            valid_from=now,
            valid_to=valid_to,
            scopes=tuple(scopes),
        )
        value = next(self._values)
        self.pats[pat.authorization_id] = _Pat(pat=pat, value=value)
        self.created.append(pat.authorization_id)
        self.faults.check_after("create")
        return CreatedPat(pat=pat, secret=Secret(value))

    def get(self, *, organization: str, authorization_id: str) -> IssuedPat | None:
        self._check(organization)
        entry = self.pats.get(authorization_id)
        return None if entry is None or entry.revoked else entry.pat

    def list_marked(self, *, organization: str) -> Sequence[IssuedPat]:
        self._check(organization)
        self.faults.check_before("list_marked")
        return [
            e.pat
            for e in self.pats.values()
            if not e.revoked
            and e.pat.valid_to > self.clock.now()
            and parse_marker(e.pat.display_name) is not None
        ]

    def revoke(self, *, organization: str, authorization_id: str) -> None:
        self._check(organization)
        self.faults.check_before("revoke")
        entry = self.pats.get(authorization_id)
        if entry is not None and not entry.revoked:
            entry.revoked = True
            self.revoked.append(authorization_id)
        self.faults.check_after("revoke")

    def verify(self, *, organization: str, secret: Secret, scopes: Sequence[str]) -> None:
        self._check(organization)
        self.faults.check_before("verify")
        if self.id_of(secret.reveal()) is None:
            raise AzureDevOpsError(f"The PAT was rejected by organization {organization!r}.")

    # --- test helpers -------------------------------------------------------------------------

    def _check(self, organization: str) -> None:
        if organization != self.organization:
            raise WrongOrganization(f"called for {organization!r}, not {self.organization!r}")

    def id_of(self, value: str | None) -> str | None:
        """Return the id of the active PAT with ``value``."""
        for pat_id, entry in self.pats.items():
            if entry.value == value and not entry.revoked:
                return pat_id
        return None

    def active(self) -> set[str]:
        return {i for i, e in self.pats.items() if not e.revoked}

    def add_external(self, *, display_name: str, age: timedelta) -> IssuedPat:
        """Add a PAT created some time ago (by someone, or by a run whose state was lost)."""
        now = self.clock.now()
        pat = IssuedPat(
            authorization_id=str(uuid.uuid4()),
            display_name=display_name,
            valid_from=now - age,
            valid_to=now - age + timedelta(days=30),
        )
        self.pats[pat.authorization_id] = _Pat(pat=pat, value=next(self._values))
        return pat


@dataclass
class _Version:
    ref: str
    value: str | None = field(repr=False)
    authorization_id: str | None


class FakeSink:
    """A versioned secret store: every write adds a version; restore re-activates an old one."""

    _refs = itertools.count(1)

    def __init__(
        self,
        name: str,
        *,
        readable: bool = True,
        restorable: bool = True,
        tags: bool = True,
        initial: tuple[str, str | None] | None = None,
    ) -> None:
        self.name = name
        self.readable = readable
        self.restorable = restorable
        self.tags = tags  # whether the sink keeps the authorization id in its metadata
        self.versions: list[_Version] = []
        self.current: _Version | None = None
        self.faults = Faults()
        self.writes = 0
        if initial is not None:
            value, pat_id = initial
            self._add(value, pat_id)

    def _add(self, value: str | None, pat_id: str | None) -> _Version:
        version = _Version(
            ref=f"{self.name}-v{next(self._refs)}", value=value, authorization_id=pat_id
        )
        self.versions.append(version)
        self.current = version
        return version

    def write(self, secret: Secret, meta: SinkWriteMeta) -> SinkVersion:
        self.faults.check_before("write")
        self.writes += 1
        version = self._add(secret.reveal(), meta.authorization_id)
        self.faults.check_after("write")
        return self._public(version)  # type: ignore[return-value]  # never None here

    def read_back(self) -> Secret | None:
        self.faults.check_before("read_back")
        if not self.readable:
            return None
        if self.current is None or self.current.value is None:
            raise SinkError(f"{self.name} is empty")
        return Secret(self.current.value)

    def describe(self) -> str:
        return f"fake {self.name}"

    def restore(self, previous: SinkVersion | None) -> bool:
        self.faults.check_before("restore")
        if not self.restorable:
            return False
        if previous is None:
            self.current = None
            return True
        for version in self.versions:
            if version.ref == previous.ref:
                self.current = version
                return True
        return False

    def current_version(self) -> SinkVersion | None:
        self.faults.check_before("current_version")
        return self._public(self.current)

    def _public(self, version: _Version | None) -> SinkVersion | None:
        if version is None:
            return None
        return SinkVersion(
            ref=version.ref, authorization_id=version.authorization_id if self.tags else None
        )

    # --- test helpers -------------------------------------------------------------------------

    @property
    def value(self) -> str | None:
        return None if self.current is None else self.current.value


class TaggingSink(FakeSink):
    """A :class:`FakeSink` that, like Key Vault, tags the versions of revoked PATs."""

    def __init__(self, name: str, **kwargs: object) -> None:
        super().__init__(name, **kwargs)  # type: ignore[arg-type]
        self.revoked_tags: dict[str, datetime] = {}  # version ref → revokedAt
        self.tag_requests = 0

    def mark_revoked(self, authorization_id: str, *, at: datetime | None = None) -> int:
        self.faults.check_before("mark_revoked")
        self.tag_requests += 1
        marked = 0
        for version in self.versions:
            if (
                version.authorization_id == authorization_id
                and version.ref not in self.revoked_tags
            ):
                self.revoked_tags[version.ref] = at or T0
                marked += 1
        self.faults.check_after("mark_revoked")
        return marked

    def tagged(self, authorization_id: str) -> bool:
        """Whether every version holding *authorization_id* carries the revoked tag."""
        refs = [v.ref for v in self.versions if v.authorization_id == authorization_id]
        return bool(refs) and all(ref in self.revoked_tags for ref in refs)


def spec(
    name: str = "flux-git",
    *,
    lifetime: timedelta = timedelta(days=30),
    rotate_before: timedelta = timedelta(days=7),
    revoke_after: timedelta = timedelta(days=1),
    jitter: timedelta = timedelta(0),
) -> TokenSpec:
    """A token spec with sensible defaults."""
    return TokenSpec(
        name=name,
        organization="contoso",
        scopes=("vso.code",),
        lifetime=lifetime,
        rotate_before=rotate_before,
        revoke_after=revoke_after,
        jitter=jitter,
    )
