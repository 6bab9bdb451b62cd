"""The memory store's seen marks: digests filed by minute, the part of a replay's state that grows with the stream."""

from __future__ import annotations

import threading
import tracemalloc
from datetime import UTC, datetime, timedelta

from correlators.state.memory import MemoryStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_a_mark_is_forgotten_once_its_whole_minute_is_before_the_horizon() -> None:
    store = MemoryStore()
    store.mark_seen("k", T0 + timedelta(seconds=30))
    assert store.forget_events(T0 + timedelta(seconds=59)) == 0
    assert store.seen("k")
    assert store.forget_events(T0 + timedelta(minutes=1)) == 1
    assert not store.seen("k")


def test_the_remembered_digest_never_answers_for_another_key() -> None:
    store = MemoryStore()
    assert not store.seen("a")
    store.mark_seen("b", T0)  # asked about "a", marks "b"
    assert not store.seen("a")
    assert store.seen("b")
    store.mark_seen("a", T0)
    assert store.seen("a")


def test_keys_that_differ_only_in_an_unpaired_surrogate_are_two_marks() -> None:
    store = MemoryStore()
    store.mark_seen("cloudtrail|\ud800|t", T0)
    assert store.seen("cloudtrail|\ud800|t")
    assert not store.seen("cloudtrail|\ud801|t")


def _key(n: int) -> str:
    return f"cloudtrail|{n:08x}-3b3c-4c6e-9d9a-3c6f7a1b2c3d|2026-11-20T09:00:00+00:00"


def test_a_mark_costs_under_97_bytes() -> None:
    # A day of events is kept. Kept as its key string in a dict and a (time, key) heap, a mark cost ~225 bytes
    # here, and the marks were most of what a 24-hour replay grows by (bench target 4).
    store = MemoryStore()
    marks = 50_000
    stamps = [T0 + timedelta(seconds=n // 3) for n in range(marks)]  # the watermark: shared by events in a row
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(marks):
            store.mark_seen(_key(n), stamps[n])
        per_mark = (tracemalloc.get_traced_memory()[0] - before) / marks
    finally:
        tracemalloc.stop()
    assert per_mark < 97, per_mark  # 94 measured (102 with all 64 bits of the hash: an int of 36 bytes, not 32)
    assert all(store.seen(_key(n)) for n in range(0, marks, 97))


def test_eight_threads_marking_at_once_lose_no_mark() -> None:
    store = MemoryStore()
    failures: list[str] = []

    def work(thread: int) -> None:
        for n in range(2_000):
            key = f"t{thread}|{n}"
            if store.seen(key):
                failures.append(f"{key} seen before it was marked")
            store.mark_seen(key, T0 + timedelta(seconds=n))
            if not store.seen(key):
                failures.append(f"{key} not seen once marked")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.forget_events(T0 + timedelta(hours=1)) == 16_000


def test_a_mark_stamped_with_a_time_whose_minute_was_forgotten_is_forgotten_in_turn() -> None:
    # Marks find their minute's list by the stamp's identity: a sweep that forgot that list must not leave a later
    # mark with the same stamp in it, where no sweep would ever find it again.
    store = MemoryStore()
    stamp = T0 + timedelta(seconds=10)
    store.mark_seen("first", stamp)
    assert store.forget_events(T0 + timedelta(minutes=2)) == 1
    store.mark_seen("second", stamp)
    assert store.seen("second")
    assert store.forget_events(T0 + timedelta(minutes=2)) == 1
    assert not store.seen("second")
