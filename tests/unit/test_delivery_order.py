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
from tests.unit.test_event_time_order import CONFIG, EVENTS, RULES

Incidents = list[dict[str, Any]]


def _incidents(store: StateStore) -> Incidents:
    return [incident_json(i) for i in store.incidents()]


def _sorted_pass() -> Incidents:
    pipeline = Pipeline(CONFIG, RULES, MemoryStore())
    for event in EVENTS:
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
    return MemoryStore() if kind == "memory" else SqliteStore(tmp_path / "state.db")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("seed", range(8))
def test_eight_threads_sharing_one_store_give_the_incidents_of_the_sorted_pass(
    kind: str, seed: int, tmp_path: Path
) -> None:
    # GIVEN a shuffled stream delivered twice, dealt to 8 workers, each with its own pipeline on one store
    store = _store(kind, tmp_path)
    arrivals = EVENTS * 2
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
    assert _incidents(store) == BASELINE
