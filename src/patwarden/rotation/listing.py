"""An organization's listing of marked PATs, indexed once by the token its marker names.

A run lists each organization's marked PATs once (:func:`patwarden.rotation.converge.list_marked`,
shared across workers by :class:`patwarden.rotation.fleet.SharedListingIssuer`); every token of
the run then asks for *its* PATs. :class:`MarkedListing` parses each display name once and keeps
the PATs by token name, so that question costs O(the token's PATs), not O(the listing): a run
over N tokens is O(N), not O(N²).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from patwarden.domain.marker import parse_marker
from patwarden.domain.models import IssuedPat

__all__ = ["MarkedListing", "indexed", "marked_for"]


class MarkedListing(list[IssuedPat]):
    """The marked PATs of one organization, in listed order, indexed by their marker's token.

    A ``list`` (every consumer of a listing keeps working) that is read, never changed: the index
    is built when it is made. Should a caller change it anyway, the index is rebuilt on the next
    lookup (its length no longer matches).
    """

    def __init__(self, pats: Iterable[IssuedPat] = ()) -> None:
        super().__init__(pats)
        self._index()

    def _index(self) -> None:
        by_token: dict[str, list[IssuedPat]] = {}
        for pat in self:
            marker = parse_marker(pat.display_name)
            if marker is not None:
                by_token.setdefault(marker.token_name, []).append(pat)
        self._by_token = {name: tuple(pats) for name, pats in by_token.items()}
        self._indexed = len(self)

    def for_token(self, token_name: str) -> tuple[IssuedPat, ...]:
        """Return the PATs whose marker names ``token_name``, in listed order."""
        if self._indexed != len(self):
            self._index()
        return self._by_token.get(token_name, ())


def indexed(pats: Iterable[IssuedPat]) -> MarkedListing:
    """Return ``pats`` as a :class:`MarkedListing` (itself when it already is one)."""
    return pats if isinstance(pats, MarkedListing) else MarkedListing(pats)


def marked_for(token_name: str, marked: Sequence[IssuedPat]) -> list[IssuedPat]:
    """Return the marked PATs that belong to ``token_name`` (by index for a listing)."""
    if isinstance(marked, MarkedListing):
        return list(marked.for_token(token_name))
    mine = []
    for pat in marked:
        marker = parse_marker(pat.display_name)
        if marker is not None and marker.token_name == token_name:
            mine.append(pat)
    return mine
