"""SQLite's batched writes (what `cordon replay` uses): what one transaction holds, what another handle on the same
file sees and when, and what a process killed mid-batch leaves behind.

The state contract (test_state_contract.py) runs SQLite unbatched; these pin the batched store's own promises.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from correlators.model import EventSource, NormalizedEvent, Severity
from correlators.signals import Incident, Signal
from correlators.state.base import Commit, EntityLinks, IncidentWrite, LinksWrite, Span
from correlators.state.sqlite import SqliteStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _incident(incident_id: str, title: str) -> Incident:
    return Incident(
        id=incident_id,
        title=title,
        severity=Severity.HIGH,
        first_seen=T0,
        last_seen=T0,
        core_first=T0,
        core_last=T0,
        origin=(T0, "r", f"ev-{incident_id}"),
    )


def _change(store: SqliteStore, incident: Incident, title: str, *, minutes: int = 0) -> Incident:
    """Commit the incident with a new title (and last signal), one version up; the committed copy."""
    changed = incident.working_copy()
    changed.title = title
    changed.last_seen = T0 + timedelta(minutes=minutes)
    changed.version = incident.version + 1
    assert store.commit(Commit(incidents=[IncidentWrite(changed, incident.version)]))
    return changed


def test_an_incident_changed_many_times_in_a_batch_reads_back_as_its_last_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    other = SqliteStore(path)  # another process's handle, opened before the batch takes the write lock
    store = SqliteStore(path, batched=True)
    incident = _incident("inc-1", "v0")
    for version in range(1, 6):
        incident = _change(store, incident, f"v{version}", minutes=version)
    # The writer reads its open batch: the last commit, by id and in the lists that read documents.
    read = store.get_incident("inc-1")
    assert read is not None and (read.version, read.title) == (5, "v5")
    assert [(i.title, i.version) for i in store.incidents()] == [("v5", 5)]
    assert [i.title for i in store.unhandled_incidents()] == ["v5"]
    # A further commit after those reads is not lost either.
    incident = _change(store, incident, "v6", minutes=6)
    assert other.get_incident("inc-1") is None  # nothing of an open batch is visible outside it
    store.sync()
    seen = other.get_incident("inc-1")
    assert seen is not None and seen == incident
    assert [i.title for i in other.incidents(since=T0 + timedelta(minutes=6))] == ["v6"]
    store.close()
    other.close()


def test_a_stale_commit_in_a_batch_changes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db", batched=True)
    incident = _change(store, _incident("inc-1", "v0"), "v1")
    stale = incident.working_copy()
    _change(store, incident, "v2")
    stale.title, stale.version = "lost", 2
    assert not store.commit(Commit(incidents=[IncidentWrite(stale, 1)]))
    store.close()
    reopened = SqliteStore(tmp_path / "state.db")
    read = reopened.get_incident("inc-1")
    assert read is not None and (read.version, read.title) == (2, "v2")
    reopened.close()


_KILLED_MID_BATCH = """
import os, sys
from datetime import timedelta
sys.path[:0] = {paths!r}
from tests.unit.test_sqlite_batches import T0, _change, _incident, _signal
from correlators.state.sqlite import SqliteStore
store = SqliteStore({path!r}, batched=True)
first = _change(store, _incident("inc-kept", "kept"), "kept")
store.mark_seen("event-kept", T0)
store.sync()
second = _change(store, _incident("inc-lost", "lost"), "lost")
_change(store, first, "kept, then changed", minutes=1)
store.put_signal(_signal(1, "lost"), ["p"], T0 + timedelta(days=1))
store.mark_seen("event-lost", T0)
os._exit(0)  # killed before the batch commits: no close, no sync
"""


def test_a_process_killed_mid_batch_leaves_the_last_committed_batch_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    root = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(_KILLED_MID_BATCH).format(paths=[root], path=str(path))
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root)
    store = SqliteStore(path)
    kept = store.get_incident("inc-kept")
    assert kept is not None and (kept.version, kept.title) == (1, "kept")
    assert store.get_incident("inc-lost") is None
    assert store.seen("event-kept") and not store.seen("event-lost")
    assert [i.title for i in store.incidents()] == ["kept"]
    assert store.signal_count() == 0
    store.close()


def _signal(minute: int, event_id: str) -> Signal:
    event = NormalizedEvent(
        event_id=event_id, time=T0 + timedelta(minutes=minute), source=EventSource.CLOUDTRAIL, raw={"n": minute}
    )
    return Signal(rule="r", title="t", severity=Severity.LOW, standalone=False, event=event)


def test_signals_put_in_a_batch_are_read_counted_and_dropped_before_it_commits(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    other = SqliteStore(path)
    store = SqliteStore(path, batched=True)
    far = T0 + timedelta(days=1)
    assert store.put_signal(_signal(1, "a"), ["p", "q"], far)
    assert store.signals("p", T0, far) != []  # "p" read (and known) before "b" joins it
    assert store.put_signal(_signal(2, "b"), ["p"], T0 + timedelta(minutes=3))
    assert not store.put_signal(_signal(2, "b"), ["p"], far)  # already put, in this batch
    assert store.put_signal(_signal(0, "c"), ["q"], far)
    assert [s.event.event_id for s in store.signals("p", T0, far)] == ["a", "b"]
    assert [s.event.event_id for s in store.signals("q", T0, far)] == ["c", "a"]  # "q" first read now
    assert store.signal_count() == 3
    assert other.signal_count() == 0
    assert store.expire_signals(T0 + timedelta(minutes=4)) == 1
    assert [s.event.event_id for s in store.signals("p", T0, far, newest_first=True)] == ["a"]
    store.sync()
    assert other.signal_count() == 2
    assert [s.event.event_id for s in other.signals("q", T0, far)] == ["c", "a"]
    read = other.signals("p", T0, far)
    assert read == [_signal(1, "a")]
    assert not store.put_signal(_signal(1, "a"), ["p"], far)  # already stored, in an earlier batch
    store.close()
    other.close()


def test_a_batch_reads_its_own_writes_and_others_see_them_all_once_it_commits(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    other = SqliteStore(path)
    store = SqliteStore(path, batched=True)
    links = EntityLinks("principal|p", 1, {"inc-1": Span(T0, T0 + timedelta(minutes=1))})
    created = _incident("inc-1", "new")
    created.version = 1
    assert store.commit(
        Commit(incidents=[IncidentWrite(created, 0)], links=[LinksWrite(links, 0)], members={"s": "inc-1"})
    )
    store.set_meta("watermark", "1")
    store.mark_seen("event-1", T0)
    store.mark_handled("inc-1", 1)  # commits the batch: the shell's step is never held
    store.set_meta("watermark", "2")
    store.mark_seen("event-2", T0 + timedelta(minutes=1))
    store.mark_seen("event-2", T0 + timedelta(minutes=5))  # the first mark stays
    links = EntityLinks("principal|p", 2, {"inc-1": Span(T0, T0 + timedelta(minutes=2))})
    assert store.commit(Commit(links=[LinksWrite(links, 1)], members={"t": "inc-1"}))
    # This batch reads its own writes.
    assert store.get_meta("watermark") == "2"
    assert store.seen("event-2")
    assert store.get_links(["principal|p"])["principal|p"] == links
    assert store.members(["s", "t", "u"]) == {"s": "inc-1", "t": "inc-1"}
    assert not store.commit(Commit(members={"t": "inc-2"}))
    assert store.unhandled_incidents() == []
    # The other handle sees the committed part only...
    assert other.get_meta("watermark") == "1"
    assert other.seen("event-1") and not other.seen("event-2")
    assert other.get_links(["principal|p"])["principal|p"].version == 1
    assert other.members(["s", "t"]) == {"s": "inc-1"}
    assert other.unhandled_incidents() == []
    store.sync()
    # ...and the rest once the batch commits.
    assert other.get_meta("watermark") == "2"
    assert other.seen("event-2")
    assert other.get_links(["principal|p"])["principal|p"] == links
    assert other.members(["s", "t"]) == {"s": "inc-1", "t": "inc-1"}
    assert other.forget_events(T0 + timedelta(minutes=2)) == 2  # both marks kept their first time
    store.close()
    other.close()
