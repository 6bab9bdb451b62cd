"""The core loop: de-duplicate, restore event-time order, detect, store, correlate, raise incidents.

Events may arrive up to `lateness` out of order (CloudTrail delivers in about five minutes, without a
guarantee). A reorder buffer holds each event until the watermark (latest event time seen minus the lateness)
has passed it, so everything downstream sees events in event-time order and an out-of-order stream gives
exactly the incidents of the sorted one. An event later than that is still processed, and counted as late;
correlation reads both sides of its time, so it can still complete a pattern.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from correlators.config import Config
from correlators.correlate import Correlator, Firing
from correlators.detect import Detector
from correlators.incidents import IncidentGraph, identity_entities
from correlators.model import NormalizedEvent
from correlators.sigma.loader import RuleSet
from correlators.signals import Signal
from correlators.state.base import StateStore

_WATERMARK_KEY = "max_event_time"
_HOUSEKEEPING_EVERY = 500  # events between expiry sweeps


@dataclass
class Stats:
    events_read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    late: int = 0
    signals: int = 0
    incidents: int = 0
    expired: int = 0
    evicted: int = 0


@dataclass(order=True)
class _Pending:
    time: datetime
    tiebreak: str
    event: NormalizedEvent = field(compare=False)


class Pipeline:
    def __init__(self, config: Config, rules: RuleSet, store: StateStore) -> None:
        self.config = config
        self.store = store
        self.stats = Stats()
        self._detector = Detector(rules)
        self._correlator = Correlator(rules)
        settings = config.correlation
        self._lateness = settings.lateness.delta
        self._min_severity = settings.standalone_min_severity
        self._cap = settings.max_state_entries
        # A signal is kept as long as a correlation that uses it, or an incident it could join, can still reach it.
        self._context_retention = settings.incident_window.delta + self._lateness
        self._retention = self._correlator.longest_timespan + self._context_retention
        self.incidents = IncidentGraph(store, settings.incident_window.delta)
        saved = store.get_meta(_WATERMARK_KEY)
        self._max_time: datetime | None = datetime.fromisoformat(saved) if saved else None
        self._released_upto: datetime | None = self._max_time
        self._buffer: list[_Pending] = []
        self._since_housekeeping = 0

    def submit(self, event: NormalizedEvent) -> None:
        """Take one normalized event in arrival order."""
        delivery = f"{event.source}|{event.event_id}|{event.time.isoformat()}"
        if not self.store.remember_event(delivery, event.time):
            self.stats.duplicates += 1
            return
        heapq.heappush(self._buffer, _Pending(event.time, f"{event.source}|{event.event_id}", event))
        if self._max_time is None or event.time > self._max_time:
            self._max_time = event.time
        watermark = self._max_time - self._lateness
        # Strictly before the watermark: an event exactly `lateness` behind may still have an earlier sibling.
        while self._buffer and self._buffer[0].time < watermark:
            self._process(heapq.heappop(self._buffer).event)

    def flush(self) -> None:
        """End of input: process everything still buffered and save the watermark."""
        while self._buffer:
            self._process(heapq.heappop(self._buffer).event)
        self._housekeeping()
        if self._max_time is not None:
            self.store.set_meta(_WATERMARK_KEY, self._max_time.isoformat())
        self.stats.incidents = len(self.incidents.touched)

    def _process(self, event: NormalizedEvent) -> None:
        if self._released_upto is not None and event.time < self._released_upto:
            self.stats.late += 1
        else:
            self._released_upto = event.time
        for signal in self._detector.detect(event):
            self._handle(signal)
        self._since_housekeeping += 1
        if self._since_housekeeping >= _HOUSEKEEPING_EVERY:
            self._housekeeping()

    def _handle(self, signal: Signal) -> None:
        partitions = [f"entity|{e.key}" for e in identity_entities([signal])]
        partitions += self._correlator.partitions(signal)
        expires = signal.time + self._correlator.timespan_for(signal.rule) + self._context_retention
        if not self.store.put_signal(signal, partitions, expires):
            return
        self.stats.signals += 1
        raised = False
        for firing in self._correlator.evaluate(signal, self.store):
            self._raise_correlation(firing)
            raised = True
        if signal.standalone and signal.severity.rank >= self._min_severity.rank:
            self.incidents.raise_incident(signal.rule, signal.title, signal.severity, [signal])
            raised = True
        if not raised:
            self.incidents.attach_context(signal)

    def _raise_correlation(self, firing: Firing) -> None:
        rule = firing.rule
        severity = rule.level or max((s.severity for s in firing.signals), key=lambda s: s.rank)
        self.incidents.raise_incident(rule.key, rule.title, severity, list(firing.signals), firing.group_entities)

    def _housekeeping(self) -> None:
        """Bound the state: expire what no window can reach any more, then cap it, stalest first."""
        self._since_housekeeping = 0
        if self._max_time is None:
            return
        horizon = self._max_time - self._retention
        self.stats.expired += self.store.expire_signals(self._max_time)
        self.store.forget_events(horizon)
        self.incidents.forget_before(horizon)
        if self.store.signal_count() > self._cap:
            # Evict down to 90% of the cap so a full store is not re-sorted on every event.
            self.stats.evicted += self.store.evict_stalest(int(self._cap * 0.9))
