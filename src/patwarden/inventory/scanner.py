"""Scan organizations for PATs: users through Graph, each user's PATs through Token Admin.

The scan is a pipeline with bounded buffers, so memory does not grow with the number of PATs:

- one producer thread pages through each organization's users and hands each user to a worker
  pool, never more than ``2 * workers`` users in flight;
- the workers page through a user's PATs and put each one on a queue of ``queue_size`` items
  (they block when the consumer is slower);
- the consumer — :meth:`Scanner.rows`, a generator on the caller's thread — evaluates findings and
  yields one :class:`InventoryRow` at a time.

Every request goes through the source's client and so through the shared per-identity rate
limiter (:class:`patwarden.azdo.ratelimit.RateLimiter`). Closing the generator early stops the
workers. A user whose PATs cannot be listed (gone between the two calls, a server error after every
retry) is recorded as a problem and the scan goes on; access denied stops it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from patwarden.errors import AuthError, ConfigError, PatwardenError
from patwarden.inventory.findings import FindingRules, evaluate
from patwarden.inventory.model import InventoryRow, Owner, PatRecord

logger = logging.getLogger(__name__)

MAX_PROBLEMS_KEPT = 100


class InventorySource(Protocol):
    """Where the scanner reads users and PATs (Azure DevOps, or a fake in unit tests)."""

    def iter_owners(self, *, organization: str) -> Iterator[Owner]:
        """Yield every user of *organization* (paged underneath)."""
        ...

    def iter_pats(self, *, organization: str, owner: Owner) -> Iterator[PatRecord]:
        """Yield every PAT of *owner* in *organization* (paged underneath)."""
        ...


class UserGone(PatwardenError):
    """A user listed by Graph no longer exists when their PATs are listed (not fatal)."""


@dataclass(frozen=True, kw_only=True)
class ScanProgress:
    """Counters reported while scanning (for a progress display)."""

    organization: str
    users_listed: int
    users_scanned: int
    pats: int
    listing_done: bool


@dataclass(frozen=True)
class _OwnerDone:
    organization: str
    owner: Owner


@dataclass(frozen=True)
class _Failed:
    organization: str
    owner: Owner | None
    error: BaseException


@dataclass(frozen=True)
class _Listed:
    organization: str


class _End:
    pass


_Item = PatRecord | _OwnerDone | _Failed | _Listed | _End


class Scanner:
    """Stream inventory rows for *organizations*; read :attr:`problems` and counts afterwards."""

    def __init__(
        self,
        *,
        source: InventorySource,
        organizations: Sequence[str],
        now: datetime,
        rules: FindingRules,
        workers: int = 8,
        queue_size: int = 1000,
        on_progress: Callable[[ScanProgress], None] | None = None,
    ) -> None:
        if workers < 1 or queue_size < 1:
            raise ConfigError(f"Scanner needs workers >= 1 and queue_size >= 1 (got {workers}).")
        if not organizations:
            raise ConfigError(
                "No organization to scan.", hint="Pass --org ORG (repeat it for several)."
            )
        self._source = source
        self._organizations = tuple(organizations)
        self._now = now
        self._rules = rules
        self._workers = workers
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._slots = threading.BoundedSemaphore(workers * 2)
        self._stop = threading.Event()
        self._on_progress = on_progress
        self._globals_seen: set[str] = set()
        self.problems: list[str] = []
        self.problem_count = 0
        self.users_listed = 0
        self.users_scanned = 0
        self.pats = 0

    # --- producer and workers (background threads) ------------------------------------------

    def _put(self, item: _Item) -> bool:
        """Queue *item*, waiting while the queue is full; False once the scan was stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _list_pats(self, organization: str, owner: Owner) -> None:
        try:
            if self._stop.is_set():
                return
            for pat in self._source.iter_pats(organization=organization, owner=owner):
                if not self._put(pat):
                    return
            self._put(_OwnerDone(organization, owner))
        except Exception as err:  # handed to the consumer, which decides
            self._put(_Failed(organization, owner, err))
        finally:
            self._slots.release()

    def _acquire_slot(self) -> bool:
        while not self._stop.is_set():
            if self._slots.acquire(timeout=0.1):
                return True
        return False

    def _produce(self) -> None:
        org = self._organizations[0]
        with ThreadPoolExecutor(self._workers, thread_name_prefix="inventory") as pool:
            try:
                for org in self._organizations:
                    for owner in self._source.iter_owners(organization=org):
                        if not self._acquire_slot():
                            return
                        self.users_listed += 1  # written by this thread only
                        pool.submit(self._list_pats, org, owner)
                    self._put(_Listed(org))
            except Exception as err:  # handed to the consumer, which raises it
                self._put(_Failed(org, None, err))
                return
        self._put(_End())

    # --- consumer (the caller's thread) ---------------------------------------------------------

    def _problem(self, text: str) -> None:
        self.problem_count += 1
        logger.warning("%s", text)
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(text)

    def _handle_failure(self, item: _Failed) -> None:
        err = item.error
        if item.owner is None or isinstance(err, AuthError):
            raise err
        if not isinstance(err, PatwardenError):
            raise err
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        self._problem(f"Skipped the PATs of {item.owner.name} in {item.organization}: {first_line}")

    def _seen_before(self, pat: PatRecord) -> bool:
        """True for a global PAT already listed by another organization of this scan.

        Token Admin lists a global PAT in every organization; only global ids are remembered,
        and only when several organizations are scanned.
        """
        if not pat.is_global or len(self._organizations) < 2:
            return False
        key = pat.authorization_id.lower()
        if key in self._globals_seen:
            return True
        self._globals_seen.add(key)
        return False

    def _report(self, organization: str, *, listing_done: bool = False) -> None:
        if self._on_progress is not None:
            self._on_progress(
                ScanProgress(
                    organization=organization,
                    users_listed=self.users_listed,
                    users_scanned=self.users_scanned,
                    pats=self.pats,
                    listing_done=listing_done,
                )
            )

    def rows(self) -> Iterator[InventoryRow]:
        """Yield one evaluated row per PAT, in no particular order.

        Raises:
            AuthError: the identity may not list users or PATs (the whole scan stops).
            PatwardenError: listing an organization's users failed.
        """
        producer = threading.Thread(target=self._produce, name="inventory-users", daemon=True)
        producer.start()
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, _End):
                    return
                if isinstance(item, PatRecord):
                    if self._seen_before(item):
                        continue
                    self.pats += 1
                    if self.pats % 500 == 0:
                        self._report(item.organization)
                    yield evaluate(item, now=self._now, rules=self._rules)
                elif isinstance(item, _OwnerDone):
                    self.users_scanned += 1
                    self._report(item.organization)
                elif isinstance(item, _Listed):
                    self._report(item.organization, listing_done=True)
                else:
                    if item.owner is not None:
                        self.users_scanned += 1
                    self._handle_failure(item)
        finally:
            self._stop.set()
            producer.join(timeout=30)
