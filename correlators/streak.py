"""The in-order shortcut: a busy group (one principal reading ten thousand objects) costs a few short reads per
signal, not a read of its whole window.

Semantics are those of `correlate._satisfying_window`: a correlation holds for the union of every window that
contains the new signal and satisfies it. When the new signal is the latest of its group within one timespan
(events arrive roughly in order, so this is the common case), every window containing it lies in
[t - span, t], and conditions are monotone, so it is in a satisfying window exactly when [t - span, t] satisfies
- which a bounded read decides: the newest few signals for a count, one signal per rule for a temporal rule.

Which signals to raise with it: all of [t - span, t]. But the group's *streak* says which of them were raised
already: an interval [A, B] whose group signals are all members of the incident a firing raised (written after
that raise committed, never before, so a crash cannot leave a streak claiming what no incident holds). When the
streak reaches back to t - span (or nothing of the group lies between t - span and A) and forward to the
previous signal, the new signal is the only new member: it is raised alone, and the streak grows to t. Anything
else (a signal out of order, the first firing of a burst, a streak lost to a concurrent writer) takes the full
read, which is always right. A streak is a hint: losing one costs speed, never correctness.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from correlators.sigma.loader import CorrelationRule
from correlators.signals import Signal
from correlators.state.base import StateStore

_STREAKS_KEPT = 4
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Decision:
    """Holds or not; when it holds, the signal is the only member not raised already, and `previous` is the
    group's signal before it: raised with it, it ties the signal to the incident that holds the streak (the
    group may be a field, not an identity the signal shares with it), and the streak reaches from it to here."""

    holds: bool
    previous: Signal | None = None


def decide(
    store: StateStore,
    rule: CorrelationRule,
    group_key: str,
    partitions: dict[str, str],
    signal: Signal,
    span: timedelta,
    values: Callable[[Signal], list[str]],
) -> Decision | None:
    """What the correlation does for this signal, when it is the latest of its group; None: read everything."""
    t = signal.time
    for partition in partitions.values():
        newest = store.signals(partition, t, t + span, newest_first=True, limit=1)
        if newest and newest[0].sort_key > signal.sort_key:
            return None  # not the latest: windows reach past it
    holds = _window_holds(store, rule, partitions, signal, span, values)
    if holds is None:
        return None
    if not holds:
        return Decision(holds=False)
    previous = _previous(store, partitions, signal, span)
    if previous is None:
        return None
    for first, last in load(store, rule, group_key):
        earlier = first <= t - span or not any(
            store.signals(p, t - span, first - TICK, limit=1) for p in partitions.values()
        )
        if earlier and last >= previous.time:
            return Decision(holds=True, previous=previous)
    return None


def _previous(store: StateStore, partitions: dict[str, str], signal: Signal, span: timedelta) -> Signal | None:
    """The group's latest signal before this one within the span; None when there is none, or when too many
    share this signal's instant to tell."""
    latest: Signal | None = None
    for partition in partitions.values():
        found = store.signals(partition, signal.time - span, signal.time, newest_first=True, limit=4)
        before = [other for other in found if other.sort_key < signal.sort_key]
        if before:
            latest = before[0] if latest is None or before[0].sort_key > latest.sort_key else latest
        elif len(found) == 4:
            return None
    return latest


def _window_holds(
    store: StateStore,
    rule: CorrelationRule,
    partitions: dict[str, str],
    signal: Signal,
    span: timedelta,
    values: Callable[[Signal], list[str]],
) -> bool | None:
    """Whether [t - span, t] satisfies the rule; None when a bounded read cannot tell."""
    start, end = signal.time - span, signal.time
    threshold = rule.condition_count if rule.condition_count is not None else 1
    need = int(threshold) + 1 if rule.condition_op == "gt" else math.ceil(threshold)
    if rule.type == "event_count":
        (partition,) = partitions.values()
        return len(store.signals(partition, start, end, newest_first=True, limit=max(need, 1))) >= need
    if rule.type == "value_count":
        (partition,) = partitions.values()
        page = max(need, 1)
        while True:  # the newest first, in growing pages, until enough distinct values or none left
            found = store.signals(partition, start, end, newest_first=True, limit=page)
            if len({v for s in found for v in values(s)}) >= need:
                return True
            if len(found) < page:
                return False
            page *= 4
    if rule.type == "temporal":
        return all(store.signals(partitions[name], start, end, newest_first=True, limit=1) for name in rule.rules)
    # temporal_ordered: each rule's latest match at or before the next rule's time (ties are in order, as in
    # correlate._Window), from the last rule backwards; nothing of the group sorts after the signal (checked above).
    bound = signal.time
    used: set[str] = set()
    for name in reversed(rule.rules):
        candidates = store.signals(partitions[name], start, bound, newest_first=True, limit=8)
        match = next((s for s in candidates if s.id not in used), None)
        if match is None:
            return None if len(candidates) == 8 else False  # eight at one instant: read everything instead
        used.add(match.id)
        bound = match.time
    return True


def _key(rule: CorrelationRule, group_key: str) -> str:
    return f"streak|{rule.key}|{group_key}"


def load(store: StateStore, rule: CorrelationRule, group_key: str) -> list[tuple[datetime, datetime]]:
    saved = store.get_meta(_key(rule, group_key))
    return list(_parsed(saved)) if saved else []


@functools.lru_cache(maxsize=256)
def _parsed(saved: str) -> tuple[tuple[datetime, datetime], ...]:
    # A busy group's streak is read (decide) and read again (extend) for each signal it raises, and rewritten
    # with the same start: parsed once per value, not twice per signal. A pure function of the text, so a value
    # another process wrote is parsed as itself.
    return tuple((datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in json.loads(saved))


def extend(store: StateStore, rule: CorrelationRule, group_key: str, first: datetime, last: datetime) -> None:
    """Record that the group's signals in [first, last] are raised (call after the raise committed)."""
    saved = load(store, rule, group_key)
    streaks = sorted([*saved, (first, last)])
    merged: list[tuple[datetime, datetime]] = []
    for a, b in streaks:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    kept = merged[-_STREAKS_KEPT:]
    if kept != saved:  # a streak that already covered the range: nothing to write
        store.set_meta(_key(rule, group_key), json.dumps([[a.isoformat(), b.isoformat()] for a, b in kept]))
