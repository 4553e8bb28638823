"""The Azure Blob state store: the whole state in one blob, for stateless scheduled jobs.

Like Terraform's ``azurerm`` backend, a run that writes holds a **lease** on the state blob
(:class:`LeaseKeeper`: finite, 15-60 s, renewed by a background thread while any token lock or
write needs it, released when none does). A holder that dies stops renewing and its lease lapses
by itself; a live lease is never broken. Every write is a read-change-write of the blob whose
upload carries the lease id **and** the ETag it read (``If-Match``), so

- a journal record is in Azure Storage (the call returned) before the step it records runs;
- a process whose lease lapsed (paused, cut off) and was taken by another writes nothing: the
  upload fails and :class:`~patwarden.rotation.ports.StateFenced` is raised.

Per-token locks are the lease (across processes) plus a thread lock per token (within one).
Authentication is the Entra credential of the configured identity (``Storage Blob Data
Contributor`` on the container); an account key only when the configuration names one.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobLeaseClient

from patwarden.domain.models import AuditRecord, JournalEntry, ManagedTokenState
from patwarden.domain.operation import Operation
from patwarden.errors import StateError
from patwarden.rotation.ports import StateFenced, StateLocked
from patwarden.state.audit_query import AuditQuery
from patwarden.state.blob_doc import Document
from patwarden.state.codec import iso
from patwarden.state.dump import StateDump

__all__ = ["AzureBlobBackend", "AzureBlobStateStore", "LeaseKeeper"]

log = logging.getLogger(__name__)
_DOCS = "https://github.com/patwarden/patwarden/blob/main/docs/state.md#azure-blob-storage"
_RETRY = 0.5  # seconds between attempts to take a lease another run holds


class LeaseKeeper:
    """This process's lease on the state blob, shared by every store and thread of one backend."""

    def __init__(
        self, client: BlobClient, *, duration: int, error: Callable[[AzureError], StateError]
    ) -> None:
        self.lease_id = str(uuid.uuid4())
        self._lease = BlobLeaseClient(client, lease_id=self.lease_id)
        self._duration = duration
        self._error = error
        self._cond = threading.Condition()
        self._holders = 0
        self._stop = threading.Event()
        self._wait = threading.Event()  # never set: a sleep that reads no clock

    @property
    def client(self) -> BlobLeaseClient:
        """The lease client (writes carry its id)."""
        return self._lease

    @contextmanager
    def held(self, *, timeout: float, what: str) -> Iterator[str]:
        """Hold the lease (taking it if no thread of ours does) for the ``with`` block.

        Raises:
            StateLocked: another run held the lease for longer than ``timeout`` seconds.
        """
        with self._cond:
            if self._holders == 0:
                self._acquire(timeout, what)
            self._holders += 1
        try:
            yield self.lease_id
        finally:
            with self._cond:
                self._holders -= 1
                if self._holders == 0:
                    self._release()

    def _acquire(self, timeout: float, what: str) -> None:
        attempts = max(1, int(timeout / _RETRY) + 1)
        for attempt in range(attempts):
            try:
                self._lease.acquire(lease_duration=self._duration)
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise self._error(exc) from None
                if attempt + 1 < attempts:
                    self._wait.wait(_RETRY)
                continue
            self._stop = threading.Event()
            threading.Thread(
                target=self._renew, args=(self._stop,), name="patwarden-blob-lease", daemon=True
            ).start()
            return
        raise StateLocked(
            f"{what} is locked by another patwarden run (it holds the state blob's lease).",
            hint="Let that run finish (a dead run's lease lapses); this run left it alone.",
        )

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self._duration / 3):
            try:
                self._lease.renew()
            except AzureError as exc:
                log.warning(
                    "state lease: renewal failed (%s); writes will be refused", type(exc).__name__
                )
                return

    def _release(self) -> None:
        self._stop.set()
        try:
            self._lease.release()
        except AzureError as exc:  # it lapses by itself
            log.warning("state lease: release failed (%s)", type(exc).__name__)


