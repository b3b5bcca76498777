"""Text a caller chose, made safe to echo in a log line: control characters escaped, length bounded.

A request's path is percent-decoded before we see it, so `%0d%0a` arrives as a real line break
and `%00` as a NUL: written as-is, a caller could forge a whole log line of its own. Every
character that ends or hides a line (C0 and C1 controls, DEL, the Unicode line and paragraph
separators) is written as its `\\xNN` / `\\uNNNN` escape instead, and the result is cut short.
"""

from __future__ import annotations

import re

# The most characters of caller text one field of a log line echoes.
MAX_ECHO_CHARS = 200
_HIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def echo(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` with its control characters escaped, at most `limit` characters of it (then `…`)."""
    safe = _HIDDEN.sub(_escape, text[: limit + 1])
    return safe if len(safe) <= limit else safe[:limit] + "…"
