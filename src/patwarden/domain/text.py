"""Text from outside (PAT display names, owner names, scopes) made safe to print.

Anyone who can create a PAT chooses its display name; owner names come from the directory. Printed
as is, an ESC sequence in one would clear the screen, plant an OSC 8 link or write the clipboard
(OSC 52) of whoever runs ``patwarden inventory``. :func:`visible_controls` turns every C0 and C1
control character (and the bidirectional overrides of "Trojan source") into a visible escape such
as ``\\x1b``; every terminal and CSV output passes external strings through it (docs/security.md).
"""

from __future__ import annotations

import re

_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_NEWLINE = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible_controls(text: str, *, keep_newlines: bool = False) -> str:
    """*text* with control characters replaced by visible escapes (``\\x1b``, ``\\u202e``).

    ``keep_newlines`` leaves ``\\n`` alone, for multi-line cells patwarden builds itself.
    """
    pattern = _CONTROLS_BUT_NEWLINE if keep_newlines else _CONTROLS
    return pattern.sub(_escape, text)