class AzureBlobBackend:
    """The blob, its lease and the write path of one Blob state; build stores with :meth:`store`.

    Raises (from the constructor):
        StateError: the container is missing, the identity may not use it, or the blob is not a
            patwarden state.
    """

    def __init__(
        self,
        *,
        client: BlobClient,
        lease_duration: int = 30,
        now: Callable[[], datetime],
        write_timeout: float = 120.0,
    ) -> None:
        self.client = client
        self.where = client.url
        self._now = now
        self._write_timeout = write_timeout
        self.lease = LeaseKeeper(client, duration=lease_duration, error=self.error)
        self._mutex = threading.Lock()
        self._token_locks: dict[str, threading.Lock] = {}
        try:
            self.client.upload_blob(Document.empty().serialize(), overwrite=False)
        except ResourceExistsError:
            pass  # the usual case: the state is there
        except HttpResponseError as exc:
            if exc.status_code != 412:  # 412: there, and leased by a run writing it
                raise self.error(exc) from None
        except AzureError as exc:
            raise self.error(exc) from None
        self.read()  # refuse a foreign or newer blob up front

    def error(self, exc: AzureError) -> StateError:
        """A :class:`StateError` naming what failed and the likely fix (secret-free)."""
        code = getattr(exc, "error_code", None) or type(exc).__name__
        if isinstance(exc, ClientAuthenticationError) or code in (
            "AuthorizationPermissionMismatch",
            "AuthorizationFailure",
        ):
            hint = "Grant the state identity `Storage Blob Data Contributor` on the container."
        elif code == "ContainerNotFound":
            hint = "Create the container (az storage container create …) or fix `state.container`."
        else:
            hint = "Check the account URL, the network path to it and the identity's role."
        return StateError(f"The Blob state {self.where} failed ({code}).", hint=hint, docs=_DOCS)

    def store(self) -> AzureBlobStateStore:
        """A state store over this backend (close it when done; the backend stays)."""
        return AzureBlobStateStore(self)

    def close(self) -> None:
        """Close the blob client."""
        self.client.close()

    # --- the document --------------------------------------------------------------------------

    def read(self) -> Document:
        """The state as it is now."""
        doc, _etag = self._download()
        return doc

    def _download(self) -> tuple[Document, str]:
        try:
            downloader = self.client.download_blob()
            raw = downloader.readall()
        except ResourceNotFoundError:
            return Document.empty(), ""
        except AzureError as exc:
            raise self.error(exc) from None
        return Document.parse(raw, where=self.where), str(downloader.properties.etag)

    def now_iso(self) -> str:
        return iso(self._now())

    def write(self, change: Callable[[Document, str], None], *, what: str = "The state") -> None:
        """Apply *change* to the state under the lease and upload it only if nobody else wrote.

        Raises:
            StateFenced: the lease or the blob changed hands since it was read.
            StateLocked: another run held the lease for the whole write timeout.
        """
        with self.lease.held(timeout=self._write_timeout, what=what) as lease_id, self._mutex:
            doc, etag = self._download()
            change(doc, lease_id)
            try:
                self.client.upload_blob(
                    doc.serialize(),
                    overwrite=True,
                    lease=self.lease.client,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):
                    raise StateFenced(
                        f"The Blob state {self.where} changed hands while this run wrote it "
                        f"({getattr(exc, 'error_code', None) or exc.status_code}); nothing was "
                        "written.",
                        hint="Another run took the state's lease; it carries on from the journal.",
                        docs=_DOCS,
                    ) from None
                raise self.error(exc) from None
            except AzureError as exc:
                raise self.error(exc) from None

    @contextmanager
    def token_lock(self, name: str, *, timeout: float) -> Iterator[None]:
        """The lease plus this process's lock on token *name*."""
        with self._mutex:
            lock = self._token_locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise StateLocked(
                f"Token {name!r} is locked by another run in this process on {self.where}.",
                hint="Let that run finish; this run left the token alone.",
            )
        try:
            with self.lease.held(timeout=timeout, what=f"Token {name!r}"):
                yield
        finally:
            lock.release()


