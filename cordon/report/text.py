"""Attacker-controlled text made inert for an HTML page: everything from an event (keys, ARNs, user agents, finding
titles, raw JSON) goes through `esc` before it reaches the page, as text or as an attribute value.

`html.escape` with quote=True covers text and quoted attributes. Before it, lone surrogates (which cannot be
written as UTF-8) and control characters (which HTML forbids and some viewers act on) are shown escaped, and the
bidirectional overrides that can make text read backwards: `\\u202e` appears as those six characters.
"""

from __future__ import annotations

import html
import re

from responders.notify.summary import shorten

# C0 controls but tab and newline, DEL, C1 controls, the bidirectional embeddings, overrides and isolates,
# and lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def inert(value: object) -> str:
    """`value` as a string with the characters above escaped; nothing else changes."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def esc(value: object, limit: int | None = None) -> str:
    """`value` safe as HTML text or a quoted attribute value; cut from the middle past `limit` characters."""
    text = inert(value)
    if limit is not None:
        text = shorten(text, limit)
    return html.escape(text, quote=True)
