"""Sigma correlation rules evaluated in event time over the signal store.

Each signal of a rule that a correlation references is written under that correlation's group partition
(`corr|<rule>|<group values>`). When a signal arrives, the correlation reads its group's signals within one
timespan either side of it and looks for a window of length `timespan` that contains the new signal and
satisfies the rule. Reading both sides, not just the past, is what lets a late event complete a pattern.

`temporal_ordered` compares event times only: each rule's match at or after the previous one's, so signals of
one instant (CloudTrail has one-second times) count as in order. Ties are never broken by signal id or rule name,
which would make the answer depend on names, not on what happened; `streak._window_holds` decides the same.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from correlators import streak
from correlators.model import Entity, EntityType
from correlators.sigma.correlation import nested as nested_correlations
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
    # The group's signals from..to this instant are members once this firing is raised (streak.py).
    raised_span: tuple[datetime, datetime]


def field_values(signal: Signal, name: str) -> list[str]:
    """Values of a group-by or value_count field: an entity type (`principal`) or any Sigma field path.

    Read once per signal and field (a signal never changes): a count over a busy group reads the same signals'
    values on every event of the group. Callers must not change the list."""
    cache = signal.field_cache
    found = cache.get(name)
    if found is None:
        found = cache[name] = _read_field_values(signal, name)
    return found


def _read_field_values(signal: Signal, name: str) -> list[str]:
    kind = _ENTITY_FIELDS.get(name)
    if kind is not None:
        return sorted({e.id for e in signal.event.entities() if e.type is kind})
    values = FieldView(signal.event).get(name)
    return sorted({str(v) for v in values if v is not None and not isinstance(v, dict | list)})


_NO_TIMESPAN = timedelta(0)


class Correlator:
    def __init__(self, ruleset: RuleSet) -> None:
        self._by_base_rule: dict[str, list[CorrelationRule]] = {}
        problems = nested_correlations(ruleset.correlations)  # `cordon validate` runs the same check
        if problems:
            raise problems[0]
        for correlation in ruleset.correlations:
            for base in correlation.rules:
                self._by_base_rule.setdefault(base, []).append(correlation)
        self.longest_timespan = timedelta(seconds=max((c.timespan_seconds for c in ruleset.correlations), default=0))
        self._timespans = {
            rule: timedelta(seconds=max(c.timespan_seconds for c in uses)) for rule, uses in self._by_base_rule.items()
        }
        self._last: tuple[Signal, list[tuple[CorrelationRule, _Group]]] | None = None
        # (correlation key, group values) > its group: a busy group's partition names were built for every signal
        self._known_groups: dict[tuple[str, tuple[str, ...]], _Group] = {}
        self._value_readers = {c.key: _value_reader(c) for c in ruleset.correlations}

    def timespan_for(self, rule: str) -> timedelta:
        """The longest window of any correlation that uses signals of `rule` (zero when none does)."""
        return self._timespans.get(rule, _NO_TIMESPAN)

    def partitions(self, signal: Signal) -> list[str]:
        """Correlation partitions a signal must be stored under."""
        return [group.partitions.get(signal.rule) or group.partitions[""] for _, group in self._groups_of(signal)]

    def evaluate(self, signal: Signal, store: StateStore) -> list[Firing]:
        """Correlations the (already stored) signal completes, each with its window's signals."""
        firings = []
        for rule, group in self._groups_of(signal):
            span = timedelta(seconds=rule.timespan_seconds)
            partitions = group.partitions
            if rule.type in _PER_RULE and _misses_a_rule(store, partitions, signal, span):
                continue
            decision = streak.decide(store, rule, group.key, partitions, signal, span, self._value_readers[rule.key])
            if decision is not None:
                previous = decision.previous
                if decision.holds and previous is not None:  # the rest of its window is raised already
                    entities = _group_entities(rule, group.values)
                    raised = (previous.time, signal.time)
                    firings.append(Firing(rule, group.values, entities, (previous, signal), raised))
                continue
            nearby = _nearby(store, rule, group.values, signal.time - span, signal.time + span)
            window = _satisfying_window(rule, signal, nearby, span) if nearby else []
            if window:
                first = window[0]
                # A signal at the same instant as the first member but sorted before it is not a member.
                tied = any(s.time == first.time and s.sort_key < first.sort_key for s in nearby)
                raised = (first.time + streak.TICK if tied else first.time, window[-1].time)
                entities = _group_entities(rule, group.values)
                firings.append(Firing(rule, group.values, entities, tuple(window), raised))
        return firings

    def _groups_of(self, signal: Signal) -> list[tuple[CorrelationRule, _Group]]:
        """Every (correlation, group) the signal belongs to. The pipeline asks for the signal's partitions and then
        evaluates it: the last signal's groups are kept (a pure function of a signal that never changes)."""
        last = self._last
        if last is not None and last[0] is signal:
            return last[1]
        found = []
        known = self._known_groups
        for rule in self._by_base_rule.get(signal.rule, ()):
            for values in _groups(rule, signal):
                group = known.get((rule.key, values))
                if group is None:
                    if len(known) >= _GROUPS_KEPT:
                        known.clear()  # bounded: a group is rebuilt from its values, never lost
                    group = known[rule.key, values] = _Group.of(rule, values)
                found.append((rule, group))
        self._last = (signal, found)
        return found

    def raised(self, firing: Firing, store: StateStore) -> None:
        """The firing's incident committed: its group's signals in `raised_span` are members from now on."""
        first, last = firing.raised_span
        streak.extend(store, firing.rule, _group_key(firing.group), first, last)


