"""In-memory state: for tests and one-shot replays that need nothing kept. Thread-safe: one lock around each call.

Incidents are stored as working copies and handed out as working copies (`Incident.working_copy`), so a caller
never holds the store's own object: what it changes reaches the store only through `commit`, as with every other
store.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from correlators.signals import Incident, Signal
from correlators.state.base import (
    WATERMARK_KEY,
    Commit,
    EntityLinks,
    StateStore,
    check_commit,
    parse_watermark,
    watermark_text,
)


class MemoryStore(StateStore):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._signals: dict[str, Signal] = {}
        self._partitions_of: dict[str, list[str]] = {}
        # partition -> its (time, signal id) keys, sorted, and its signals in the same order: a read is two binary
        # searches and one slice, with no look-up per signal (correlation reads a few partitions per signal)
        self._partitions: dict[str, tuple[list[tuple[datetime, str]], list[Signal]]] = {}
        self._expiry: list[tuple[datetime, str]] = []  # heap; entries of evicted signals are skipped lazily
        # Seen marks are the one part of the state that grows with the stream: one per event, kept as long as the
        # longest window (a day of events). Each is kept as a 60-bit digest of its key (`seen`; a key is ~75
        # characters) and filed under the minute of its time, forgotten a minute at a time: a scan of every mark made
        # each sweep cost the whole horizon, and a (time, key) heap entry per mark cost more than the mark. About
        # 94 bytes a mark instead of 225 (tests/unit/test_memory_seen_marks.py; bench/scaling.py, target 4).
        self._seen: dict[int, None] = {}  # a dict: 30% smaller than a set of as many
        self._seen_by_minute: dict[int, list[int]] = {}
        self._seen_minutes: list[int] = []  # heap of the keys of `_seen_by_minute`
        # The time the last mark was stamped with, and its minute's list: the pipeline stamps a mark with its
        # watermark, one object for every event until a later one comes, so most marks find their list by identity.
        self._stamp: datetime | None = None
        self._stamp_marks: list[int] = []
        self._incidents: dict[str, Incident] = {}
        self._versions: dict[str, int] = {}
        self._handled: dict[str, int] = {}
        self._links: dict[str, EntityLinks] = {}
        self._members: dict[str, str] = {}
        self._meta: dict[str, str] = {}

    def put_signal(self, signal: Signal, partitions: Iterable[str], expires: datetime) -> bool:
        with self._lock:
            if signal.id in self._signals:
                return False
            parts = sorted(set(partitions))
            key = signal.sort_key
            self._signals[signal.id] = signal
            heapq.heappush(self._expiry, (expires, signal.id))
            self._partitions_of[signal.id] = parts
            for partition in parts:
                rows = self._partitions.get(partition)
                if rows is None:
                    rows = self._partitions[partition] = ([], [])
                keys, found = rows
                at = bisect.bisect_right(keys, key)
                keys.insert(at, key)
                found.insert(at, signal)
            return True

    def signals(
        self, partition: str, start: datetime, end: datetime, *, newest_first: bool = False, limit: int | None = None
    ) -> list[Signal]:
        with self._lock:
            rows = self._partitions.get(partition)
            if rows is None:
                return []
            keys, signals = rows
            low = bisect.bisect_left(keys, (start, ""))
            high = bisect.bisect_right(keys, (end, "\U0010ffff"), lo=low)
            if limit is not None:
                low, high = (max(low, high - limit), high) if newest_first else (low, min(high, low + limit))
            found = signals[low:high]
        return found[::-1] if newest_first else found

    def signal_count(self) -> int:
        return len(self._signals)

    def _drop(self, signal_ids: list[str]) -> int:
        doomed: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for signal_id in signal_ids:
            signal = self._signals.pop(signal_id)
            self._members.pop(signal_id, None)  # beyond every window: nothing can count it again
            key = signal.sort_key  # the very tuple `put_signal` filed: compared by identity below
            for partition in self._partitions_of.pop(signal_id):
                doomed[partition].append(key)
        for partition, entries in doomed.items():
            keys, signals = self._partitions[partition]
            entries.sort()
            if keys[: len(entries)] == entries:
                # What expires is the oldest of a partition: one cut at its head, where deleting the rows one by
                # one shifted a busy partition (a day of one principal's reads) once per row.
                del keys[: len(entries)]
                del signals[: len(entries)]
            else:
                for entry in entries:
                    at = bisect.bisect_left(keys, entry)
                    del keys[at]
                    del signals[at]
            if not keys:
                del self._partitions[partition]
        return len(signal_ids)

    def expire_signals(self, now: datetime) -> int:
        with self._lock:
            due = []
            while self._expiry and self._expiry[0][0] < now:
                _, signal_id = heapq.heappop(self._expiry)
                if signal_id in self._signals:
                    due.append(signal_id)
            return self._drop(due)

    def evict_stalest(self, keep: int) -> int:
        with self._lock:
            excess = len(self._signals) - keep
            if excess <= 0:
                return 0
            stalest = sorted(self._signals.values(), key=lambda s: s.sort_key)[:excess]
            return self._drop([s.id for s in stalest])

    # A seen mark as kept: the low 60 bits of the key's `hash` (64 bits of SipHash keyed with a secret this process
    # drew at random, PEP 456). 60 bits make an int CPython allocates in 32 bytes instead of 36, which its allocator
    # rounds to 48: a sixth of a mark's memory (tests/unit/test_memory_seen_marks.py). The marks never leave the
    # process, so a per-process key is no loss, and it means no one outside can craft two keys that share a mark (a
    # shared mark drops an event as a duplicate); chance makes one with odds of 1 in 10^8 for a day's 160,000 marks
    # (n^2 / 2^61), 1 in 2 * 10^6 for a million (64 bits: 1 in 4 * 10^7), in this store only: SQLite and DynamoDB
    # keep the keys themselves. A string keeps its hash: `seen` then `mark_seen` of one key compute it once.
    # (BLAKE2b cost 1 us a mark, a tenth of which this costs.) Even under PYTHONHASHSEED, which fixes the secret, a
    # key is mostly an id AWS chose.
    def seen(self, key: str) -> bool:
        return (hash(key) & _MARK_BITS) in self._seen

    def mark_seen(self, key: str, time: datetime) -> None:
        self.mark_new(key, time)

    def mark_new(self, key: str, time: datetime) -> bool:
        digest = hash(key) & _MARK_BITS
        with self._lock:
            if digest in self._seen:
                return False
            self._seen[digest] = None
            if time is not self._stamp:
                self._stamp_marks = self._minute_marks(_minute(time))
                self._stamp = time
            self._stamp_marks.append(digest)
            return True

    def _minute_marks(self, minute: int) -> list[int]:
        marks = self._seen_by_minute.get(minute)
        if marks is None:
            marks = self._seen_by_minute[minute] = []
            heapq.heappush(self._seen_minutes, minute)
        return marks

    def forget_events(self, before: datetime) -> int:
        """Marks whose whole minute is before `before`: one made in the minute `before` falls in is kept until the
        next sweep. Kept longer, a mark changes nothing: an event that old is refused as beyond the horizon
        before its mark is read."""
        ended = int(before.timestamp() // 60)  # minutes before this one have ended by `before`
        with self._lock:
            forgotten = 0
            while self._seen_minutes and self._seen_minutes[0] < ended:
                marks = self._seen_by_minute.pop(heapq.heappop(self._seen_minutes))
                for digest in marks:
                    del self._seen[digest]
                forgotten += len(marks)
            self._stamp = None  # its minute's list may be one of those forgotten
            return forgotten

    def get_incident(self, incident_id: str) -> Incident | None:
        with self._lock:
            found = self._incidents.get(incident_id)
            return found.working_copy() if found else None

    def get_links(self, entities: Iterable[str]) -> dict[str, EntityLinks]:
        with self._lock:
            found = {}
            for key in entities:
                item = self._links.get(key)
                found[key] = EntityLinks(key, item.version, dict(item.incidents)) if item else EntityLinks(key)
            return found

    def members(self, signal_ids: Iterable[str]) -> dict[str, str]:
        with self._lock:
            return {i: self._members[i] for i in signal_ids if i in self._members}

    def commit(self, commit: Commit) -> bool:
        with self._lock:
            # Only the link items this commit writes: every item of the store would make each commit O(entities).
            written = (w.links.entity for w in commit.links)
            links = {key: self._links[key].version for key in written if key in self._links}
            if not check_commit(commit, self._versions, links, self._members):
                return False
            for write in commit.incidents:
                self._incidents[write.incident.id] = write.incident.working_copy()
                self._versions[write.incident.id] = write.incident.version
            for links_write in commit.links:
                item = links_write.links
                self._links[item.entity] = EntityLinks(item.entity, item.version, dict(item.incidents))
            self._members.update(commit.members)
            return True

    def _live(self) -> list[Incident]:
        with self._lock:
            found = [i.working_copy() for i in self._incidents.values() if i.merged_into is None]
        return sorted(found, key=lambda i: (i.first_seen, i.id))

    def incidents(self, *, since: datetime | None = None) -> list[Incident]:
        return [i for i in self._live() if since is None or i.last_seen >= since]

    def unhandled_incidents(self) -> list[Incident]:
        return [i for i in self._live() if i.version > self._handled.get(i.id, 0)]

    def mark_handled(self, incident_id: str, version: int) -> None:
        with self._lock:
            self._handled[incident_id] = max(version, self._handled.get(incident_id, 0))

    def raise_watermark(self, time: datetime) -> datetime:
        with self._lock:
            stored = parse_watermark(self._meta.get(WATERMARK_KEY))
            if stored is not None and stored >= time:
                return stored
            self._meta[WATERMARK_KEY] = watermark_text(time)
            return time

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._meta[key] = value


_MARK_BITS = (1 << 60) - 1


def _minute(time: datetime) -> int:
    return int(time.timestamp() // 60)
