"""Which detection rules can match an event, found without running them: an index on the values rules pin.

Most CloudTrail rules pin `eventSource` or `eventName` to a few exact values (57 of the 61 SigmaHQ and built-in
ones), so looking the event's own values up leaves a handful of rules to run instead of all of them. A rule can
match only an event that meets one of its alternatives (`evaluate.pinned_alternatives`: `1 of selection_*`
whose selections pin different fields has several), so each alternative is indexed under one field it pins: the
one with the most distinct values across all rules, the most selective. Rules with an alternative that pins
nothing run on every event. Candidates keep the rule set's order, so signals come out in the order a scan of
every rule gives them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from correlators.model import NormalizedEvent
from correlators.sigma.fields import FieldView, one_string
from correlators.sigma.rules import DetectionRule

# Distinct sets of candidates, and distinct strings per field, remembered: a handful per kind of call, bounded
# against an unusual stream (user agents).
_MAX_REMEMBERED = 4096

_Field = tuple[str, str | None, Callable[[NormalizedEvent], Any], dict[str, int], dict[str, int]]


class RuleIndex:
    def __init__(self, rules: Sequence[DetectionRule]) -> None:
        self._rules = tuple(rules)
        distinct: Counter[str] = Counter()
        seen: set[tuple[str, str]] = set()
        for rule in self._rules:
            for alternative in rule.pins:
                for field, texts in alternative.items():
                    for text in texts:
                        if (field, text) not in seen:
                            seen.add((field, text))
                            distinct[field] += 1
        # Sets of rules are bit masks over rule positions: bit i is `self._rules[i]`.
        # field > pinned text > the rules indexed under it
        by_value: dict[str, dict[str, int]] = {}
        self._always = 0
        for position, rule in enumerate(self._rules):
            bit = 1 << position
            if not all(rule.pins):
                self._always |= bit
                continue
            for alternative in rule.pins:
                field = max(alternative, key=lambda name: (distinct[name], name))
                by_text = by_value.setdefault(field, {})
                for text in alternative[field]:
                    by_text[text] = by_text.get(text, 0) | bit
        # Per field: the raw key or reader that gives its usual one string (`fields.one_string`), pinned text >
        # rules, and a value seen as the field's one string > the rules its lower-cased text picks (the same few
        # strings recur event after event, so each is lower-cased and looked up once).
        self._by_value: tuple[_Field, ...] = tuple(
            (field, *one_string(field), by_text, {}) for field, by_text in by_value.items()
        )
        self._chosen: dict[int, tuple[DetectionRule, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def candidates(self, view: FieldView) -> tuple[DetectionRule, ...]:
        """The rules that may match the event, in rule-set order; the others cannot."""
        mask = self._always
        event = view.event
        raw = event.raw
        for field, key, read, by_text, by_string in self._by_value:
            value = raw.get(key) if key is not None else read(event)
            if type(value) is str:
                bits = by_string.get(value)
                if bits is None:
                    bits = by_text.get(value.lower(), 0)  # `view.texts(field)` of one string
                    if len(by_string) < _MAX_REMEMBERED:
                        by_string[value] = bits
                mask |= bits
            else:
                for text in view.texts(field):
                    mask |= by_text.get(text, 0)
        chosen = self._chosen.get(mask)
        if chosen is None:
            chosen = tuple(rule for position, rule in enumerate(self._rules) if mask >> position & 1)
            if len(self._chosen) < _MAX_REMEMBERED:
                self._chosen[mask] = chosen
        return chosen