class AzureBlobStateStore:
    """A :class:`~patwarden.rotation.ports.StateStore` in one blob (see the module doc)."""

    def __init__(self, backend: AzureBlobBackend) -> None:
        self.backend = backend
        self.path = backend.where

    def close(self) -> None:
        """Nothing to close: the backend owns the client and the lease."""

    def __enter__(self) -> AzureBlobStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load_token(self, name: str) -> ManagedTokenState | None:
        """Return the state of token ``name``, or ``None`` if it was never managed."""
        return self.backend.read().token(name)

    def tokens(self) -> Sequence[ManagedTokenState]:
        """Return the state of every managed token, by name."""
        return self.backend.read().tokens()

    def save_token(self, state: ManagedTokenState, *, audit: Sequence[AuditRecord] = ()) -> None:
        """Replace the state of ``state.token_name`` and append ``audit``, in one upload."""

        def change(doc: Document, _lease: str) -> None:
            doc.put_token(state)
            doc.append_audit(audit)

        self.backend.write(change, what=f"Token {state.token_name!r}")

    def load_operation(self, operation_id: str) -> Operation | None:
        """Return operation ``operation_id`` as last journaled, or ``None``."""
        return self.backend.read().operation(operation_id)

    def operations(self, token_name: str, *, unfinished: bool = False) -> Sequence[Operation]:
        """Return the operations of ``token_name``, oldest first (only unfinished ones if asked)."""
        return self.backend.read().operations(token_name, unfinished=unfinished)

    def record(
        self,
        op: Operation,
        *,
        token: ManagedTokenState | None = None,
        audit: Sequence[AuditRecord] = (),
    ) -> None:
        """Persist ``op`` and journal its step (with ``token`` and ``audit``) in one upload.

        Raises:
            StateFenced: the lease changed hands; nothing was written.
        """
        at = self.backend.now_iso()

        def change(doc: Document, lease: str) -> None:
            doc.put_operation(op)
            doc.append_journal(op, at=at, lease=lease)
            if token is not None:
                doc.put_token(token)
            doc.append_audit(audit)

        self.backend.write(change, what=f"Token {op.token_name!r}")

    def journal(self, operation_id: str) -> Sequence[JournalEntry]:
        """Return the journaled steps of ``operation_id`` in order."""
        return self.backend.read().journal(operation_id)

    def append_audit(self, record: AuditRecord) -> None:
        """Append one record to the audit log."""
        self.backend.write(lambda doc, _lease: doc.append_audit([record]))

    def audit(
        self,
        since: datetime | None = None,
        *,
        kinds: Collection[str] = (),
        tokens: Collection[str] = (),
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[AuditRecord]:
        """Yield the audit records at or after ``since`` of ``kinds`` and ``tokens`` (each: all
        if empty), oldest first (newest first if asked), at most ``limit``. The document is read
        whole (one blob); only the entries that answer are decoded."""
        query = AuditQuery.of(
            since, kinds=kinds, tokens=tokens, limit=limit, newest_first=newest_first
        )
        return iter(self.backend.read().audit(query))

    def token_lock(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """Return a context manager holding the lock on token ``name`` (see the module doc).

        Raises:
            StateLocked: another run held it for longer than ``timeout`` seconds.
        """
        return self.backend.token_lock(name, timeout=timeout)

    def export_dump(self) -> StateDump:
        """Every token, operation, journal entry and audit record, in order."""
        return self.backend.read().dump()

    def import_dump(self, dump: StateDump) -> None:
        """Copy *dump* into this (empty) state in one upload, keeping order and times.

        Raises:
            StateError: the state is not empty.
        """

        def change(doc: Document, _lease: str) -> None:
            if not doc.empty_state:
                raise StateError(
                    f"The Blob state {self.path} is not empty; migrate into an empty one.",
                    hint="Point --to at a new blob name.",
                )
            doc.load_dump(dump)

        self.backend.write(change)
