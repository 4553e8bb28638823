"""Fakes (not mocks) of the inventory's ports: a source of users and PATs, and a revoker."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Collection, Iterator

from patwarden.errors import AuthError, AzureDevOpsError
from patwarden.inventory.model import Owner, PatRecord
from tests.inventory.factories import pat


class FakeSource:
    """Users ``u0..u{users-1}`` in each org with ``per_user`` PATs each; optional failures.

    With *global_id*, user ``u0`` of every organization also lists the same global PAT, as Token
    Admin does for a PAT valid in all organizations.
    """

    def __init__(
        self,
        *,
        users: int,
        per_user: int,
        fail_users: dict[str, Exception] | None = None,
        fail_listing: Exception | None = None,
        delay: float = 0.0,
        global_id: str | None = None,
        endless: bool = False,
    ) -> None:
        self.users = users
        self.per_user = per_user
        self.fail_users = fail_users or {}
        self.fail_listing = fail_listing
        self.delay = delay
        self.global_id = global_id
        self.endless = endless
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.produced = 0

    def iter_owners(self, *, organization: str) -> Iterator[Owner]:
        for i in range(self.users):
            if self.fail_listing is not None and i == 3:
                raise self.fail_listing
            yield Owner(descriptor=f"aad.u{i}", principal_name=f"u{i}@x")

    def _pats(self, organization: str, owner: Owner) -> Iterator[PatRecord]:
        count = itertools.count() if self.endless else range(self.per_user)
        for n in count:
            with self.lock:
                self.produced += 1
            yield pat(
                organization=organization,
                owner=owner,
                authorization_id=f"{organization}-{owner.descriptor}-{n}",
            )
        if self.global_id and owner.descriptor == "aad.u0":
            yield pat(
                organization=organization,
                owner=owner,
                authorization_id=self.global_id,
                is_global=True,
            )

    def iter_pats(self, *, organization: str, owner: Owner) -> Iterator[PatRecord]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            if owner.principal_name in self.fail_users:
                raise self.fail_users[owner.principal_name]
            yield from self._pats(organization, owner)
        finally:
            with self.lock:
                self.active -= 1


class FakeRevoker:
    """Records revocations; ids in *bad* make any batch containing them fail."""

    def __init__(self, *, bad: set[str] = frozenset(), denied: bool = False) -> None:  # type: ignore[assignment]
        self.bad = bad
        self.denied = denied
        self.calls: list[tuple[str, list[str]]] = []
        self.revoked: set[str] = set()

    def revoke(self, *, organization: str, authorization_ids: Collection[str]) -> None:
        ids = list(authorization_ids)
        self.calls.append((organization, ids))
        if self.denied:
            raise AuthError("Identity 'auditor' may not revoke")
        if self.bad & set(ids):
            raise AzureDevOpsError("Azure DevOps answered HTTP 400: bad id\nsecond line")
        self.revoked.update(ids)
