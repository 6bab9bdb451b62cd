"""A SQLite handle answers reads from what it knows (correlators/state/sqlite_known.py) only while no other
connection commits: every commit of another handle on the same file, as another process would make, is seen by
the next read, whatever the handle had read or written before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from correlators.model import EventSource, NormalizedEvent, Severity
from correlators.signals import Incident, Signal
from correlators.state.base import Commit, EntityLinks, IncidentWrite, LinksWrite, Span
from correlators.state.sqlite import SqliteStore

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(days=365)


def _signal(minute: int, event_id: str) -> Signal:
    event = NormalizedEvent(
        event_id=event_id, time=T0 + timedelta(minutes=minute), source=EventSource.CLOUDTRAIL, raw={}
    )
    return Signal(rule="r", title="t", severity=Severity.LOW, standalone=False, event=event)


def _incident(incident_id: str, version: int, title: str) -> Incident:
    return Incident(
        id=incident_id,
        title=title,
        severity=Severity.HIGH,
        first_seen=T0,
        last_seen=T0,
        core_first=T0,
        core_last=T0,
        origin=(T0, "r", f"ev-{incident_id}"),
        version=version,
    )


def _ids(signals: list[Signal]) -> list[str]:
    return [s.event.event_id for s in signals]


@pytest.fixture(params=["batched", "unbatched"])
def handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    """This handle (batched as a replay, or not) and another one on the same file."""
    this = SqliteStore(tmp_path / "state.db", batched=request.param == "batched")
    other = SqliteStore(tmp_path / "state.db")
    yield this, other
    this.close()
    other.close()


def test_a_window_read_before_sees_signals_another_handle_adds_and_drops(
    handles: tuple[SqliteStore, SqliteStore],
) -> None:
    this, other = handles
    this.put_signal(_signal(1, "mine"), ["p"], FAR)
    assert _ids(this.signals("p", T0, FAR)) == ["mine"]
    this.sync()
    other.put_signal(_signal(2, "theirs"), ["p", "q"], T0 + timedelta(minutes=3))
    assert _ids(this.signals("p", T0, FAR)) == ["mine", "theirs"]
    assert _ids(this.signals("p", T0, FAR, newest_first=True, limit=1)) == ["theirs"]
    this.put_signal(_signal(4, "mine later"), ["p"], FAR)  # known again: its own writes keep the window
    assert _ids(this.signals("p", T0, FAR)) == ["mine", "theirs", "mine later"]
    this.sync()
    assert other.expire_signals(T0 + timedelta(minutes=5)) == 1
    assert _ids(this.signals("p", T0, FAR)) == ["mine", "mine later"]
    assert this.signals("q", T0, FAR) == []


def test_incidents_links_and_members_another_handle_commits_are_seen_and_checked(
    handles: tuple[SqliteStore, SqliteStore],
) -> None:
    this, other = handles
    # This handle has read them all while they did not exist.
    assert this.get_incident("inc") is None
    assert this.get_links(["principal|p"])["principal|p"].version == 0
    assert this.members(["s1"]) == {}
    assert this.get_meta("watermark") is None
    this.sync()
    links = EntityLinks("principal|p", 1, {"inc": Span(T0, T0)})
    assert other.commit(
        Commit(
            incidents=[IncidentWrite(_incident("inc", 1, "theirs"), 0)],
            links=[LinksWrite(links, 0)],
            members={"s1": "inc"},
        )
    )
    other.set_meta("watermark", T0.isoformat())
    read = this.get_incident("inc")
    assert read is not None and (read.version, read.title) == (1, "theirs")
    assert this.get_links(["principal|p"])["principal|p"] == links
    assert this.members(["s1", "s2"]) == {"s1": "inc"}
    assert this.get_meta("watermark") == T0.isoformat()
    # A commit on what this handle read before the other's commit loses, on every condition.
    assert not this.commit(Commit(incidents=[IncidentWrite(_incident("inc", 1, "mine"), 0)]))
    assert not this.commit(Commit(links=[LinksWrite(EntityLinks("principal|p", 1), 0)]))
    assert not this.commit(Commit(members={"s1": "other-incident"}))


def test_a_commit_checks_what_another_handle_committed_after_this_one_read_it(
    handles: tuple[SqliteStore, SqliteStore],
) -> None:
    this, other = handles
    assert this.commit(Commit(incidents=[IncidentWrite(_incident("inc", 1, "v1"), 0)]))
    this.sync()
    mine = this.get_incident("inc")
    assert mine is not None
    assert other.commit(Commit(incidents=[IncidentWrite(_incident("inc", 2, "theirs"), 1)], members={"s": "inc"}))
    mine.title, mine.version = "mine", 2  # no read in between: the commit itself looks
    assert not this.commit(Commit(incidents=[IncidentWrite(mine, 1)]))
    read = this.get_incident("inc")
    assert read is not None and (read.version, read.title) == (2, "theirs")


def test_links_handed_out_are_copies(handles: tuple[SqliteStore, SqliteStore]) -> None:
    this, _ = handles
    read = this.get_links(["principal|p"])["principal|p"]
    read.version = 7
    read.incidents["inc"] = Span(T0, T0)
    assert this.get_links(["principal|p"])["principal|p"] == EntityLinks("principal|p")
