"""Two processes replaying into one SQLite state file at once (a SOC's laptop running two `cordon replay`s, or a
replay beside a test run). The SQLite store answers reads from what its connection already knows until another
connection commits (PRAGMA data_version), and holds a batch's writes until it commits: this is where a stale
answer would show.

First test: each process shuffled, each delivering every event, both at the same time, without housekeeping in
between: the incidents are exactly those of one sorted pass.

Second test: the watermark is the state's, not a process's. A process whose stream is ahead expires signals and
forgets seen marks by its watermark; one still in the past used to go on by its own, neither counting its events
late nor refusing those beyond the state's horizon, so redeliveries whose seen marks were forgotten were processed
again and its incidents changed silently. Now every process raises the state's watermark to its own and takes the
result at each housekeeping, before it expires anything (`StateStore.raise_watermark`, atomic). What is promised,
and asserted: the file ends with the latest event time of the stream as its watermark; from the housekeeping at
which the process behind adopts it, every record it takes is refused as beyond the horizon (an event older than
the watermark less the retention), or is a duplicate of what the other processed, or is processed and counted
late. What remains: between two housekeepings (500 events in `cordon replay`; 25 here) a process goes by the
watermark it knew, so the records it takes in that window (asserted on nothing here) can still be processed by an
older watermark than the state's; and events within `correlation.lateness` of the watermark are the only ones
whose incidents are exact whatever the order (a shuffle of this 3.5-day fixture makes most events later than
that, so even ONE process that runs housekeeping between shuffled events differs from the sorted pass).

The third test is a bug found here and fixed: a process opening a new state file while another set it up failed
with "database is locked".
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import pytest

from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.normalize import normalize
from correlators.pipeline import Pipeline
from correlators.state import SqliteStore
from tests.processes import SPAWN, exit_codes
from tests.unit.test_delivery_order import BASELINE, _incidents
from tests.unit.test_event_time_order import CONFIG, EVENTS, LATENESS, REPO, RULES


def _replay_shuffled(path: str, batched: bool, seed: int, start: Barrier) -> None:
    arrivals = list(EVENTS)
    random.Random(seed).shuffle(arrivals)
    store = SqliteStore(path, batched=batched)
    pipeline = Pipeline(CONFIG, RULES, store)
    start.wait(timeout=120)
    for event in arrivals:
        pipeline.submit(event)  # under 500 events: no housekeeping before the end
    store.sync()
    store.close()


def _two_processes(tmp_path: Path, batched: bool) -> list[dict[str, object]]:
    path = str(tmp_path / "state.db")
    start = SPAWN.Barrier(2)
    runs = [(_replay_shuffled, (path, batched, seed, start)) for seed in (1, 2)]
    assert exit_codes(runs, timeout=600) == [0, 0]
    store = SqliteStore(path)
    try:
        return _incidents(store)
    finally:
        store.close()


@pytest.mark.parametrize("batched", [False, True], ids=["unbatched", "batched"])
def test_two_processes_on_one_sqlite_file_give_the_incidents_of_the_sorted_pass(tmp_path: Path, batched: bool) -> None:
    # GIVEN one state file and two processes, each with the whole stream in its own order
    # WHEN they run at once
    # THEN the state holds exactly the incidents of one sorted pass
    assert _two_processes(tmp_path, batched) == BASELINE


# --- the shared watermark ---------------------------------------------------------------------------------------------
def _records() -> list[RawRecord]:
    """The records of the events of EVENTS, one per event, oldest first: what `cordon replay` reads."""
    wanted = {(e.source, e.event_id, e.time) for e in EVENTS}
    found: dict[tuple[Any, ...], tuple[datetime, RawRecord]] = {}
    for item in read_inputs([str(REPO / "examples" / "scenarios"), str(REPO / "correlators" / "rules")]):
        if not isinstance(item, RawRecord):
            continue
        try:
            events = normalize(item, CONFIG)
        except EventRejectedError:
            continue
        keys = tuple(sorted((e.source, e.event_id, e.time) for e in events))
        if keys and set(keys) <= wanted:
            found.setdefault(keys, (min(e.time for e in events), item))
    return [item for _, item in sorted(found.values(), key=lambda found: found[0])]


RECORDS = _records()
LATEST = EVENTS[-1].time
NOW = LATEST + timedelta(days=1)  # the fixture's world: no record is ahead of the clock
HOUSEKEEPING_EVERY = 25
PAUSE_AT = 110  # records the process behind takes before it pauses: its next housekeeping is at 125
ADOPTED_AT = 125
# Records the process ahead does not have (the last one it has: its latest time is the stream's). Behind the state's
# horizon, the process behind must refuse them; within it, it takes them, late.
ONLY_BEHIND = set(range(1, len(RECORDS) - 1, 4))


def _pipeline(path: str) -> Pipeline:
    return Pipeline(CONFIG, RULES, SqliteStore(path, batched=True), now=lambda: NOW)


def _housekeep(pipeline: Pipeline, taken: int) -> bool:
    """Housekeeping every HOUSEKEEPING_EVERY records, as the pipeline does every 500 events (the fixture has fewer)."""
    if taken and taken % HOUSEKEEPING_EVERY == 0:
        pipeline._housekeeping()
        return True
    return False


def _outcome(pipeline: Pipeline, record: RawRecord) -> str:
    """What became of a record, as the pipeline's Stats count it."""
    before = replace(pipeline.stats)
    rejection = pipeline.take(record)
    if rejection is not None:
        beyond = "older than the state's horizon" in rejection.reason
        return "refused: beyond the horizon" if beyond else f"refused: {rejection.reason}"
    if pipeline.stats.duplicates > before.duplicates:
        return "duplicate"
    return "late" if pipeline.stats.late > before.late else "timely"


