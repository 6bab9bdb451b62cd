"""Which detection rules can match an event, found without running them: an index on the values rules pin.

Most CloudTrail rules pin `eventSource` or `eventName` to a few exact values (57 of the 61 SigmaHQ and built-in
ones), so looking the event's own values up leaves a handful of rules to run instead of all of them. A rule can
match only an event that meets one of its alternatives (`evaluate.pinned_alternatives`: `1 of selection_*`
whose selections pin different fields has several), so each alternative is indexed under one field it pins: the
one with the most distinct values across all rules, the most selective. Besides exact texts a field can be pinned
to contain a literal (a case-sensitive `|re`) or to exist (`|exists: true`), tested once per distinct string, so
rules such as SigmaHQ's IMDS rule (`userIdentity.arn|re`) and `ml_asset_access` no longer run on every event.
Rules with an alternative that pins nothing run on every event. Candidates keep the rule set's order, so signals
come out in the order a scan of every rule gives them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from correlators.model import NormalizedEvent
from correlators.sigma.fields import FieldView, one_string, value_text
from correlators.sigma.pins import Contains, Needle
from correlators.sigma.rules import DetectionRule

# Distinct sets of candidates, and distinct strings per field, remembered: a handful per kind of call, bounded
# against an unusual stream (user agents).
_MAX_REMEMBERED = 4096

# field, raw key, reader, exact text > rules, (literal, rules) contained, rules the field's existence meets,
# one string seen > rules
_Field = tuple[
    str,
    str | None,
    Callable[[NormalizedEvent], Any],
    dict[str, int],
    tuple[tuple[str, int], ...],
    int,
    dict[str, int],
]


class RuleIndex:
    def __init__(self, rules: Sequence[DetectionRule]) -> None:
        self._rules = tuple(rules)
        distinct: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        for rule in self._rules:
            for alternative in rule.pins:
                for field, needles in alternative.items():
                    for text in needles:
                        if isinstance(text, str) and (field, text) not in seen:
                            seen.add((field, text))
                            distinct[field] += 1
        # Sets of rules are bit masks over rule positions: bit i is `self._rules[i]`.
        # field > needle > the rules indexed under it
        by_needle: dict[str, dict[Needle, int]] = {}
        self._always = 0
        for position, rule in enumerate(self._rules):
            bit = 1 << position
            if not all(rule.pins):
                self._always |= bit
                continue
            for alternative in rule.pins:
                # Exact texts first (a dict lookup), then the field with the most of them
                field = max(alternative, key=lambda name: (_exact(alternative[name]), distinct[name], name))
                bits = by_needle.setdefault(field, {})
                for needle in alternative[field]:
                    bits[needle] = bits.get(needle, 0) | bit
        # Per field: the raw key or reader that gives its usual one string (`fields.one_string`), the needles'
        # rules, and a value seen as the field's one string > the rules its needles pick (the same few strings
        # recur event after event, so each is lower-cased and looked up once).
        self._by_value: tuple[_Field, ...] = tuple(
            (field, *one_string(field), *_needles(bits), {}) for field, bits in by_needle.items()
        )
        self._chosen: dict[int, tuple[DetectionRule, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def candidates(self, view: FieldView) -> tuple[DetectionRule, ...]:
        """The rules that may match the event, in rule-set order; the others cannot."""
        mask = self._always
        event = view.event
        raw = event.raw
        for field, key, read, by_text, contains, exists, by_string in self._by_value:
            value = raw.get(key) if key is not None else read(event)
            if type(value) is str:  # `view.get(field)` is `[value]`, its text `value`
                bits = by_string.get(value)
                if bits is None:
                    bits = by_text.get(value.lower(), 0) | exists
                    for literal, more in contains:
                        if literal in value:
                            bits |= more
                    if len(by_string) < _MAX_REMEMBERED:
                        by_string[value] = bits
                mask |= bits
            elif value is not None and value != []:  # None or []: no value but null, nothing met
                mask |= _met_by_values(view, field, by_text, contains, exists)
        chosen = self._chosen.get(mask)
        if chosen is None:
            chosen = tuple(rule for position, rule in enumerate(self._rules) if mask >> position & 1)
            if len(self._chosen) < _MAX_REMEMBERED:
                self._chosen[mask] = chosen
        return chosen


def _exact(needles: frozenset[Needle]) -> bool:
    return all(isinstance(needle, str) for needle in needles)


def _needles(bits: dict[Needle, int]) -> tuple[dict[str, int], tuple[tuple[str, int], ...], int]:
    """A field's needles by kind: exact text > rules, (literal, rules) for `Contains`, rules for `EXISTS`."""
    by_text: dict[str, int] = {}
    contains: list[tuple[str, int]] = []
    exists = 0
    for needle, rules in bits.items():
        if isinstance(needle, str):
            by_text[needle] = rules
        elif isinstance(needle, Contains):
            contains.append((needle.literal, rules))
        else:
            exists |= rules
    return by_text, tuple(contains), exists


def _met_by_values(
    view: FieldView, field: str, by_text: dict[str, int], contains: tuple[tuple[str, int], ...], exists: int
) -> int:
    """The rules a field that is not one string meets: absent, null, a number, a list, an object."""
    bits = 0
    if by_text:
        for text in view.texts(field):
            bits |= by_text.get(text, 0)
    if contains or exists:
        values = view.get(field)
        if values and all(value is not None for value in values):  # not null: `|exists: true`
            bits |= exists
        texts = [text for text in map(value_text, values) if text is not None]
        for literal, rules in contains:
            if any(literal in text for text in texts):
                bits |= rules
    return bits
