"""Make untrusted text safe for one log line: no line breaks, no raw control characters.

Message bodies and database error texts go into log lines. A body holding
`\\nCRITICAL forged` must not start a line of its own, and a NUL or an escape sequence
must not reach a terminal or a log shipper raw.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (with NEL), and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def one_line(text: object, limit: int | None = None) -> str:
    """Return `text` stripped, line breaks and control characters escaped, cut to `limit`."""
    value = str(text).strip()
    if limit is not None and len(value) > limit:
        value = value[:limit] + "..."
    return _UNSAFE.sub(_escape, value)
