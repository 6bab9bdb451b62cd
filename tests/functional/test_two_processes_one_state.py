"""Two processes replaying into one SQLite state file at once (a SOC's laptop running two `cordon replay`s, or a
replay beside a test run): each shuffled, each delivering every event, both at the same time. The incidents are
those of one sorted pass. The SQLite store answers reads from what its connection already knows until another
connection commits (PRAGMA data_version), and holds a batch's writes until it commits: this is where a stale
answer would show.

Known gap (second test): housekeeping. A process that finishes expires the signals older than ITS latest event
time minus the retention, while the other, whose shuffled stream is still in the past, goes on processing events
whose windows and incidents still need them, and the incidents come out different (more context counted): 2 runs
in 4 differ; with expiry switched off, none in 3 (forgetting seen marks alone changes nothing here). What the core
promises is narrower than this test asks: exact incidents for events within `correlation.lateness` (15 minutes
here) of the watermark; the fixture spans 3.5 days and a shuffle makes most events later than that, so ONE process
that runs housekeeping between shuffled events differs from the sorted pass too (6 seeds in 6, ~460 of 470 events
counted late). The gap is that the watermark is each process's own, not the state's: the slower process neither
counts its events as late nor refuses those beyond the state's horizon, so its incidents change silently. The fix
is a watermark kept in the state (raised by every process before it expires anything, read at each batch); this
test then has to assert that the slower process's events are counted late or refused, not the sorted pass. Without
housekeeping in between (first test) both processes give the sorted pass exactly.

The third test is a bug found here and fixed: a process opening a new state file while another set it up failed
with "database is locked".
"""

from __future__ import annotations

import multiprocessing
import random
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from correlators.pipeline import Pipeline
from correlators.state import SqliteStore
from tests.unit.test_delivery_order import BASELINE, _incidents
from tests.unit.test_event_time_order import CONFIG, EVENTS, RULES


def _replay_shuffled(path: str, batched: bool, seed: int, start: Barrier, housekeeping: bool) -> None:
    arrivals = list(EVENTS)
    random.Random(seed).shuffle(arrivals)
    store = SqliteStore(path, batched=batched)
    pipeline = Pipeline(CONFIG, RULES, store)
    start.wait(timeout=120)
    for event in arrivals:
        pipeline.submit(event)  # under 500 events: no housekeeping before the end
    if housekeeping:
        pipeline.flush()  # expires and forgets by this process's own watermark, the other still running
    else:
        store.sync()
    store.close()


def _two_processes(tmp_path: Path, batched: bool, housekeeping: bool) -> list[dict[str, object]]:
    path = str(tmp_path / "state.db")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=_replay_shuffled, args=(path, batched, seed, start, housekeeping)) for seed in (1, 2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
    assert [worker.exitcode for worker in workers] == [0, 0]
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
    assert _two_processes(tmp_path, batched, housekeeping=False) == BASELINE


@pytest.mark.xfail(
    reason="known gap: one process's housekeeping expires signals by its own watermark while the other still "
    "processes older events that need them, neither counted late nor refused; see the module docstring",
    strict=False,
)
def test_housekeeping_of_one_process_does_not_change_the_incidents_of_another(tmp_path: Path) -> None:
    assert _two_processes(tmp_path, batched=True, housekeeping=True) == BASELINE


def _open_each(paths: list[str], start: Barrier) -> None:
    for path in paths:
        start.wait(timeout=120)  # all processes open the same new file at the same moment
        SqliteStore(path, batched=True).close()


def test_processes_opening_one_new_state_file_at_once_all_open_it(tmp_path: Path) -> None:
    # GIVEN four processes about to open the same state file, which none has created yet (twenty files in turn)
    paths = [str(tmp_path / f"state-{n}.db") for n in range(20)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    workers = [context.Process(target=_open_each, args=(paths, start)) for _ in range(4)]
    # WHEN they open each at the same moment
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    # THEN every one of them opened every file: SQLite's "database is locked" while another process sets a file up
    # is waited out, not reported as a damaged file
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