@dataclass(frozen=True)
class _Group:
    """One group of one correlation: its group-by values, its key in streaks, and the partitions its signals are
    stored under (by referenced rule for temporal rules, else one under "")."""

    values: tuple[str, ...]
    key: str
    partitions: dict[str, str]

    @classmethod
    def of(cls, rule: CorrelationRule, values: tuple[str, ...]) -> _Group:
        if rule.type in _PER_RULE:
            partitions = {base: _partition(rule, values, base) for base in dict.fromkeys(rule.rules)}
        else:
            partitions = {"": _partition(rule, values, "")}
        return cls(values, _group_key(values), partitions)


def _group_key(group: tuple[str, ...]) -> str:
    return _GROUP_SEPARATOR.join(group)


_GROUPS_KEPT = 4096


def _value_reader(rule: CorrelationRule) -> Callable[[Signal], list[str]]:
    """A signal's values of the rule's condition field (value_count), as `field_values` reads them: a count reads
    them for each of its newest signals on every signal of a busy group."""
    field = rule.condition_field
    if field is None:
        return lambda signal: []
    if field in rule.aliases:
        return functools.partial(_values_by_alias, rule, field)

    def read(signal: Signal) -> list[str]:
        found = signal.field_cache.get(field)
        return found if found is not None else field_values(signal, field)

    return read


def _values_by_alias(rule: CorrelationRule, field: str, signal: Signal) -> list[str]:
    return field_values(signal, _field_for(rule, field, signal))


def _partition(rule: CorrelationRule, group: tuple[str, ...], base: str) -> str:
    """Temporal correlations keep each referenced rule's signals apart, so a group missing one rule is known
    from one short read: one principal's ten thousand training reads cost nothing while no model download is
    near them. Count correlations need every signal of the group anyway."""
    prefix = f"corr|{rule.key}|{_GROUP_SEPARATOR.join(group)}"
    return f"{prefix}|{base}" if rule.type in _PER_RULE else prefix


_PER_RULE = frozenset({"temporal", "temporal_ordered"})


def _misses_a_rule(store: StateStore, partitions: dict[str, str], signal: Signal, span: timedelta) -> bool:
    """Whether one of a temporal rule's referenced rules has no signal of the group within one timespan either side
    of this one: then no window holding this signal can satisfy the rule. Most signals of a busy group (reads with
    no model download near them) end here, after one short read, before any window or streak is looked at."""
    start, end = signal.time - span, signal.time + span
    # The rarest rule is usually the last one (the download after many reads): look at it first.
    return any(
        not store.signals(partition, start, end, limit=1)
        for base, partition in reversed(partitions.items())
        if base != signal.rule
    )


