"""Untrusted text made safe for a terminal.

Model output, server messages, model names and anything read from a file may carry
control characters: an escape sequence can retitle the window, clear the screen, plant a
hyperlink or move the cursor; a bidi override can make text read differently from what
it is. Everything sparring prints from those sources goes through :func:`printable`,
which shows such characters as visible escapes (``\\x1b``, ``\\u202e``) and keeps
newlines and tabs. Transcripts keep the exact text; only what is printed changes.
Printing always goes through rich ``Text`` (never markup), so brackets are just brackets.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls but tab and newline, DEL, C1 controls, bidi controls, lone surrogates.
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every character that could drive a terminal shown as an escape."""
    value = str(text).replace("\r\n", "\n")
    return _UNSAFE.sub(_visible, value)
