"""In-memory state: for tests and one-shot replays that need nothing kept."""

from __future__ import annotations

import bisect
import heapq
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from correlators.signals import Incident, Signal
from correlators.state.base import StateStore


class MemoryStore(StateStore):
    def __init__(self) -> None:
        self._signals: dict[str, Signal] = {}
        self._partitions_of: dict[str, list[str]] = {}
        # partition -> sorted list of (time, signal id)
        self._partitions: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self._expiry: list[tuple[datetime, str]] = []  # heap; entries of evicted signals are skipped lazily
        self._events: dict[str, datetime] = {}
        self._incidents: dict[str, Incident] = {}
        self._meta: dict[str, str] = {}

    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        if signal.id in self._signals:
            return False
        parts = sorted(set(partitions))
        self._signals[signal.id] = signal
        heapq.heappush(self._expiry, (expires, signal.id))
        self._partitions_of[signal.id] = parts
        for partition in parts:
            bisect.insort(self._partitions[partition], (signal.time, signal.id))
        return True

    def signals(self, partition: str, start: datetime, end: datetime) -> list[Signal]:
        rows = self._partitions.get(partition, [])
        low = bisect.bisect_left(rows, (start, ""))
        high = bisect.bisect_right(rows, (end, "\U0010ffff"), lo=low)
        return [self._signals[signal_id] for _, signal_id in rows[low:high]]

    def signal_count(self) -> int:
        return len(self._signals)

    def _drop(self, signal_ids: list[str]) -> int:
        for signal_id in signal_ids:
            signal = self._signals.pop(signal_id)
            for partition in self._partitions_of.pop(signal_id):
                rows = self._partitions[partition]
                del rows[bisect.bisect_left(rows, (signal.time, signal_id))]
                if not rows:
                    del self._partitions[partition]
        return len(signal_ids)

    def expire_signals(self, now: datetime) -> int:
        due = []
        while self._expiry and self._expiry[0][0] < now:
            _, signal_id = heapq.heappop(self._expiry)
            if signal_id in self._signals:
                due.append(signal_id)
        return self._drop(due)

    def evict_stalest(self, keep: int) -> int:
        excess = len(self._signals) - keep
        if excess <= 0:
            return 0
        stalest = sorted(self._signals.values(), key=lambda s: s.sort_key)[:excess]
        return self._drop([s.id for s in stalest])

    def remember_event(self, key: str, time: datetime) -> bool:
        if key in self._events:
            return False
        self._events[key] = time
        return True

    def forget_events(self, before: datetime) -> int:
        old = [key for key, time in self._events.items() if time < before]
        for key in old:
            del self._events[key]
        return len(old)

    def put_incident(self, incident: Incident) -> None:
        self._incidents[incident.id] = incident.model_copy(deep=True)

    def get_incident(self, incident_id: str) -> Incident | None:
        found = self._incidents.get(incident_id)
        return found.model_copy(deep=True) if found else None

    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        live = [
            i.model_copy(deep=True)
            for i in self._incidents.values()
            if i.merged_into is None and (since is None or i.last_seen >= since)
        ]
        return sorted(live, key=lambda i: (i.first_seen, i.id))

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value
