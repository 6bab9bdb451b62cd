"""The core loop, one event at a time: detect, store signals, correlate, raise incidents, then mark the event seen.

There is no reorder buffer: events are processed as they arrive, in any order, by any number of processes sharing
one store. Correlation reads both sides of an event's time from the store, and incident upkeep is independent of
arrival order (correlators/incidents.py), so a shuffled, twice-delivered stream gives the incidents of one sorted
pass. An event counts as seen only after all of its signals and incident changes are written: a process that dies
half-way leaves it unseen, and the retry processes it again, which changes nothing already written.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from correlators.config import Config
from correlators.correlate import Correlator, Firing
from correlators.detect import Detector
from correlators.errors import EventRejectedError
from correlators.incidents import IncidentGraph, entity_partition
from correlators.ingest import Item, Rejection
from correlators.model import EventSource, NormalizedEvent, time_text
from correlators.normalize import CloudTrailCall, normalize_screened
from correlators.normalize.guardduty import is_ai_protection
from correlators.sigma.loader import RuleSet
from correlators.signals import Signal
from correlators.state.base import StateStore

_HOUSEKEEPING_EVERY = 500  # events between expiry sweeps


# Objects allocated between two young collections. The core keeps its state (signals and their events, for as long
# as a window can reach them: about a day) in plain objects that die by reference counting, never in cycles (none
# found in a 6 h replay). CPython counts allocations less deallocations of tracked objects: with its default (700)
# a full collection ran every ~4,000 events, found nothing to free and walked the whole state (35-40% of the CPU of
# a 6 h replay). With 10,000 a young collection still ran every few hundred events, as what the events between two
# housekeeping sweeps keep (their signals, events and raw records: a median of 9,000 objects a 500-event interval
# on the benchmark stream, up to 24,000) crossed it, and every tenth was a middle one: 13 us an event in a 6 h
# replay, 18 in 24 h (2.8 s of its CPU), growing with the stream. 50,000 is above what an interval keeps, so
# collections run while the state builds up and hardly after: 0.3 s in 6 h and in 24 h. Per-event cost at 4x the
# stream 0.99x-1.06x of 1x, against 1.11x-1.18x with 10,000; the same peak RSS within 1.4 MB (bench/scaling.py,
# three alternating rounds).
_YOUNG_COLLECTION_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Set the process's collector up for the core's state: every Pipeline does, so `cordon replay`, the correlator
    Lambda and the benchmark run the same way. Process-wide, and idempotent."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, _YOUNG_COLLECTION_THRESHOLD), middle, old)  # never lowers a larger setting


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


class Pipeline:
    def __init__(
        self, config: Config, rules: RuleSet, store: StateStore, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.config = config
        self._now = now  # when an event is read: its time may not run ahead of it by more than max_clock_skew
        self._max_skew = config.correlation.max_clock_skew
        self._max_skew_delta = self._max_skew.delta
        # The clock's reading plus the skew, as of its last reading: an event at or before it is within the skew now
        # too, since the clock has only moved on; only a later event makes the clock be read again (once a record,
        # it was a twentieth of the core's time on a busy stream).
        self._latest_allowed: datetime | None = None
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
        self.incidents = IncidentGraph(store, settings.incident_window.delta, self._retention)
        # The latest event time seen: this process's own, raised to the state's at each housekeeping (`_housekeeping`).
        # With the two bounds that follow from it, computed when it moves rather than for every event.
        self._max_time: datetime | None = None
        self._late_before: datetime | None = None  # an event earlier than this is late
        self._horizon: datetime | None = None  # an event earlier than this is refused
        self._move_watermark(store.watermark())
        self._since_housekeeping = 0
        tune_garbage_collector()

    def take(self, item: Item) -> Rejection | None:
        """One record as read (a file line, an SQS message): normalize it and process its events, or return
        why it was rejected. Bad input is counted, never raised: the rest of the stream goes on."""
        self.stats.events_read += 1
        if isinstance(item, Rejection):
            self.stats.rejected += 1
            return item
        try:
            # A CloudTrail call no rule can match stays unbuilt (most of them): it is counted, marked seen and
            # moves the watermark as its event would, and raises no signal.
            events = normalize_screened(item, self.config, self._detector.may_match)
        except EventRejectedError as error:
            self.stats.rejected += 1
            return Rejection(where=error.where or item.where, reason=error.reason)
        if refused := self._out_of_time(events, item.where):
            self.stats.rejected += 1
            return refused
        for event in events:
            self.stats.accepted += 1
            self.submit(event)
        return None

    def _out_of_time(self, events: list[NormalizedEvent] | list[CloudTrailCall], where: str) -> Rejection | None:
        """Why a record's events cannot be taken for their time, if they cannot (one test of each bound per event,
        on every event: nothing built that a timely event does not need)."""
        for event in events:
            if self._latest_allowed is None or event.time > self._latest_allowed:
                read_at = self._now()
                self._latest_allowed = read_at + self._max_skew_delta
                if event.time <= self._latest_allowed:
                    continue
                # Event time drives the watermark, expiry and lateness: a clock far ahead would age out every signal.
                reason = (
                    f"event time {event.time.isoformat()} is more than {self._max_skew.spec} "
                    f"(correlation.max_clock_skew) after it was read, at {read_at.isoformat(timespec='seconds')}"
                )
                return Rejection(where=where, reason=reason)
        horizon = self._horizon
        if horizon is None:
            return None
        for event in events:
            if event.time < horizon:
                # Beyond the horizon the state has forgotten which events it processed (seen marks are kept as long
                # as the signals any window can reach): taken again, a redelivered event would be counted twice.
                reason = (
                    f"event time {event.time.isoformat()} is older than the state's horizon"
                    f" ({horizon.isoformat(timespec='seconds')}: the latest event time seen minus the longest window,"
                    " the incident window and the lateness): too late to correlate or to tell whether it was"
                    " processed before; replay older files first, or into another --state"
                )
                return Rejection(where=where, reason=reason)
        return None

    def submit(self, event: NormalizedEvent | CloudTrailCall) -> bool:
        """Process one event (or a CloudTrail call no rule can match, `take`); False when it had been processed
        before (a duplicate delivery)."""
        delivery = f"{event.source}|{event.event_id}|{time_text(event.time)}"
        # Marks are stamped with the watermark, not the event's own time: a late event's mark must live as long as a
        # timely one's, or a redelivery after housekeeping (or DynamoDB's TTL) forgot it would be counted again.
        watermark = self._max_time
        if watermark is None or event.time > watermark:
            watermark = event.time
        if isinstance(event, NormalizedEvent):
            if self.store.seen(delivery):
                self.stats.duplicates += 1
                return False
            self._count_time(event, watermark)
            for signal in self._detector.detect(event):
                self._handle(signal)
            # Marked once every signal and incident change of the event is written: a crash before leaves it unmarked,
            # and its redelivery does the (idempotent) work again.
            self.store.mark_seen(delivery, watermark)
        else:
            # A call raises nothing: looked up and marked in one step (one conditional write in DynamoDB, not a read
            # and a write), which also counts it once when two invocations take it side by side.
            if not self.store.mark_new(delivery, watermark):
                self.stats.duplicates += 1
                return False
            self._count_time(event, watermark)
        self._since_housekeeping += 1
        if self._since_housekeeping >= _HOUSEKEEPING_EVERY:
            self._housekeeping()
        return True

    def _count_time(self, event: NormalizedEvent | CloudTrailCall, watermark: datetime) -> None:
        """Count a late event (still processed: correlation reads both sides of its time); move the watermark."""
        if self._late_before is not None and event.time < self._late_before:
            self.stats.late += 1
        if watermark is not self._max_time:
            self._move_watermark(watermark)

    def flush(self) -> None:
        """End of input: raise the state's watermark, bound the state, and make it all durable."""
        self._housekeeping()
        self.store.sync()
        self.stats.incidents = len(self.incidents.changed)

    def _handle(self, signal: Signal) -> None:
        partitions = [entity_partition(key) for key in signal.linking_keys]
        partitions += self._correlator.partitions(signal)
        expires = signal.time + self._correlator.timespan_for(signal.rule) + self._context_retention
        if self.store.put_signal(signal, partitions, expires):
            self.stats.signals += 1
        # Written before (a retry after a crash) or just now: the rest is idempotent, so it always runs.
        raised = False
        for firing in self._correlator.evaluate(signal, self.store):
            self._raise_correlation(firing, signal)
            raised = True
        if self._opens_alone(signal):
            self.incidents.raise_incident(signal.rule, signal.title, signal.severity, [signal], trigger=signal)
            raised = True
        if not raised:
            self.incidents.attach_context(signal)

    def _opens_alone(self, signal: Signal) -> bool:
        """A standalone signal opens an incident from the severity floor up; a GuardDuty AI Protection finding
        (default severity Low) whatever the floor, so that LLM-jacking is never dropped silently."""
        if not signal.standalone:
            return False
        if signal.severity.rank >= self._min_severity.rank:
            return True
        finding = signal.event.finding
        return signal.event.source is EventSource.GUARDDUTY and finding is not None and is_ai_protection(finding.type)

    def _raise_correlation(self, firing: Firing, trigger: Signal) -> None:
        rule = firing.rule
        severity = rule.level or max((s.severity for s in firing.signals), key=lambda s: s.rank)
        self.incidents.raise_incident(
            rule.key, rule.title, severity, list(firing.signals), firing.group_entities, trigger=trigger
        )
        self._correlator.raised(firing, self.store)

    @property
    def watermark(self) -> datetime | None:
        """The latest event time this pipeline knows of: its own events', and the state's as of its last
        housekeeping. Later events count as late against it (less `correlation.lateness`)."""
        return self._max_time

    @property
    def horizon(self) -> datetime | None:
        """The watermark less the retention: a record with an older event is refused (`take`)."""
        return self._horizon

    def _move_watermark(self, time: datetime | None) -> None:
        self._max_time = time
        self._late_before = None if time is None else time - self._lateness
        self._horizon = None if time is None else time - self._retention

    def share_watermark(self) -> None:
        """Raise the state's watermark to this pipeline's and take the state's (the first step of housekeeping).
        Also for a process that may take fewer events than a housekeeping's worth before it ends: a Lambda
        container, at the end of each invocation."""
        if self._max_time is not None:
            self._move_watermark(self.store.raise_watermark(self._max_time))

    def _housekeeping(self) -> None:
        """Share the watermark, then bound the state: expire what no window can reach any more, then cap it,
        stalest first. A store that expires items by itself (DynamoDB's TTL) is left to do so.

        Every process sharing the state raises the state's watermark to its own and takes the result, before it
        expires anything: a process whose stream is behind learns how far the others went, and from then on
        counts its events late and refuses those beyond the horizon (the state no longer holds their windows and
        seen marks), instead of changing incidents silently. Between two housekeepings it goes by what it knew."""
        self._since_housekeeping = 0
        self.share_watermark()
        horizon = self._horizon
        if self._max_time is None or horizon is None or getattr(self.store, "expires_by_itself", False):
            return
        self.stats.expired += self.store.expire_signals(self._max_time)
        self.store.forget_events(horizon)
        if self.store.signal_count() > self._cap:
            # Evict down to 90% of the cap so a full store is not re-sorted on every event.
            self.stats.evicted += self.store.evict_stalest(int(self._cap * 0.9))
