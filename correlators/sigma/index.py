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

The fields an index reads are read together (`fields.FieldReader`), and the rules a combination of their values
leaves are remembered: streams repeat a few hundred combinations (API, caller, agent), so most events cost one
read and one lookup. Only strings, nulls and tuples of strings are remembered: values Python holds equal that
Sigma compares as different texts (`1`, `True`) are each looked at afresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from correlators.model import NormalizedEvent
from correlators.sigma.fields import FieldReader, FieldView, value_text
from correlators.sigma.pins import Contains, Needle
from correlators.sigma.rules import DetectionRule

# Distinct sets of candidates, and distinct strings per field, remembered: a handful per kind of call, bounded
# against an unusual stream (user agents).
_MAX_REMEMBERED = 4096


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
        # The fields read of every event, all at once (`fields.FieldReader`), each with the strings seen so far >
        # the rules they meet (the same few recur event after event, so each is tested once).
        self._reader = FieldReader(by_needle)
        self._read = self._reader.read
        self._fields = tuple(_PinnedField(name, by_needle[name]) for name in self._reader.names)
        self._chosen: dict[int, tuple[DetectionRule, ...]] = {}
        # The values read > the rules they leave: far fewer distinct combinations than events (865 in the 19,260
        # events of the samples), so most events cost one read and one lookup.
        self._by_values: dict[tuple[Any, ...], tuple[DetectionRule, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The fields read of every event to find its candidates."""
        return self._reader.names

    def candidates(self, event: NormalizedEvent) -> tuple[DetectionRule, ...]:
        """The rules that may match the event, in rule-set order; the others cannot."""
        values = self._read(event)
        try:
            chosen = self._by_values.get(values)
        except TypeError:  # a list or an object among the values: not remembered
            return self._choose(event, values)
        if chosen is None:
            chosen = self._choose(event, values)
            if _rememberable(values):
                if len(self._by_values) >= _MAX_REMEMBERED:
                    self._by_values.clear()  # the stream moved on (new sessions, new agents): start again
                self._by_values[values] = chosen
        return chosen

    def _choose(self, event: NormalizedEvent, values: tuple[Any, ...]) -> tuple[DetectionRule, ...]:
        mask = self._always
        view = None
        for value, pinned in zip(values, self._fields, strict=True):
            if type(value) is str:  # `view.get(field)` is `[value]`, its text `value`
                bits = pinned.by_string.get(value)
                mask |= pinned.met_by_string(value) if bits is None else bits
            elif value is not None and value != []:  # None or []: no value but null, nothing met
                view = view or FieldView(event)
                mask |= pinned.met_by_values(view)
        chosen = self._chosen.get(mask)
        if chosen is None:
            chosen = tuple(rule for position, rule in enumerate(self._rules) if mask >> position & 1)
            if len(self._chosen) < _MAX_REMEMBERED:
                self._chosen[mask] = chosen
        return chosen


def _rememberable(values: tuple[Any, ...]) -> bool:
    """Whether values equal to these are sure to leave the same rules: strings, None, tuples of strings. Not a
    number or a boolean: `1 == True`, yet the texts compared are "1" and "true"."""
    return all(
        value is None or type(value) is str or (type(value) is tuple and all(type(item) is str for item in value))
        for value in values
    )


def _exact(needles: frozenset[Needle]) -> bool:
    return all(isinstance(needle, str) for needle in needles)


class _PinnedField:
    """One field the index reads: the rules each of its needles picks, by kind of needle."""

    __slots__ = ("by_string", "by_text", "contains", "exists", "name")

    def __init__(self, name: str, bits: dict[Needle, int]) -> None:
        self.name = name
        self.by_text: dict[str, int] = {}  # exact lower-cased text > rules
        contains: list[tuple[str, int]] = []  # (literal, rules)
        self.exists = 0  # rules met by any value but null
        for needle, rules in bits.items():
            if isinstance(needle, str):
                self.by_text[needle] = rules
            elif isinstance(needle, Contains):
                contains.append((needle.literal, rules))
            else:
                self.exists |= rules
        self.contains = tuple(contains)
        self.by_string: dict[str, int] = {}  # the field's one string, seen before > rules it meets

    def met_by_string(self, value: str) -> int:
        """The rules the field meets when it is the one string `value`, remembered."""
        bits = self.by_text.get(value.lower(), 0) | self.exists
        for literal, rules in self.contains:
            if literal in value:
                bits |= rules
        if len(self.by_string) < _MAX_REMEMBERED:
            self.by_string[value] = bits
        return bits

    def met_by_values(self, view: FieldView) -> int:
        """The rules the field meets when it is not one string: a list, a number, an object, a null among others."""
        bits = 0
        if self.by_text:
            for text in view.texts(self.name):
                bits |= self.by_text.get(text, 0)
        if self.contains or self.exists:
            values = view.get(self.name)
            if values and all(value is not None for value in values):  # not null: `|exists: true`
                bits |= self.exists
            texts = [text for text in map(value_text, values) if text is not None]
            for literal, rules in self.contains:
                if any(literal in text for text in texts):
                    bits |= rules
        return bits
