"""The text every match of a regular expression contains, read from the pattern: a cheap test before the real one.

A `|re` rule such as SigmaHQ's `userIdentity.arn|re: '.+:assumed-role/aws:.+'` runs on every event, and nearly
every event fails it. `':assumed-role/aws:' in text` answers those in a fraction of a regular-expression call;
only the texts that contain the literal are searched.

The reading is deliberately narrow, so that it holds for RE2 and Python's `re` alike: a pattern with `|` anywhere
gives nothing; reading stops at the first group, character class, counted repetition or escape other than of
ASCII punctuation (`\\.` is a dot; `\\d`, `\\x41` stop it); a character under `?`, `*`, `+` or `{n,m}` is
dropped; any other metacharacter (`.`, `^`, `$`) ends a run. Each run of plain characters left lies in every
match. The caller leaves out patterns that ignore case: `in` compares exactly.
"""

from __future__ import annotations

import string

# Characters that stand for themselves outside a character class, in RE2 and in `re` without the verbose flag.
_PLAIN = frozenset(string.ascii_letters + string.digits + " _-:/@=,;'\"!%&<>~#`")
_ESCAPED = frozenset(string.punctuation)
_REPEATS = frozenset("?*+")


def required_literal(pattern: str) -> str | None:
    """The longest run of characters that every match of `pattern` contains, or None."""
    if "|" in pattern:
        return None
    runs: list[str] = []
    run: list[str] = []
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char in _PLAIN:
            run.append(char)
        elif char == "\\":
            if at + 1 == len(pattern) or pattern[at + 1] not in _ESCAPED:
                break  # `\d`, `\x41`, `\pL`, `\Q...\E`: classes and escapes of several characters
            at += 1
            run.append(pattern[at])
        elif char in _REPEATS or char == "{":
            if run:
                run.pop()  # optional or repeated: the run ends before it
            if char == "{":
                break
            runs.append("".join(run))
            run = []
        elif char in "([":
            break
        else:
            runs.append("".join(run))
            run = []
        at += 1
    runs.append("".join(run))
    return max(runs, key=len) or None
