"""Sigma correlation rules evaluated in event time over the signal store.

Each signal of a rule that a correlation references is written under that correlation's group partition
(`corr|<rule>|<group values>`). When a signal arrives, the correlation reads its group's signals within one
timespan either side of it and looks for a window of length `timespan` that contains the new signal and
satisfies the rule. Reading both sides, not just the past, is what lets a late event complete a pattern.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from correlators.errors import RuleError
from correlators.model import Entity, EntityType
from correlators.sigma.fields import FieldView
from correlators.sigma.loader import CorrelationRule, RuleSet
from correlators.signals import Signal
from correlators.state.base import StateStore

_ENTITY_FIELDS = {kind.value: kind for kind in EntityType}
_GROUP_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Firing:
    """A correlation rule held for one group: the signals in the satisfying window and the group's entities."""

    rule: CorrelationRule
    group: tuple[str, ...]
    group_entities: tuple[Entity, ...]
    signals: tuple[Signal, ...]


def field_values(signal: Signal, name: str) -> list[str]:
    """Values of a group-by or value_count field: an entity type (`principal`) or any Sigma field path."""
    kind = _ENTITY_FIELDS.get(name)
    if kind is not None:
        return sorted({e.id for e in signal.event.entities() if e.type is kind})
    values = FieldView(signal.event).get(name)
    return sorted({str(v) for v in values if v is not None and not isinstance(v, dict | list)})


class Correlator:
    def __init__(self, ruleset: RuleSet) -> None:
        self._by_base_rule: dict[str, list[CorrelationRule]] = {}
        correlation_keys = {c.key for c in ruleset.correlations}
        for correlation in ruleset.correlations:
            nested = [r for r in correlation.rules if r in correlation_keys]
            if nested:
                raise RuleError(
                    f"correlation rule '{correlation.title}' references correlation rule(s) {', '.join(nested)}:"
                    " Cordon evaluates correlations over detection rules only",
                    where=str(correlation.path),
                )
            for base in correlation.rules:
                self._by_base_rule.setdefault(base, []).append(correlation)
        self.longest_timespan = timedelta(seconds=max((c.timespan_seconds for c in ruleset.correlations), default=0))

    def timespan_for(self, rule: str) -> timedelta:
        """The longest window of any correlation that uses signals of `rule` (zero when none does)."""
        spans = [c.timespan_seconds for c in self._by_base_rule.get(rule, [])]
        return timedelta(seconds=max(spans, default=0))

    def partitions(self, signal: Signal) -> list[str]:
        """Correlation partitions a signal must be stored under."""
        return [
            _partition(rule, group)
            for rule in self._by_base_rule.get(signal.rule, [])
            for group in _groups(rule, signal)
        ]

    def evaluate(self, signal: Signal, store: StateStore) -> list[Firing]:
        """Correlations the (already stored) signal completes, each with its window's signals."""
        firings = []
        for rule in self._by_base_rule.get(signal.rule, []):
            span = timedelta(seconds=rule.timespan_seconds)
            for group in _groups(rule, signal):
                nearby = store.signals(_partition(rule, group), signal.time - span, signal.time + span)
                window = _satisfying_window(rule, signal, nearby, span)
                if window:
                    firings.append(Firing(rule, group, _group_entities(rule, group), tuple(window)))
        return firings


def _partition(rule: CorrelationRule, group: tuple[str, ...]) -> str:
    return f"corr|{rule.key}|{_GROUP_SEPARATOR.join(group)}"


def _field_for(rule: CorrelationRule, field: str, signal: Signal) -> str:
    """A group-by name may be an alias that means a different field in each referenced rule."""
    return rule.aliases.get(field, {}).get(signal.rule, field)


def _groups(rule: CorrelationRule, signal: Signal) -> list[tuple[str, ...]]:
    per_field = []
    for field in rule.group_by:
        values = field_values(signal, _field_for(rule, field, signal))
        if not values:
            return []  # the signal cannot be placed in a group of this rule
        per_field.append(values)
    return list(itertools.product(*per_field))


def _group_entities(rule: CorrelationRule, group: tuple[str, ...]) -> tuple[Entity, ...]:
    """Group values that name entities: they tie the correlation's signals together in the incident graph."""
    entities = []
    for field, value in zip(rule.group_by, group, strict=True):
        kind = _ENTITY_FIELDS.get(field)
        if kind is not None:
            entities.append(Entity(type=kind, id=value))
    return tuple(entities)


def _satisfying_window(rule: CorrelationRule, signal: Signal, nearby: list[Signal], span: timedelta) -> list[Signal]:
    """The earliest window [start, start + span] that contains `signal` and satisfies the rule, else []."""
    ordered = sorted(nearby, key=lambda s: s.sort_key)
    values = _condition_values(rule, ordered)
    if not _CONDITIONS[rule.type](rule, ordered, values):
        return []  # not even every nearby signal together satisfies it: no window can (the common case)
    end = 0
    for begin, first in enumerate(ordered):
        if first.time > signal.time:
            break
        if first.time + span < signal.time:
            continue
        end = max(end, begin)
        while end < len(ordered) and ordered[end].time <= first.time + span:
            end += 1
        window = ordered[begin:end]
        if _CONDITIONS[rule.type](rule, window, values):
            return window
    return []


def _condition_values(rule: CorrelationRule, signals: list[Signal]) -> dict[str, list[str]]:
    """Each signal's value_count field values, read once per evaluation rather than once per window."""
    if rule.type != "value_count" or rule.condition_field is None:
        return {}
    field = rule.condition_field
    return {s.id: field_values(s, _field_for(rule, field, s)) for s in signals}


def _count_ok(rule: CorrelationRule, count: int) -> bool:
    threshold = rule.condition_count if rule.condition_count is not None else 1
    return count > threshold if rule.condition_op == "gt" else count >= threshold


def _event_count(rule: CorrelationRule, window: list[Signal], values: dict[str, list[str]]) -> bool:
    return _count_ok(rule, len(window))


def _value_count(rule: CorrelationRule, window: list[Signal], values: dict[str, list[str]]) -> bool:
    return _count_ok(rule, len({v for s in window for v in values[s.id]}))


def _temporal(rule: CorrelationRule, window: list[Signal], values: dict[str, list[str]]) -> bool:
    # Every referenced rule must match within the window (Sigma's temporal correlation).
    return set(rule.rules) <= {s.rule for s in window}


def _temporal_ordered(rule: CorrelationRule, window: list[Signal], values: dict[str, list[str]]) -> bool:
    # Greedy: take each rule's earliest match after the previous one's.
    position = 0
    for signal in window:
        if signal.rule == rule.rules[position]:
            position += 1
            if position == len(rule.rules):
                return True
    return False


_CONDITIONS: dict[str, Callable[[CorrelationRule, list[Signal], dict[str, list[str]]], bool]] = {
    "event_count": _event_count,
    "value_count": _value_count,
    "temporal": _temporal,
    "temporal_ordered": _temporal_ordered,
}
