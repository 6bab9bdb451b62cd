"""Lambda's delivery model: any order, at least once, in parallel. The incidents are those of one sorted pass.

The events are the bundled scenarios and every rule fixture (more than 100 events, four incidents of different
shapes: ordered correlations, a finding joined by activity and an alarm, bulk reads, merges). Arrival order is a
free permutation, not a bounded delay: the deployed path has no reorder buffer.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cordon.replay import incident_json
from correlators.pipeline import Pipeline
from correlators.state import MemoryStore, SqliteStore
from correlators.state.base import StateStore
from correlators.state.dynamodb import DynamoDBStore
from tests.unit.test_event_time_order import CONFIG, EVENTS, RULES
from tests.unit.test_state_contract import TABLE, dynamodb_table

Incidents = list[dict[str, Any]]


def _incidents(store: StateStore) -> Incidents:
    return [incident_json(i) for i in store.incidents()]


def _sorted_pass(events: list[Any] = EVENTS) -> Incidents:
    pipeline = Pipeline(CONFIG, RULES, MemoryStore())
    for event in events:
        pipeline.submit(event)
    return _incidents(pipeline.store)


BASELINE = _sorted_pass()


def test_the_baseline_has_incidents_of_several_shapes() -> None:
    assert len(BASELINE) >= 3
    assert any(len(i["rules"]) >= 3 for i in BASELINE)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(order=st.permutations(range(len(EVENTS))), repeats=st.lists(st.integers(0, len(EVENTS) - 1), max_size=30))
def test_any_arrival_order_with_duplicates_gives_the_incidents_of_the_sorted_pass(
    order: list[int], repeats: list[int]
) -> None:
    # GIVEN the events in any order, some delivered again at any later point
    arrivals = [EVENTS[i] for i in order]
    for n, i in enumerate(repeats):
        arrivals.insert(min(len(arrivals), order.index(i) + 1 + n), EVENTS[i])
    pipeline = Pipeline(CONFIG, RULES, MemoryStore())
    # WHEN they are processed in that order
    for event in arrivals:
        pipeline.submit(event)
    # THEN the incidents are exactly those of the sorted pass
    assert _incidents(pipeline.store) == BASELINE


def _store(kind: str, tmp_path: Path) -> StateStore:
    if kind == "memory":
        return MemoryStore()
    return SqliteStore(tmp_path / "state.db", batched=kind == "sqlite-batched")


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-batched"])
@pytest.mark.parametrize("seed", range(8))
def test_eight_threads_sharing_one_store_give_the_incidents_of_the_sorted_pass(
    kind: str, seed: int, tmp_path: Path
) -> None:
    _eight_threads(_store(kind, tmp_path), seed)


def test_eight_threads_sharing_one_dynamodb_table_give_the_incidents_of_the_sorted_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # moto's DynamoDB is not thread-safe: its requests run one at a time (SerializedClient), as DynamoDB runs each
    # atomically; the 8 pipelines' requests still interleave between each other.
    # moto deep-copies the whole table for every item of a transaction and sorts a partition on every query, so
    # this one runs the demo's first hour and a half only (30 events, each twice): two incidents, one of them five
    # rules deep, built by raises and merges racing on the table (memory and SQLite run every fixture above).
    scenarios = [e for e in EVENTS if "examples/scenarios" in e.origin][:30]
    shapes = sorted(len(incident["rules"]) for incident in _sorted_pass(scenarios))
    assert len(shapes) == 2 and shapes[-1] >= 5
    with dynamodb_table(monkeypatch) as client:
        _eight_threads(DynamoDBStore(client, TABLE), seed=11, events=scenarios)


def _eight_threads(store: StateStore, seed: int, events: list[Any] = EVENTS) -> None:
    # GIVEN a shuffled stream delivered twice, dealt to 8 workers, each with its own pipeline on one store
    baseline = BASELINE if events is EVENTS else _sorted_pass(events)
    arrivals = events * 2
    random.Random(seed).shuffle(arrivals)
    queues = [arrivals[n::8] for n in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(events: list[Any]) -> None:
        pipeline = Pipeline(CONFIG, RULES, store)
        start.wait()
        try:
            for event in events:
                pipeline.submit(event)
        except BaseException as error:  # reported below, with the thread's traceback
            errors.append(error)
            raise

    threads = [threading.Thread(target=work, args=(queue,)) for queue in queues]
    # WHEN they all run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN nothing failed and the incidents are exactly those of one sorted pass
    assert errors == []
    assert _incidents(store) == baseline


class _Crash(Exception):
    """The process died here."""


class _DyingStore(MemoryStore):
    """A store whose process dies just before its n-th write: everything before stays, nothing after."""

    def __init__(self, writes_before_death: int) -> None:
        super().__init__()
        self.left = writes_before_death

    def _write(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Crash

    def put_signal(self, *args: Any, **kwargs: Any) -> bool:
        self._write()
        return super().put_signal(*args, **kwargs)

    def commit(self, *args: Any, **kwargs: Any) -> bool:
        self._write()
        return super().commit(*args, **kwargs)

    def mark_seen(self, *args: Any, **kwargs: Any) -> None:
        self._write()
        super().mark_seen(*args, **kwargs)


def _writes_of_one_run() -> int:
    counter = _DyingStore(10**9)
    pipeline = Pipeline(CONFIG, RULES, counter)
    for event in EVENTS:
        pipeline.submit(event)
    return 10**9 - counter.left


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95])
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_a_run_that_dies_at_any_write_and_is_rerun_gives_the_incidents_of_one_clean_run(
    fraction: float, offset: int
) -> None:
    # GIVEN a run that dies just before one of its writes (a signal, an incident commit, or marking an event seen)
    store = _DyingStore(int(_WRITES * fraction) + offset)
    with pytest.raises(_Crash):
        dying = Pipeline(CONFIG, RULES, store)
        for event in EVENTS:
            dying.submit(event)
    # WHEN a new process runs the whole stream again on what the store kept
    store.left = 10**9
    rerun = Pipeline(CONFIG, RULES, store)
    for event in EVENTS:
        rerun.submit(event)
    # THEN the incidents are exactly those of one clean run (none lost, no signal counted twice), and the store
    # lists every one of them as not handled yet, so the rerun's shell runs their playbooks
    assert _incidents(store) == BASELINE
    assert {i.id for i in store.unhandled_incidents()} == {i["id"] for i in BASELINE}


_WRITES = _writes_of_one_run()
