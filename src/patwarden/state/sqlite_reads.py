"""What one SQLite store connection need not read or decode twice.

A run reads a token's state and operations several times while it holds the token's lock (reconcile,
the orphan sweep, the plan, the end check): for a token with nothing due that is a dozen queries,
each a JSON decode. Two caches cut that to what changed:

- **decoded records**, by their JSON text: a text decodes to the same (deeply immutable) state or
  operation every time, so each distinct text is decoded once; a changed text is decoded, and
  checked, anew;
- **the held token's reads**: while this connection holds a token's lock no other patwarden run
  changes that token's rows, so a read is answered again from memory until this connection
  changes them or lets the lock go. A write forgets the answers it may change and, once
  committed, keeps what it wrote as the next answer: a rotation
  journals a dozen steps and reads the token's state after each, which would otherwise be a
  query and a decode per step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["DECODED_MAX", "Reads"]

DECODED_MAX = 4096  # decoded records kept per connection (each a few hundred bytes)
T = TypeVar("T")


class Reads:
    """The caches of one store connection (used by one thread, like the connection)."""

    def __init__(self) -> None:
        self._decoded: dict[tuple[Callable[[Any], Any], str], Any] = {}
        self._held: str | None = None
        self._answers: dict[Hashable, Any] = {}

    def decode(self, text: str, decode: Callable[[Any], T], parse: Callable[[str], Any]) -> T:
        """Return ``decode(parse(text))``, computed once per distinct *text* and *decode*."""
        key = (decode, text)
        found = self._decoded.get(key)
        if found is None:
            found = decode(parse(text))
            if len(self._decoded) >= DECODED_MAX:
                self._decoded.clear()
            self._decoded[key] = found
        return found

    def answer(self, token_name: str, key: Hashable, read: Callable[[], T]) -> T:
        """Return ``read()``, kept for *key* while the lock of *token_name* is held."""
        if token_name != self._held:
            return read()
        if key not in self._answers:
            self._answers[key] = read()
        return self._answers[key]  # type: ignore[no-any-return]

    def hold(self, token_name: str | None) -> None:
        """This connection now holds the lock of *token_name* (``None``: no token's)."""
        self._held = token_name
        self._answers.clear()

    def token(self, name: str, read: Callable[[], T]) -> T:
        """The state of token *name*: ``read()``, kept while its lock is held."""
        return self.answer(name, ("token", name), read)

    def operations(self, name: str, unfinished: bool, read: Callable[[], T]) -> T:
        """The operations of token *name* (unfinished ones only if asked): as :meth:`token`."""
        return self.answer(name, ("operations", name, unfinished), read)

    def writing(self, name: str, *, state: bool = False, operations: bool = False) -> None:
        """This connection is about to write token *name*'s *state* and/or *operations*: forget
        those answers (before the write, so that a failed write leaves them forgotten)."""
        keys: list[Hashable] = [("token", name)] if state else []
        if operations:
            keys += [("operations", name, False), ("operations", name, True)]
        for key in keys:
            self._answers.pop(key, None)

    def wrote_state(self, name: str, state: Any) -> None:
        """This connection committed *state* for token *name*: its next answer while the lock
        is held (another token's is read again)."""
        if name == self._held:
            self._answers[("token", name)] = state