def _replay_ahead(path: str, behind_paused: Event, ahead_done: Event, results: Queue[tuple[str, Any]]) -> None:
    pipeline = _pipeline(path)
    arrivals = [record for n, record in enumerate(RECORDS) if n not in ONLY_BEHIND]
    random.Random(1).shuffle(arrivals)
    behind_paused.wait(timeout=300)
    for taken, record in enumerate(arrivals):
        _housekeep(pipeline, taken)
        pipeline.take(record)
    pipeline.flush()
    pipeline.store.close()
    results.put(("ahead", pipeline.stats))
    ahead_done.set()


def _replay_behind(path: str, behind_paused: Event, ahead_done: Event, results: Queue[tuple[str, Any]]) -> None:
    pipeline = _pipeline(path)
    outcomes: list[str] = []
    watermarks: dict[int, tuple[datetime | None, datetime | None]] = {}  # at each housekeeping: watermark, horizon
    for taken, record in enumerate(RECORDS):
        if taken == PAUSE_AT:
            # Paused between two batches (an open batch holds the file's write lock; its timer commits it anyway),
            # until the other process has replayed its whole stream.
            pipeline.store.sync()
            behind_paused.set()
            ahead_done.wait(timeout=300)
        if _housekeep(pipeline, taken):
            watermarks[taken] = (pipeline.watermark, pipeline.horizon)
        outcomes.append(_outcome(pipeline, record))
    pipeline.flush()
    pipeline.store.close()
    results.put(("behind", (pipeline.stats, outcomes, watermarks)))


def _expected(record: int, time: datetime, horizon: datetime) -> str:
    if time < horizon:
        return "refused: beyond the horizon"
    if record not in ONLY_BEHIND:
        return "duplicate"  # the process ahead took it: its mark is within the horizon, kept
    return "late" if time < LATEST - LATENESS else "timely"


def test_a_process_behind_takes_the_state_watermark_and_refuses_or_counts_late_what_it_is_too_late_for(
    tmp_path: Path,
) -> None:
    # GIVEN one state file and two processes with housekeeping every 25 records: one behind, replaying the records
    # oldest first, pauses after 110 of them while the other replays (shuffled) all but a quarter of them
    path = str(tmp_path / "state.db")
    behind_paused, ahead_done, results = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    runs = [(target, (path, behind_paused, ahead_done, results)) for target in (_replay_behind, _replay_ahead)]
    finished: dict[str, Any] = {}
    # WHEN the one behind goes on once the other has finished
    codes = exit_codes(runs, while_running=lambda: finished.update(results.get(timeout=600) for _ in runs))
    assert codes == [0, 0]
    stats, outcomes, watermarks = finished["behind"]
    # THEN the file's watermark is the latest event time of the stream
    store = SqliteStore(path)
    assert store.watermark() == LATEST
    store.close()
    # AND the process behind went by its own watermark until its first housekeeping after the pause, where it took
    # the state's
    times = [min(e.time for e in normalize(record, CONFIG)) for record in RECORDS]
    assert watermarks[PAUSE_AT - PAUSE_AT % HOUSEKEEPING_EVERY][0] == max(times[:100])
    watermark, horizon = watermarks[ADOPTED_AT]
    assert watermark == LATEST
    # AND from then on each record was refused as beyond the state's horizon, a duplicate of what the other
    # process took, or taken and counted late: never taken as if it were timely
    expected = [_expected(n, times[n], horizon) for n in range(ADOPTED_AT, len(RECORDS))]
    assert outcomes[ADOPTED_AT:] == expected
    counts = {kind: expected.count(kind) for kind in set(expected)}
    assert counts["refused: beyond the horizon"] > 100
    assert counts["duplicate"] > 50
    assert counts["late"] > 20
    assert stats.rejected >= counts["refused: beyond the horizon"]
    assert stats.late >= counts["late"]


def _open_each(paths: list[str], start: Barrier) -> None:
    for path in paths:
        start.wait(timeout=120)  # all processes open the same new file at the same moment
        SqliteStore(path, batched=True).close()


def test_processes_opening_one_new_state_file_at_once_all_open_it(tmp_path: Path) -> None:
    # GIVEN four processes about to open the same state file, which none has created yet (twenty files in turn)
    paths = [str(tmp_path / f"state-{n}.db") for n in range(20)]
    start = SPAWN.Barrier(4)
    # WHEN they open each at the same moment
    codes = exit_codes([(_open_each, (paths, start))] * 4)
    # THEN every one of them opened every file: SQLite's "database is locked" while another process sets a file up
    # is waited out, not reported as a damaged file
    assert codes == [0, 0, 0, 0]
