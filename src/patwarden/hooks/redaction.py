"""Scrubbing secrets out of what a hook printed before it is shown or stored.

A hook command runs with the operator's trust, but its output is not trusted to be free of secrets:
``echo "token: $(cat /run/pat)"; exit 1`` would otherwise put the PAT in the rotate output and the
append-only audit log for good. :func:`redact` replaces every known secret value (the caller's
:class:`~patwarden.secret.Secret` values) and anything shaped like a PAT, a JWT, an
``Authorization`` value or a long opaque token with ``[redacted]``. The raw output never leaves
the process, except in its own stderr with ``--debug`` (docs/security.md, "Hooks").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from patwarden.secret import Secret

REDACTED = "[redacted]"

_SECRET_SHAPES = re.compile(
    r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?"  # a JWT (access or id token)
    r"|[A-Za-z0-9]{52}AZDO[A-Za-z0-9]{28}"  # an Azure DevOps PAT (84 characters, AZDO signature)
    r"|(?<![A-Za-z0-9])[a-z2-7]{52}(?![A-Za-z0-9])"  # a legacy PAT (52 base32 characters)
    r"|(?:Bearer|Basic)\s+\S+"  # an Authorization header value
    r"|[A-Za-z0-9+/=_-]{40,}"  # any other long opaque token (refresh tokens, base64 of a PAT)
)


def redact(text: str, *, known: Iterable[Secret] = ()) -> str:
    """Return *text* with every *known* secret value and every secret-shaped string replaced."""
    for value in sorted((s.reveal() for s in known), key=len, reverse=True):
        if value:
            text = text.replace(value, REDACTED)
    return _SECRET_SHAPES.sub(REDACTED, text)
