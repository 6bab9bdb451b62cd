"""Expiry and forgetting in stores that do it themselves (memory, SQLite), whatever order items age out in.

The memory store cuts expired signals from the head of each partition in one step and forgets seen marks from a
time-ordered heap; these tests hold both to the plain semantics when what expires is not the oldest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from correlators.model import EventSource, NormalizedEvent, Severity
from correlators.signals import Signal
from correlators.state import MemoryStore, SqliteStore, StateStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(days=365)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    opened: StateStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "state.db")
    yield opened
    opened.close()


def _signal(minute: int) -> Signal:
    event = NormalizedEvent(
        event_id=f"e{minute}", time=T0 + timedelta(minutes=minute), source=EventSource.CLOUDTRAIL, raw={}
    )
    return Signal(rule="r", title="t", severity=Severity.LOW, standalone=False, event=event)


def _ids(store: StateStore, partition: str) -> list[str]:
    return [s.event.event_id for s in store.signals(partition, T0, FAR)]


def test_a_signal_expiring_in_the_middle_of_a_partition_leaves_its_neighbours(store: StateStore) -> None:
    # GIVEN a partition whose middle signal is kept briefly and the others long (another rule's longer window)
    store.put_signal(_signal(0), ["p", "q"], FAR)
    store.put_signal(_signal(10), ["p"], T0 + timedelta(minutes=15))
    store.put_signal(_signal(20), ["p", "q"], FAR)
    store.put_signal(_signal(30), ["q"], T0 + timedelta(minutes=35))
    # WHEN event time moves past both short expiries
    expired = store.expire_signals(T0 + timedelta(hours=1))
    # THEN exactly those two go, and the order of what stays is kept
    assert expired == 2
    assert _ids(store, "p") == ["e0", "e20"]
    assert _ids(store, "q") == ["e0", "e20"]


def test_the_head_of_a_busy_partition_expires_and_the_rest_stays_readable(store: StateStore) -> None:
    for minute in range(50):
        store.put_signal(_signal(minute), ["busy", f"own{minute % 2}"], T0 + timedelta(minutes=minute + 5))
    expired = store.expire_signals(T0 + timedelta(minutes=30))
    assert expired == 25  # expiries before minute 30: signals of minutes 0..24
    assert _ids(store, "busy") == [f"e{m}" for m in range(25, 50)]
    assert _ids(store, "own1") == [f"e{m}" for m in range(25, 50) if m % 2]
    assert store.signal_count() == 25


def test_marks_are_forgotten_by_their_own_time_whatever_order_they_were_made_in(store: StateStore) -> None:
    # Marks carry the watermark of the process that made them: processes sharing a store make them out of order.
    for key, minute in [("c", 30), ("a", 0), ("d", 45), ("b", 10)]:
        store.mark_seen(key, T0 + timedelta(minutes=minute))
    store.mark_seen("a", T0 + timedelta(minutes=50))  # marked again: the first mark's time stands
    assert store.forget_events(T0 + timedelta(minutes=20)) == 2
    assert [store.seen(k) for k in "abcd"] == [False, False, True, True]
    store.mark_seen("a", T0 + timedelta(minutes=60))  # processed again after it was forgotten: a fresh mark
    assert store.forget_events(T0 + timedelta(minutes=40)) == 1
    assert [store.seen(k) for k in "abcd"] == [True, False, False, True]
