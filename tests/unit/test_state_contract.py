"""One contract for every state store (memory, SQLite, DynamoDB on moto in-process): the store is the truth.

Signals by partition and event time; idempotent puts; events seen; incidents created on a condition and changed
only under their version, all of a commit or nothing; links and memberships; live, merged and unhandled
incidents; meta; and threads racing read-modify-commit loops on one store without losing an update.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from correlators.errors import StateError
from correlators.model import Actor, EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.signals import Incident, Signal
from correlators.state import MemoryStore, SqliteStore, StateStore, open_store
from correlators.state.base import Commit, EntityLinks, IncidentWrite, LinksWrite, Span
from correlators.state.dynamodb import DynamoDBStore
from tests.processes import SPAWN, exit_codes
from tests.unit.template_support import load as load_template

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(days=365)
TABLE = "cordon-state"
REGION = "us-east-1"


# --- the stores -----------------------------------------------------------------------------------------------------
def state_table_properties() -> dict[str, Any]:
    """The StateTable of template.yaml: its keys, index and TTL are what the tests create, so they cannot drift."""
    return dict(load_template()["Resources"]["StateTable"]["Properties"])


@contextmanager
def dynamodb_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto table with template.yaml's key schema, index and TTL, and a client with botocore's standard retries
    (what the shell must configure), serialized for moto (see SerializedClient)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    table = state_table_properties()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION, config=Config(retries={"mode": "standard"}))
        client.create_table(
            TableName=TABLE,
            BillingMode=table["BillingMode"],
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
        )
        client.update_time_to_live(TableName=TABLE, TimeToLiveSpecification=table["TimeToLiveSpecification"])
        yield SerializedClient(client)


class SerializedClient:
    """A boto3 client whose calls run one at a time. moto's DynamoDB backend is not thread-safe (a transaction
    deep-copies the table while another thread writes to it: "dictionary changed size during iteration");
    DynamoDB itself runs each request atomically, and so does this wrapper. Requests of different threads still
    interleave freely between each other, which is what the race tests need."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions
        self.meta = client.meta

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return operation(*args, **kwargs)

        return call


# A factory per store kind: each call opens one more handle on the same state (a new SqliteStore on the same
# file, a new DynamoDBStore on the same table), as separate processes or Lambda invocations would.
Opener = Callable[[], StateStore]

STORES = [
    "memory",
    "sqlite",
    "dynamodb",
]


@pytest.fixture(params=STORES)
def open_handle(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Opener]:
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif request.param == "sqlite":
        handles: list[StateStore] = []

        def open_sqlite() -> StateStore:
            handles.append(SqliteStore(tmp_path / "state.db"))
            return handles[-1]

        yield open_sqlite
        for handle in handles:
            handle.close()
    else:
        with dynamodb_table(monkeypatch) as client:
            yield lambda: DynamoDBStore(client, TABLE)


@pytest.fixture
def store(open_handle: Opener) -> StateStore:
    return open_handle()


# --- builders -------------------------------------------------------------------------------------------------------
def _signal(minute: float, event_id: str | None = None, rule: str = "r", raw: dict[str, Any] | None = None) -> Signal:
    event = NormalizedEvent(
        event_id=event_id or f"e{minute}",
        time=T0 + timedelta(minutes=minute),
        source=EventSource.CLOUDTRAIL,
        raw=raw or {},
    )
    return Signal(rule=rule, title="t", severity=Severity.LOW, standalone=False, event=event)


def _incident(incident_id: str, minute: int = 0, last: int | None = None, title: str = "x", **fields: Any) -> Incident:
    first = T0 + timedelta(minutes=minute)
    end = T0 + timedelta(minutes=minute if last is None else last)
    return Incident(
        id=incident_id,
        title=title,
        severity=Severity.HIGH,
        first_seen=first,
        last_seen=end,
        core_first=first,
        core_last=end,
        origin=(first, "r", f"ev-{incident_id}"),
        **fields,
    )