def _nearby(
    store: StateStore, rule: CorrelationRule, group: tuple[str, ...], start: datetime, end: datetime
) -> list[Signal]:
    """The group's signals in [start, end], oldest first; empty when a temporal rule misses one of its rules."""
    if rule.type not in _PER_RULE:
        return store.signals(_partition(rule, group, ""), start, end)
    per_rule = []
    # The rarest rule is usually the last one (the download after many reads): look at it first.
    for base in reversed(dict.fromkeys(rule.rules)):
        found = store.signals(_partition(rule, group, base), start, end)
        if not found:
            return []
        per_rule.append(found)
    return list(heapq.merge(*per_rule, key=lambda s: s.sort_key))


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
    """Every signal of every window [start, start + span] that contains `signal` and satisfies the rule, else [].

    The union of all such windows, not the first one found: the signals a correlation holds for are then the same
    whatever order they arrived in (for any satisfying window, its last arrival finds it complete), which is what
    lets parallel, out-of-order delivery give the incidents of one sorted pass. Conditions are monotone (a window
    that holds keeps holding when a signal joins it), so a window is taken at its widest: from a signal's time to
    that time + span. One sweep, windows sliding left to right: O(signals in reach) per new signal.
    """
    ordered = nearby  # the store reads oldest first (time, then signal id): the sort key
    values = _condition_values(rule, ordered)
    if not _CONDITIONS[rule.type](rule, ordered, values):
        return []  # not even every nearby signal together satisfies it: no window can (the common case)
    position = next(i for i, s in enumerate(ordered) if s.id == signal.id)
    window = _Window(rule, ordered, values)
    low, high = len(ordered), 0
    for begin in range(position + 1):
        if ordered[begin].time + span < signal.time:
            continue
        window.slide_to(begin, ordered[begin].time + span)
        if window.holds():
            low, high = min(low, begin), max(high, window.end)
    return ordered[low:high] if low < high else []


class _Window:
    """A sliding window over time-ordered signals that keeps what its condition needs to answer in O(1)."""

    def __init__(self, rule: CorrelationRule, ordered: list[Signal], values: dict[str, list[str]]) -> None:
        self._rule = rule
        self._ordered = ordered
        self._values = values
        self.begin = 0
        self.end = 0
        self._counts: Counter[str] = Counter()  # rule name (temporal) or value (value_count) > signals
        if rule.type == "temporal_ordered":
            self._next = _next_positions(rule.rules, ordered)
            self._instant = _instant_starts(ordered)

    def _keys(self, signal: Signal) -> list[str]:
        if self._rule.type == "value_count":
            return self._values[signal.id]
        return [signal.rule]

    def slide_to(self, begin: int, until: datetime) -> None:
        if begin >= self.end:  # nothing of the old window stays in the new one
            self._counts.clear()
            self.begin = self.end = begin
        while self.begin < begin:
            for key in self._keys(self._ordered[self.begin]):
                self._counts[key] -= 1
                if not self._counts[key]:
                    del self._counts[key]
            self.begin += 1
        while self.end < len(self._ordered) and self._ordered[self.end].time <= until:
            for key in self._keys(self._ordered[self.end]):
                self._counts[key] += 1
            self.end += 1

    def holds(self) -> bool:
        rule = self._rule
        if rule.type == "event_count":
            return _count_ok(rule, self.end - self.begin)
        if rule.type == "value_count":
            return _count_ok(rule, len(self._counts))
        if rule.type == "temporal":
            return all(name in self._counts for name in rule.rules)
        # temporal_ordered: each rule's earliest match at or after the previous one's time (ties are in order), a
        # signal used by an earlier step (the same rule named twice) skipped.
        used: set[int] = set()
        start = self.begin
        for name in rule.rules:
            position = self._next[name][start]
            while position in used:
                position = self._next[name][position + 1]
            if position >= self.end:
                return False
            used.add(position)
            start = max(self.begin, self._instant[position])
        return True


def _next_positions(names: Sequence[str], ordered: list[Signal]) -> dict[str, list[int]]:
    """For each rule name and position, the first position at or after it holding a signal of that rule."""
    table: dict[str, list[int]] = {}
    for name in set(names):
        following = [len(ordered)] * (len(ordered) + 1)
        for index in range(len(ordered) - 1, -1, -1):
            following[index] = index if ordered[index].rule == name else following[index + 1]
        table[name] = following
    return table


def _instant_starts(ordered: list[Signal]) -> list[int]:
    """For each position, the first position holding a signal of the same instant (the store sorts ties by id)."""
    starts: list[int] = []
    for index, signal in enumerate(ordered):
        tied = index and ordered[index - 1].time == signal.time
        starts.append(starts[-1] if tied else index)
    return starts


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
    # Greedy on event time: each rule's earliest match at or after the previous match's time. Signals of one
    # instant count as in order whatever their ids, so the answer never depends on how ties are sorted.
    used: set[int] = set()
    after: datetime | None = None
    for name in rule.rules:
        match = next(
            (
                index
                for index, signal in enumerate(window)
                if signal.rule == name and index not in used and (after is None or signal.time >= after)
            ),
            None,
        )
        if match is None:
            return False
        used.add(match)
        after = window[match].time
    return True


_CONDITIONS: dict[str, Callable[[CorrelationRule, list[Signal], dict[str, list[str]]], bool]] = {
    "event_count": _event_count,
    "value_count": _value_count,
    "temporal": _temporal,
    "temporal_ordered": _temporal_ordered,
}
