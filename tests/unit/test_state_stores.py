"""Both state stores honour one contract: append-only signals by partition and time, dedup, expiry, eviction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from correlators.errors import StateError
from correlators.model import EventSource, NormalizedEvent, Severity
from correlators.signals import Incident, Signal
from correlators.state import MemoryStore, SqliteStore, StateStore, open_store

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(days=365)


def _signal(minute: int, event_id: str | None = None, rule: str = "r") -> Signal:
    event = NormalizedEvent(
        event_id=event_id or f"e{minute}", time=T0 + timedelta(minutes=minute), source=EventSource.CLOUDTRAIL, raw={}
    )
    return Signal(rule=rule, title="t", severity=Severity.LOW, standalone=False, event=event)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path) -> StateStore:
    if request.param == "memory":
        return MemoryStore()
    return SqliteStore(tmp_path / "state.db")


def test_signals_are_read_back_by_partition_and_time_range(store: StateStore) -> None:
    # GIVEN signals in two partitions
    for minute in (0, 5, 10, 30):
        store.put_signal(_signal(minute), ["entity|a"], FAR)
    store.put_signal(_signal(7, "other"), ["entity|b"], FAR)
    # WHEN one partition's window is read
    found = store.signals("entity|a", T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    # THEN only its signals inside the bounds come back, oldest first
    assert [s.event.event_id for s in found] == ["e5", "e10"]


def test_a_signal_is_stored_once(store: StateStore) -> None:
    assert store.put_signal(_signal(1), ["p"], FAR) is True
    assert store.put_signal(_signal(1), ["p"], FAR) is False
    assert store.signal_count() == 1


def test_expiry_drops_signals_past_their_own_expiry_from_every_partition(store: StateStore) -> None:
    # GIVEN an early signal kept briefly and a later one kept long (its rule feeds a longer correlation)
    store.put_signal(_signal(0), ["p", "q"], T0 + timedelta(minutes=5))
    store.put_signal(_signal(20), ["p"], FAR)
    # WHEN event time moves past the first one's expiry
    assert store.expire_signals(T0 + timedelta(minutes=10)) == 1
    assert store.signals("q", T0, T0 + timedelta(hours=1)) == []
    assert [s.event.event_id for s in store.signals("p", T0, T0 + timedelta(hours=1))] == ["e20"]


def test_eviction_drops_the_stalest_first(store: StateStore) -> None:
    for minute in (3, 1, 2, 0):
        store.put_signal(_signal(minute), ["p"], FAR)
    assert store.evict_stalest(keep=2) == 2
    assert [s.event.event_id for s in store.signals("p", T0, T0 + timedelta(hours=1))] == ["e2", "e3"]


def test_event_keys_deduplicate_deliveries(store: StateStore) -> None:
    assert store.remember_event("k", T0) is True
    assert store.remember_event("k", T0) is False
    assert store.forget_events(T0 + timedelta(seconds=1)) == 1
    assert store.remember_event("k", T0) is True


def test_incidents_round_trip_and_merged_ones_are_not_live(store: StateStore) -> None:
    live = Incident(id="inc-1", title="x", severity=Severity.HIGH, first_seen=T0, last_seen=T0)
    merged = Incident(id="inc-2", title="y", severity=Severity.LOW, first_seen=T0, last_seen=T0, merged_into="inc-1")
    store.put_incident(live)
    store.put_incident(merged)
    assert store.get_incident("inc-2") == merged
    assert [i.id for i in store.incidents()] == ["inc-1"]


def test_sqlite_state_survives_reopening(tmp_path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    first.put_signal(_signal(1), ["p"], FAR)
    first.set_meta("max_event_time", T0.isoformat())
    first.close()
    second = open_store(f"sqlite:///{path}")
    assert second.signal_count() == 1
    assert second.get_meta("max_event_time") == T0.isoformat()


def test_a_file_that_is_not_a_state_database_is_refused(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a Cordon state database"):
        SqliteStore(path)


def test_unknown_store_url_is_refused() -> None:
    with pytest.raises(StateError, match="unknown state store 'redis://x'"):
        open_store("redis://x")