def _create(store: StateStore, incident: Incident, **members: str) -> bool:
    incident.version = 1
    return store.commit(Commit(incidents=[IncidentWrite(incident, 0)], members=dict(members)))


def _ids(signals: list[Signal]) -> list[str]:
    return [s.event.event_id for s in signals]


# --- signals ----------------------------------------------------------------------------------------------------------
def test_signals_are_read_back_by_partition_and_time_range(store: StateStore) -> None:
    # GIVEN signals in two partitions, put out of order
    for minute in (30, 0, 10, 5):
        store.put_signal(_signal(minute), ["entity|a"], FAR)
    store.put_signal(_signal(7, "other"), ["entity|b"], FAR)
    # WHEN one partition's window is read
    found = store.signals("entity|a", T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    # THEN only its signals inside the bounds come back, oldest first
    assert _ids(found) == ["e5", "e10"]
    assert _ids(store.signals("entity|b", T0, FAR)) == ["other"]
    assert store.signals("entity|none", T0, FAR) == []


def test_a_window_reads_newest_first_and_stops_at_a_limit(store: StateStore) -> None:
    # GIVEN five signals in a partition, two of them at one instant (ordered by signal id there)
    for minute, event_id in ((0, "a"), (1, "b"), (2, "c"), (2, "d"), (3, "e")):
        store.put_signal(_signal(minute, event_id), ["p"], FAR)
    end = T0 + timedelta(minutes=2)
    # THEN a bounded read gives the oldest or the newest few inside the bounds, in the order asked for
    assert _ids(store.signals("p", T0, end, limit=2)) == ["a", "b"]
    assert _ids(store.signals("p", T0, end, newest_first=True, limit=2)) == ["d", "c"]
    assert _ids(store.signals("p", T0, FAR, newest_first=True)) == ["e", "d", "c", "b", "a"]
    assert store.signals("p", T0, FAR, newest_first=True, limit=0) == []


def test_window_bounds_are_inclusive_to_the_microsecond(store: StateStore) -> None:
    tick = timedelta(microseconds=1)
    start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    for name, at in {"before": start - tick, "start": start, "end": end, "after": end + tick}.items():
        event = NormalizedEvent(event_id=name, time=at, source=EventSource.CLOUDTRAIL, raw={})
        store.put_signal(Signal(rule="r", title="t", severity=Severity.LOW, standalone=False, event=event), ["p"], FAR)
    assert _ids(store.signals("p", start, end)) == ["start", "end"]
    assert _ids(store.signals("p", start, start)) == ["start"]


def test_signals_at_one_time_come_back_in_signal_id_order(store: StateStore) -> None:
    for rule in ("zeta", "alpha", "mid"):
        store.put_signal(_signal(3, "same", rule=rule), ["p"], FAR)
    assert [s.rule for s in store.signals("p", T0, FAR)] == ["alpha", "mid", "zeta"]


def test_a_signal_reads_back_equal_to_what_was_put(store: StateStore) -> None:
    event = NormalizedEvent(
        event_id="ev-1",
        time=T0,
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        action="s3:GetObject",
        actor=Actor(principal="arn:aws:iam::111122223333:user/ml-contractor", access_key="AKIAEXAMPLE"),
        resources=[Resource(type=EntityType.OBJECT, id="s3://train/a.csv", asset_class="training_data")],
        raw={"eventName": "GetObject", "requestParameters": {"bucketName": "train", "key": "a.csv"}, "n": [1, 2.5]},
        origin="trail.json:3",
    )
    signal = Signal(rule="r", title="t", severity=Severity.MEDIUM, standalone=True, event=event)
    store.put_signal(signal, ["principal|x"], FAR)
    [back] = store.signals("principal|x", T0, T0)
    assert back == signal
    assert back.id == signal.id


def test_a_signal_is_stored_once_under_each_partition(store: StateStore) -> None:
    assert store.put_signal(_signal(1), ["p", "q", "p"], FAR) is True
    assert store.put_signal(_signal(1), ["p", "q"], FAR) is False
    assert store.signal_count() == 1
    assert _ids(store.signals("p", T0, FAR)) == ["e1"]
    assert _ids(store.signals("q", T0, FAR)) == ["e1"]


def test_the_same_event_under_another_rule_is_another_signal(store: StateStore) -> None:
    assert store.put_signal(_signal(1, "ev", rule="a"), ["p"], FAR) is True
    assert store.put_signal(_signal(1, "ev", rule="b"), ["p"], FAR) is True
    assert store.signal_count() == 2


def test_expiry_drops_signals_past_their_own_expiry_from_every_partition(store: StateStore) -> None:
    # GIVEN an early signal kept briefly and a later one kept long (its rule feeds a longer correlation)
    store.put_signal(_signal(0), ["p", "q"], T0 + timedelta(minutes=5))
    store.put_signal(_signal(20), ["p"], FAR)
    # WHEN event time moves past the first one's expiry
    expired = store.expire_signals(T0 + timedelta(minutes=10))
    # THEN a store that expires nothing by itself drops it everywhere; one with TTL leaves it to the TTL
    if store.expires_by_itself:
        assert expired == 0
        assert _ids(store.signals("p", T0, FAR)) == ["e0", "e20"]
        return
    assert expired == 1
    assert store.signals("q", T0, T0 + timedelta(hours=1)) == []
    assert _ids(store.signals("p", T0, T0 + timedelta(hours=1))) == ["e20"]


def test_eviction_drops_the_stalest_first(store: StateStore) -> None:
    for minute in (3, 1, 2, 0):
        store.put_signal(_signal(minute), ["p"], FAR)
    evicted = store.evict_stalest(keep=2)
    if store.expires_by_itself:
        assert evicted == 0
        return
    assert evicted == 2
    assert _ids(store.signals("p", T0, T0 + timedelta(hours=1))) == ["e2", "e3"]


# --- events seen ----------------------------------------------------------------------------------------------------
def test_an_event_is_seen_once_marked(store: StateStore) -> None:
    assert store.seen("k") is False
    store.mark_seen("k", T0)
    store.mark_seen("k", T0 + timedelta(minutes=1))
    assert store.seen("k") is True
    assert store.seen("other") is False


def test_an_event_is_marked_new_once(store: StateStore) -> None:
    # A call that raises nothing is looked up and marked in one step: new the first time only, however marked.
    assert store.mark_new("k", T0) is True
    assert store.mark_new("k", T0 + timedelta(minutes=1)) is False
    assert store.seen("k") is True
    store.mark_seen("marked", T0)
    assert store.mark_new("marked", T0) is False
    assert store.seen("other") is False


@pytest.mark.parametrize("handles", ["one handle", "a handle per thread"])
def test_threads_marking_one_event_new_count_it_once(open_handle: Opener, handles: str) -> None:
    first = open_handle()
    stores = [first if handles == "one handle" else open_handle() for _ in range(THREADS)]
    new: list[int] = []

    def mark(thread: int) -> None:
        if stores[thread].mark_new("redelivered", T0):
            new.append(thread)

    _run_threads(mark)
    if handles == "a handle per thread" and isinstance(first, SqliteStore):
        # Each SQLite handle keeps its marks in its open batch (BATCH_EVENTS) until it commits: another handle does
        # not see them before, so each may count the event once (as two `cordon replay` processes on one file would).
        assert 1 <= len(new) <= THREADS
        return
    assert len(new) == 1  # memory under its lock; DynamoDB by one conditional put


def test_forgetting_events_before_a_time(store: StateStore) -> None:
    store.mark_seen("old", T0)
    store.mark_seen("new", T0 + timedelta(minutes=5))
    forgotten = store.forget_events(T0 + timedelta(minutes=1))  # the memory store forgets whole minutes
    if store.expires_by_itself:
        assert forgotten == 0  # the seen items' TTL does it
        assert store.seen("old") is True
        return
    assert forgotten == 1
    assert store.seen("old") is False
    assert store.seen("new") is True


# --- commits ----------------------------------------------------------------------------------------------------------
def test_an_empty_commit_applies(store: StateStore) -> None:
    assert store.commit(Commit()) is True


def test_an_incident_is_created_once(store: StateStore) -> None:
    # GIVEN two writers that each create the incident of one deterministic id
    first, second = _incident("inc-1"), _incident("inc-1", title="second writer")
    # WHEN both commit a create (expected version 0)
    won = [_create(store, first, **{"s1": "inc-1"}), _create(store, second, **{"s2": "inc-1"})]
    # THEN only the first applies, and nothing of the second's commit is there
    assert won == [True, False]
    stored = store.get_incident("inc-1")
    assert stored is not None
    assert (stored.title, stored.version) == ("x", 1)
    assert store.members(["s1", "s2"]) == {"s1": "inc-1"}


def test_an_incident_round_trips_with_its_version(store: StateStore) -> None:
    incident = _incident("inc-1", links=["principal|a"], signal_count=3, rule_counts={"r": 3})
    incident.raise_by("rule-a", Severity.CRITICAL, "Stolen credentials")
    assert _create(store, incident)
    assert store.get_incident("inc-1") == incident
    assert store.get_incident("missing") is None


def test_a_stale_incident_writer_loses_and_nothing_of_its_commit_applies(store: StateStore) -> None:
    # GIVEN an incident at version 1, read by two writers
    assert _create(store, _incident("inc-1"))
    ahead, stale = store.get_incident("inc-1"), store.get_incident("inc-1")
    assert ahead is not None and stale is not None
    # WHEN one commits version 2, and the other then commits its own version 2 with links and members
    ahead.title, ahead.version = "ahead", 2
    assert store.commit(Commit(incidents=[IncidentWrite(ahead, 1)], members={"s-ahead": "inc-1"}))
    stale.title, stale.version = "stale", 2
    links = EntityLinks("principal|a", 1, {"inc-1": Span(T0, T0)})
    applied = store.commit(
        Commit(
            incidents=[IncidentWrite(stale, 1), IncidentWrite(_incident("inc-2", version=1), 0)],
            links=[LinksWrite(links, 0)],
            members={"s-stale": "inc-1"},
        )
    )
    # THEN the stale commit is refused whole: no title, no new incident, no links, no member
    assert applied is False
    current = store.get_incident("inc-1")
    assert current is not None
    assert (current.title, current.version) == ("ahead", 2)
    assert store.get_incident("inc-2") is None
    assert store.get_links(["principal|a"])["principal|a"].version == 0
    assert store.members(["s-ahead", "s-stale"]) == {"s-ahead": "inc-1"}


def test_a_signal_counted_in_one_incident_cannot_be_counted_in_another(store: StateStore) -> None:
    # GIVEN two incidents, and a signal counted in the first
    assert _create(store, _incident("inc-1"), s1="inc-1")
    assert _create(store, _incident("inc-2"))
    other = store.get_incident("inc-2")
    assert other is not None
    # WHEN a writer that read no membership counts the same signal in the second
    other.version = 2
    applied = store.commit(Commit(incidents=[IncidentWrite(other, 1)], members={"s1": "inc-2", "s2": "inc-2"}))
    # THEN the whole commit is refused: a signal counts once, in one incident
    assert applied is False
    assert store.members(["s1", "s2"]) == {"s1": "inc-1"}
    assert store.get_incident("inc-2").version == 1  # type: ignore[union-attr]


def test_a_stale_links_writer_loses_and_nothing_of_its_commit_applies(store: StateStore) -> None:
    # GIVEN the links of one entity at version 1
    first = EntityLinks("principal|a", 1, {"inc-1": Span(T0, T0)})
    assert store.commit(Commit(links=[LinksWrite(first, 0)]))
    # WHEN a writer that read it before it existed opens another incident for the same entity
    rival = EntityLinks("principal|a", 1, {"inc-2": Span(T0, T0)})
    applied = store.commit(
        Commit(incidents=[IncidentWrite(_incident("inc-2", version=1), 0)], links=[LinksWrite(rival, 0)])
    )
    # THEN it loses whole: the links are the first writer's, and its incident was not created
    assert applied is False
    assert store.get_links(["principal|a"])["principal|a"].incidents == {"inc-1": Span(T0, T0)}
    assert store.get_incident("inc-2") is None
    # AND a writer at the current version gets through
    joined = EntityLinks("principal|a", 2, {"inc-1": Span(T0, T0 + timedelta(minutes=3))})
    assert store.commit(Commit(links=[LinksWrite(joined, 1)]))
    assert store.get_links(["principal|a"])["principal|a"] == joined


def test_links_read_back_with_their_spans_and_unknown_entities_are_empty(store: StateStore) -> None:
    spans = {"inc-1": Span(T0, T0 + timedelta(minutes=1)), "inc-2": Span(T0 + timedelta(seconds=1.5), FAR)}
    assert store.commit(Commit(links=[LinksWrite(EntityLinks("principal|a", 1, dict(spans)), 0)]))
    found = store.get_links(["principal|a", "ip|10.0.0.1", "principal|a"])
    assert found == {
        "principal|a": EntityLinks("principal|a", 1, spans),
        "ip|10.0.0.1": EntityLinks("ip|10.0.0.1", 0, {}),
    }


def test_members_say_which_incident_counted_each_signal(store: StateStore) -> None:
    assert _create(store, _incident("inc-1"), **{"s1": "inc-1", "s2": "inc-1"})
    assert _create(store, _incident("inc-2"), **{"s3": "inc-2"})
    assert store.members(["s1", "s3", "unknown", "s1"]) == {"s1": "inc-1", "s3": "inc-2"}
    assert store.members([]) == {}


def test_many_members_are_looked_up_at_once(store: StateStore) -> None:
    # More than one BatchGetItem (100 keys) and one transaction (100 items) take.
    for chunk in range(3):
        members = {f"s{chunk}-{n}": f"inc-{chunk}" for n in range(90)}
        assert store.commit(Commit(members=members))
    wanted = [f"s{chunk}-{n}" for chunk in range(3) for n in range(90)]
    found = store.members(wanted)
    assert len(found) == 270
    assert found["s2-89"] == "inc-2"


# --- listing ----------------------------------------------------------------------------------------------------------
def test_live_incidents_oldest_first_and_since_their_last_signal(store: StateStore) -> None:
    # GIVEN three incidents created out of order
    assert _create(store, _incident("inc-b", minute=10, last=40))
    assert _create(store, _incident("inc-a", minute=0, last=5))
    assert _create(store, _incident("inc-c", minute=20, last=20))
    # THEN all come back by first signal; `since` keeps those whose last signal is at or after it
    assert [i.id for i in store.incidents()] == ["inc-a", "inc-b", "inc-c"]
    assert [i.id for i in store.incidents(since=T0 + timedelta(minutes=20))] == ["inc-b", "inc-c"]
    assert [i.id for i in store.incidents(since=T0 + timedelta(minutes=41))] == []


def test_a_merged_incident_is_not_live_but_still_readable(store: StateStore) -> None:
    assert _create(store, _incident("inc-1"))
    assert _create(store, _incident("inc-2", minute=1))
    merged = store.get_incident("inc-2")
    assert merged is not None
    merged.merged_into, merged.version = "inc-1", 2
    assert store.commit(Commit(incidents=[IncidentWrite(merged, 1)]))
    assert [i.id for i in store.incidents()] == ["inc-1"]
    assert [i.id for i in store.unhandled_incidents()] == ["inc-1"]
    back = store.get_incident("inc-2")
    assert back is not None and back.merged_into == "inc-1"


def test_unhandled_incidents_and_the_handled_version_never_moving_back(store: StateStore) -> None:
    # GIVEN a new incident: a shell has not handled it
    assert _create(store, _incident("inc-1"))
    assert _create(store, _incident("inc-2", minute=1))
    assert [i.id for i in store.unhandled_incidents()] == ["inc-1", "inc-2"]
    # WHEN its version 1 is handled, it is not any more
    store.mark_handled("inc-1", 1)
    assert [i.id for i in store.unhandled_incidents()] == ["inc-2"]
    # WHEN it changes, it is again
    changed = store.get_incident("inc-1")
    assert changed is not None
    changed.version = 2
    assert store.commit(Commit(incidents=[IncidentWrite(changed, 1)]))
    assert [i.id for i in store.unhandled_incidents()] == ["inc-1", "inc-2"]
    # THEN handling an older version changes nothing, and a later handled version is not undone by an older one
    store.mark_handled("inc-1", 1)
    assert [i.id for i in store.unhandled_incidents()] == ["inc-1", "inc-2"]
    store.mark_handled("inc-1", 2)
    store.mark_handled("inc-1", 1)
    assert [i.id for i in store.unhandled_incidents()] == ["inc-2"]
    # AND handled incidents are still live
    assert [i.id for i in store.incidents()] == ["inc-1", "inc-2"]


def test_an_incident_handled_past_its_version_stays_handled_after_a_stale_mark(store: StateStore) -> None:
    assert _create(store, _incident("inc-1"))
    store.mark_handled("inc-1", 5)
    store.mark_handled("inc-1", 2)
    assert store.unhandled_incidents() == []


# --- meta -----------------------------------------------------------------------------------------------------------
def test_meta_values_are_kept_and_replaced(store: StateStore) -> None:
    assert store.get_meta("max_event_time") is None
    store.set_meta("max_event_time", T0.isoformat())
    store.set_meta("other", "1")
    store.set_meta("max_event_time", FAR.isoformat())
    assert store.get_meta("max_event_time") == FAR.isoformat()
    assert store.get_meta("other") == "1"


# --- the watermark ----------------------------------------------------------------------------------------------------
def test_the_watermark_is_raised_never_lowered_and_reads_back_as_the_later_time(store: StateStore) -> None:
    # GIVEN a state with no watermark yet
    assert store.watermark() is None
    # WHEN it is raised, then "raised" to earlier times and to later ones a microsecond apart
    assert store.raise_watermark(T0) == T0
    assert store.raise_watermark(T0 - timedelta(hours=1)) == T0
    just_after = T0 + timedelta(microseconds=250)  # "...:00.000250+00:00" sorts after "...:00+00:00", as it must
    assert store.raise_watermark(just_after) == just_after
    assert store.raise_watermark(T0) == just_after
    second_end = T0 + timedelta(seconds=1, microseconds=-1)
    assert store.raise_watermark(second_end) == second_end
    assert store.raise_watermark(T0 + timedelta(microseconds=999_998)) == second_end
    # THEN it holds the latest, in UTC, under the key and text states were written with before
    east = timezone(timedelta(hours=2))
    assert store.raise_watermark((T0 + timedelta(minutes=5)).astimezone(east)) == T0 + timedelta(minutes=5)
    assert store.watermark() == T0 + timedelta(minutes=5)
    assert store.get_meta("max_event_time") == "2026-11-20T09:05:00+00:00"


def test_a_watermark_written_before_is_read_and_raised_as_a_time(store: StateStore) -> None:
    # GIVEN the watermark as an earlier Cordon wrote it (`set_meta` of an isoformat string)
    store.set_meta("max_event_time", T0.isoformat())
    assert store.watermark() == T0
    assert store.raise_watermark(T0 - timedelta(minutes=1)) == T0
    # AND one in another offset: later than the new text as text, earlier as a time
    store.set_meta("max_event_time", T0.astimezone(timezone(timedelta(hours=2))).isoformat())
    # WHEN it is raised THEN it is compared as a time
    assert store.raise_watermark(T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)
    assert store.watermark() == T0 + timedelta(hours=1)


# --- concurrency ------------------------------------------------------------------------------------------------------
THREADS = 8
BUMPS = 10


def _bump(store: StateStore, thread: int, bump: int) -> int:
    """One read-modify-commit of the shared incident and its link item, retried until it applies; how many
    attempts lost."""
    lost = 0
    while True:
        incident = store.get_incident("inc-shared")
        links = store.get_links(["principal|shared"])["principal|shared"]
        assert incident is not None
        expected, expected_links = incident.version, links.version
        time.sleep(0.0005)  # let the other threads read the same versions: the race is the point
        incident.version += 1
        incident.signal_count += 1
        links.version += 1
        links.incidents["inc-shared"] = Span(T0, T0 + timedelta(seconds=incident.signal_count))
        commit = Commit(
            incidents=[IncidentWrite(incident, expected)],
            links=[LinksWrite(links, expected_links)],
            members={f"s-{thread}-{bump}": "inc-shared"},
        )
        if store.commit(commit):
            return lost
        lost += 1


def _run_threads(target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(thread: int) -> None:
        try:
            start.wait()
            target(thread)
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)


@pytest.mark.parametrize("handles", ["one handle", "a handle per thread"])
def test_threads_racing_read_modify_commit_lose_no_update(open_handle: Opener, handles: str) -> None:
    # GIVEN an incident and its link item at version 1
    first = open_handle()
    assert _create(first, _incident("inc-shared"))
    assert first.commit(Commit(links=[LinksWrite(EntityLinks("principal|shared", 1), 0)]))
    stores = [first if handles == "one handle" else open_handle() for _ in range(THREADS)]
    losses = [0] * THREADS

    # WHEN 8 threads each bump both BUMPS times through retry loops
    def bump_all(thread: int) -> None:
        for bump in range(BUMPS):
            losses[thread] += _bump(stores[thread], thread, bump)

    _run_threads(bump_all)
    # THEN every bump is there exactly once: versions, the counted signals, the members
    assert sum(losses) > 0  # the threads did race
    final = first.get_incident("inc-shared")
    assert final is not None
    assert final.version == 1 + THREADS * BUMPS
    assert final.signal_count == THREADS * BUMPS
    assert first.get_links(["principal|shared"])["principal|shared"].version == 1 + THREADS * BUMPS
    members = first.members(f"s-{t}-{b}" for t in range(THREADS) for b in range(BUMPS))
    assert len(members) == THREADS * BUMPS


def test_threads_creating_one_incident_make_exactly_one(open_handle: Opener) -> None:
    stores = [open_handle() for _ in range(THREADS)]
    wins: list[int] = []

    def create(thread: int) -> None:
        if _create(stores[thread], _incident("inc-race", title=f"writer {thread}"), **{f"s{thread}": "inc-race"}):
            wins.append(thread)

    _run_threads(create)
    assert len(wins) == 1
    stored = stores[0].get_incident("inc-race")
    assert stored is not None and stored.title == f"writer {wins[0]}"
    assert stores[0].members(f"s{n}" for n in range(THREADS)) == {f"s{wins[0]}": "inc-race"}


@pytest.mark.parametrize("handles", ["one handle", "a handle per thread"])
def test_threads_raising_the_watermark_at_once_end_at_the_latest(open_handle: Opener, handles: str) -> None:
    # GIVEN 8 threads, each with 15 times of its own in a shuffled order (seeded)
    first = open_handle()
    stores = [first if handles == "one handle" else open_handle() for _ in range(THREADS)]
    times = [T0 + timedelta(seconds=n, microseconds=n % 3 * 500) for n in range(THREADS * 15)]
    random.Random(7).shuffle(times)
    returned: list[list[datetime]] = [[] for _ in range(THREADS)]

    # WHEN they raise the watermark to each at once
    def raise_all(thread: int) -> None:
        for moment in times[thread::THREADS]:
            returned[thread].append(stores[thread].raise_watermark(moment))

    _run_threads(raise_all)
    # THEN it ends at the latest of all; each raise answered its own time or a later one, and never a value below
    # one answered before it (a raise never lowered what another made)
    assert first.watermark() == max(times)
    for thread, answers in enumerate(returned):
        assert all(answer >= moment for answer, moment in zip(answers, times[thread::THREADS], strict=True))
        assert answers == sorted(answers)


# --- store-specific ---------------------------------------------------------------------------------------------------
def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    first.put_signal(_signal(1), ["p"], FAR)
    first.set_meta("max_event_time", T0.isoformat())
    assert _create(first, _incident("inc-1"), **{"s1": "inc-1"})
    first.close()
    second = open_store(f"sqlite:///{path}")
    assert second.signal_count() == 1
    assert second.get_meta("max_event_time") == T0.isoformat()
    assert second.members(["s1"]) == {"s1": "inc-1"}
    assert [i.id for i in second.unhandled_incidents()] == ["inc-1"]


def test_a_watermark_raised_in_a_batch_reaches_other_connections_when_the_batch_commits(tmp_path: Path) -> None:
    # GIVEN a batched connection and another one on the same file
    path = tmp_path / "state.db"
    batched, other = SqliteStore(path, batched=True), SqliteStore(path)
    assert other.raise_watermark(T0) == T0
    # WHEN the batched one raises it, inside its open batch
    assert batched.raise_watermark(T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)
    assert batched.watermark() == T0 + timedelta(hours=1)
    # THEN the other sees the raise once the batch commits, not before, and cannot lower it afterwards
    assert other.watermark() == T0
    batched.sync()
    assert other.watermark() == T0 + timedelta(hours=1)
    assert other.raise_watermark(T0 + timedelta(minutes=30)) == T0 + timedelta(hours=1)
    # AND the batched one, in its next batch, answers what the other raised since
    assert other.raise_watermark(T0 + timedelta(hours=2)) == T0 + timedelta(hours=2)
    assert batched.raise_watermark(T0 + timedelta(hours=1, minutes=30)) == T0 + timedelta(hours=2)
    batched.close()
    other.close()


def _raise_from_a_process(
    path: str, times: list[datetime], start: Barrier, answers: Queue[tuple[int, list[datetime]]], worker: int
) -> None:
    store = SqliteStore(path, batched=True)
    start.wait(timeout=120)
    answered = []
    for n, moment in enumerate(times, start=1):
        answered.append(store.raise_watermark(moment))
        assert answered[-1] >= moment
        if n % 10 == 0:
            store.sync()  # a batch each 10 raises: the other process's raises come in between
    answers.put((worker, answered))
    store.close()


def test_two_processes_raising_the_watermark_of_one_file_at_once_end_at_the_latest(tmp_path: Path) -> None:
    # GIVEN two processes with batched connections to one file, each with 200 times of its own, shuffled (seeded)
    times = [T0 + timedelta(seconds=n) for n in range(400)]
    random.Random(3).shuffle(times)
    start, answers = SPAWN.Barrier(2), SPAWN.Queue()
    parts = [times[0::2], times[1::2]]
    runs = [
        (_raise_from_a_process, (str(tmp_path / "state.db"), part, start, answers, n)) for n, part in enumerate(parts)
    ]
    returned: dict[int, list[datetime]] = {}
    # WHEN they raise the watermark to each of them at once
    codes = exit_codes(runs, while_running=lambda: returned.update(answers.get(timeout=300) for _ in runs))
    assert codes == [0, 0]
    # THEN the file holds the latest of all; each raise was answered its own time or a later one, and neither process
    # was ever answered a value below an earlier answer
    store = SqliteStore(tmp_path / "state.db")
    assert store.watermark() == max(times)
    store.close()
    for answered in returned.values():
        assert answered == sorted(answered)
    # AND the watermark is the file's, not a process's: some raise was answered a time only the other one had
    assert set(returned[0]) & set(parts[1]) or set(returned[1]) & set(parts[0])


def test_a_file_that_is_not_a_state_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a Cordon state database"):
        SqliteStore(path)


def test_unknown_store_url_is_refused() -> None:
    with pytest.raises(StateError, match="unknown state store 'redis://x'"):
        open_store("redis://x")
