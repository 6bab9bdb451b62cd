"""The DynamoDB state store beyond the contract: bounded items as moto stores them, trimming of oversized
signals, the IAM actions it calls, its transaction outcomes, capacity units, and opening it from a URL."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from cordon.stores import open_dynamodb_store, open_state, parse_dynamodb_url
from correlators.config import Config
from correlators.errors import StateError
from correlators.ingest import RawRecord, read_inputs
from correlators.model import Actor, EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.normalize import normalize
from correlators.signals import SIGNALS_KEPT_AT_EACH_END, Incident, Signal
from correlators.state import MemoryStore, SqliteStore
from correlators.state.base import Commit, EntityLinks, IncidentWrite, LinksWrite, Span
from correlators.state.dynamodb import DynamoDBStore
from tests.unit.test_state_contract import REGION, TABLE, dynamodb_table, load_template

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "examples" / "scenarios"
LIMIT = 64_000  # no stored item may be bigger (DynamoDB's own limit is 400 KB)
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(days=365)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with dynamodb_table(monkeypatch) as dynamodb:
        yield dynamodb


@pytest.fixture
def store(client: Any) -> DynamoDBStore:
    return DynamoDBStore(client, TABLE)


def stored_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it, from the item as moto returns it: UTF-8 names and strings, raw bytes
    of binaries, a number's digits plus one (measured here, not with the store's own arithmetic)."""
    size = 0
    for name, value in item.items():
        (kind, data), *_ = value.items()
        size += len(name.encode())
        if kind == "S":
            size += len(data.encode())
        elif kind == "B":
            size += len(data)
        elif kind == "N":
            size += len(data) + 1
        else:
            raise AssertionError(f"the store writes no {kind} attributes")
    return size


def every_item(client: Any) -> list[dict[str, Any]]:
    # Scan is for this test only: the store never scans (and the template grants no Scan).
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE):
        items.extend(page["Items"])
    return items


def scenario_events() -> list[NormalizedEvent]:
    events = []
    for item in read_inputs([str(SCENARIOS)]):
        if not isinstance(item, RawRecord):
            continue
        try:
            events.extend(normalize(item, Config()))
        except Exception:
            continue
    return events


def _signal(event: NormalizedEvent, rule: str = "r") -> Signal:
    return Signal(rule=rule, title="t", severity=Severity.HIGH, standalone=True, event=event)


# --- bounded items ----------------------------------------------------------------------------------------------------
def test_no_item_of_a_realistic_workload_exceeds_64_kb(client: Any, store: DynamoDBStore) -> None:
    # GIVEN one incident at its caps: 5,000 signals, each reading another training object (committed first:
    # moto copies the whole table for each part of a transaction, so a transaction on a full table is slow)
    events = scenario_events()
    cloudtrail = [e for e in events if e.source == EventSource.CLOUDTRAIL]
    assert len(cloudtrail) >= 40
    base = cloudtrail[0]
    incident = Incident(
        id="inc-caps",
        title="Bulk read",
        severity=Severity.HIGH,
        first_seen=base.time,
        last_seen=base.time,
        core_first=base.time,
        core_last=base.time,
        origin=(base.time, "bulk-read", base.event_id),
        links=[e.key for e in base.entities()],
    )
    incident.raise_by("bulk-read", Severity.HIGH, "Bulk read of training data")
    many = []
    for n in range(5000):
        event = base.model_copy(
            update={
                "event_id": f"{base.event_id}-{n:05d}",
                "time": base.time + timedelta(seconds=n),
                "resources": [Resource(type=EntityType.OBJECT, id=f"s3://ml-training-data/shard-{n:05d}.parquet")],
                "origin": f"examples/scenarios/bulk.jsonl:{n + 1}",
            }
        )
        many.append(_signal(event, "bulk-read"))
        incident.add_signal(many[-1])
    incident.version = 1
    links = [
        LinksWrite(EntityLinks(key, 1, {"inc-caps": Span(base.time, base.time + timedelta(seconds=4999))}), 0)
        for key in incident.links
    ]
    members = {signal.id: "inc-caps" for signal in many[: 100 - 1 - len(links)]}
    assert store.commit(Commit(incidents=[IncidentWrite(incident, 0)], links=links, members=members))
    # AND the demo's events, each matched by six rules, stored under every entity they name
    rules = ["ml-data-read", "model-download", "bulk-read", "defense-evasion", "credential-created", "notebook"]
    signals = [_signal(event, rule) for event in events for rule in rules]
    for signal in signals:
        assert store.put_signal(signal, [e.key for e in signal.event.entities()], signal.time + timedelta(hours=2))
    assert len(signals) >= 300
    # THEN every item, as moto stores it, is within 64 KB, and the incident reads back whole
    items = every_item(client)
    sizes = {item["pk"]["S"][:5]: 0 for item in items}
    for item in items:
        sizes[item["pk"]["S"][:5]] = max(sizes[item["pk"]["S"][:5]], stored_size(item))
    assert max(sizes.values()) <= LIMIT, sizes
    [incident_item] = [item for item in items if item["pk"]["S"] == "inc#inc-caps"]
    assert stored_size(incident_item) <= LIMIT
    back = store.get_incident("inc-caps")
    assert back == incident
    assert back is not None and back.signal_count == 5000 and len(back.signals) == 2 * SIGNALS_KEPT_AT_EACH_END
    assert store.signals(base.entities()[0].key, base.time, base.time) != []


def _big_cloudtrail_event() -> NormalizedEvent:
    """A 300 KB CloudTrail record (a policy of random text and 2,000 listed items), compressible only in part."""
    noise = random.Random(7)
    raw = {
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111122223333:user/ml-contractor",
            "accessKeyId": "AKIAEXAMPLECONTRACT1",
        },
        "eventTime": "2026-11-20T09:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "PutUserPolicy",
        "sourceIPAddress": "203.0.113.7",
        "requestParameters": {
            "userName": "ml-contractor",
            "policyDocument": noise.randbytes(75_000).hex(),
            "items": [{"name": f"item-{n}", "value": noise.randbytes(30).hex()} for n in range(2000)],
        },
        "eventID": "big-1",
        "recipientAccountId": "111122223333",
    }
    return NormalizedEvent(
        event_id="big-1",
        time=T0,
        source=EventSource.CLOUDTRAIL,
        account="111122223333",
        action="iam:PutUserPolicy",
        actor=Actor(principal="arn:aws:iam::111122223333:user/ml-contractor", access_key="AKIAEXAMPLECONTRACT1"),
        source_ip="203.0.113.7",
        raw=raw,
    )


def test_a_300_kb_event_is_stored_trimmed_within_64_kb(client: Any, store: DynamoDBStore) -> None:
    # GIVEN a signal on an event whose record is 300 KB, too big to store even compressed
    event = _big_cloudtrail_event()
    assert len(event.model_dump_json()) > 300_000
    signal = _signal(event)
    # WHEN it is stored under two partitions
    assert store.put_signal(signal, ["principal|a", "ip|b"], FAR)
    # THEN each item is within 64 KB and marked trimmed (level 1)
    items = every_item(client)
    copies = [item for item in items if item["pk"]["S"].startswith("sig#")]
    assert len(copies) == 2
    assert all(stored_size(item) <= LIMIT for item in items)
    assert {item["trimmed"]["N"] for item in copies} == {"1"}
    # AND it reads back with its normalized event whole and its raw record trimmed as documented
    [back] = store.signals("principal|a", T0, T0)
    assert back.id == signal.id
    assert back.event.model_dump(exclude={"raw"}) == event.model_dump(exclude={"raw"})
    raw, original = back.event.raw, event.raw
    for field in ("eventName", "eventSource", "eventID", "sourceIPAddress", "userIdentity", "recipientAccountId"):
        assert raw[field] == original[field]
    assert raw["requestParameters"]["userName"] == "ml-contractor"
    assert raw["requestParameters"]["policyDocument"] == original["requestParameters"]["policyDocument"][:4096]
    assert raw["requestParameters"]["items"] == original["requestParameters"]["items"][:64]
    # AND a second put is refused as a duplicate and writes the very same bytes
    before = {item["pk"]["S"]: item for item in copies}
    assert store.put_signal(signal, ["principal|a", "ip|b"], FAR) is False
    assert {i["pk"]["S"]: i for i in every_item(client) if i["pk"]["S"].startswith("sig#")} == before


def test_an_event_too_big_without_its_raw_record_keeps_the_resources_that_fit(
    client: Any, store: DynamoDBStore
) -> None:
    # GIVEN an event naming 3,000 resources of random names (300 KB of normalized fields)
    noise = random.Random(11)
    resources = [Resource(type=EntityType.OBJECT, id=f"s3://b/{noise.randbytes(48).hex()}") for _ in range(3000)]
    event = NormalizedEvent(event_id="wide", time=T0, source=EventSource.CLOUDTRAIL, resources=resources, raw={})
    # WHEN it is stored
    assert store.put_signal(_signal(event), ["p"], FAR)
    # THEN the item is within 64 KB and keeps the first resources, in order, as many as fit
    [item] = [i for i in every_item(client) if i["pk"]["S"] == "sig#p"]
    assert stored_size(item) <= LIMIT
    assert item["trimmed"]["N"] == "5"
    [back] = store.signals("p", T0, T0)
    kept = back.event.resources
    assert 100 < len(kept) < 3000
    assert kept == resources[: len(kept)]


def test_an_incident_item_over_the_bound_is_refused_and_nothing_is_written(store: DynamoDBStore) -> None:
    # Links are not capped by the incident: 4,000 incidents on one entity make an item over the bound.
    noise = random.Random(3)
    spans = {noise.randbytes(32).hex(): Span(T0, T0 + timedelta(seconds=n)) for n in range(4000)}
    commit = Commit(
        incidents=[IncidentWrite(Incident(**_incident_fields("inc-1"), version=1), 0)],
        links=[LinksWrite(EntityLinks("principal|a", 1, spans), 0)],
    )
    with pytest.raises(StateError, match=r"links of 'principal\|a' would be a \d+-byte DynamoDB item"):
        store.commit(commit)
    assert store.get_incident("inc-1") is None


def _incident_fields(incident_id: str) -> dict[str, Any]:
    return {
        "id": incident_id,
        "title": "x",
        "severity": Severity.LOW,
        "first_seen": T0,
        "last_seen": T0,
        "core_first": T0,
        "core_last": T0,
        "origin": (T0, "r", "e"),
    }


def test_a_crash_between_the_copies_and_the_marker_is_repaired_by_the_retry(client: Any, store: DynamoDBStore) -> None:
    # GIVEN a put that wrote the partition copies and died before its marker
    signal = _signal(NormalizedEvent(event_id="e1", time=T0, source=EventSource.CLOUDTRAIL, raw={}))
    for item in store.signal_items(signal, ["p", "q"], FAR):
        client.put_item(TableName=TABLE, Item=item)
    assert store.signal_count() == 0
    # WHEN the event is processed again
    assert store.put_signal(signal, ["p", "q"], FAR) is True
    # THEN the signal is stored once, and counted once
    assert store.put_signal(signal, ["p", "q"], FAR) is False
    assert store.signal_count() == 1
    assert [s.id for s in store.signals("q", T0, T0)] == [signal.id]


def test_a_handle_adds_its_signals_to_the_counter_in_one_update_at_sync(client: Any, store: DynamoDBStore) -> None:
    updates: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.dynamodb.UpdateItem", lambda params, **_: updates.append(params))
    other = DynamoDBStore(client, TABLE)
    # GIVEN five signals stored (one of them twice) by one handle
    for minute in range(5):
        signal = _signal(NormalizedEvent(event_id=f"e{minute}", time=T0, source=EventSource.CLOUDTRAIL, raw={}))
        assert store.put_signal(signal, ["p"], FAR) is True
    assert store.put_signal(signal, ["p"], FAR) is False
    # THEN no counter is written until the handle syncs, and another handle does not see them before
    assert updates == []
    assert other.signal_count() == 0
    store.sync()
    assert [u["ExpressionAttributeValues"][":pending"]["N"] for u in updates] == ["5"]
    assert other.signal_count() == 5
    store.sync()  # nothing new: nothing written
    assert len(updates) == 1


def test_a_failed_count_is_kept_for_the_next_sync(store: DynamoDBStore) -> None:
    signal = _signal(NormalizedEvent(event_id="e1", time=T0, source=EventSource.CLOUDTRAIL, raw={}))
    assert store.put_signal(signal, ["p"], FAR) is True
    # Stubber: a throttled update past botocore's retries, as the handler sees it at the end of an invocation.
    with Stubber(store._client._client) as stub:
        stub.add_client_error("update_item", "ProvisionedThroughputExceededException")
        with pytest.raises(store._client.exceptions.ProvisionedThroughputExceededException):
            store.sync()
    assert store.signal_count() == 1


def test_long_keys_are_cut_to_what_dynamodb_takes_and_stay_distinct(store: DynamoDBStore) -> None:
    long_a, long_b = "principal|" + "a" * 3000, "principal|" + "a" * 2999 + "b"
    event = NormalizedEvent(event_id="x" * 1500, time=T0, source=EventSource.CLOUDTRAIL, raw={})
    assert store.put_signal(_signal(event), [long_a], FAR)
    assert len(store.signals(long_a, T0, T0)) == 1
    assert store.signals(long_b, T0, T0) == []


# --- transactions -------------------------------------------------------------------------------------------------
def test_a_commit_over_one_transaction_is_refused(store: DynamoDBStore) -> None:
    members = {f"s{n}": "inc-1" for n in range(Commit.MAX_ITEMS + 1)}
    with pytest.raises(StateError, match="a commit of 101 items is over DynamoDB's 100 per transaction"):
        store.commit(Commit(members=members))
    assert store.members(["s0"]) == {}


def _cancelled(*codes: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "http_status_code": 400,
        "modeled_fields": {"CancellationReasons": [{"Code": code} for code in codes]},
    }


@pytest.mark.parametrize("codes", [("TransactionConflict",), ("None", "ConditionalCheckFailed")])
def test_a_transaction_lost_to_a_race_is_a_refused_commit(store: DynamoDBStore, codes: tuple[str, ...]) -> None:
    # Stubber: moto never cancels a transaction for a conflict with another one in flight (TransactionConflict).
    with Stubber(store._client._client) as stub:
        stub.add_client_error("transact_write_items", **_cancelled(*codes))
        assert store.commit(Commit(members={"s1": "inc-1"})) is False


def test_a_transaction_cancelled_for_another_reason_raises(store: DynamoDBStore) -> None:
    # Stubber: moto does not reproduce a throttled transaction part.
    with Stubber(store._client._client) as stub:
        stub.add_client_error("transact_write_items", **_cancelled("None", "ThrottlingError"))
        with pytest.raises(store._client.exceptions.TransactionCanceledException):
            store.commit(Commit(members={"s1": "inc-1"}))


# --- IAM and units --------------------------------------------------------------------------------------------------
def _contract_workload(store: DynamoDBStore) -> None:
    events = [e for e in scenario_events() if e.source == EventSource.CLOUDTRAIL][:20]
    for event in events:
        signal = _signal(event)
        store.put_signal(signal, [e.key for e in event.entities()], FAR)
        store.put_signal(signal, [e.key for e in event.entities()], FAR)
        store.signals(event.entities()[0].key, event.time - timedelta(hours=1), event.time)
        store.mark_seen(event.event_id, event.time)
        store.seen(event.event_id)
    incident = Incident(**_incident_fields("inc-1"), version=1)
    links = EntityLinks("principal|a", 1, {"inc-1": Span(T0, T0)})
    store.commit(Commit(incidents=[IncidentWrite(incident, 0)], links=[LinksWrite(links, 0)], members={"s": "inc-1"}))
    store.commit(Commit(incidents=[IncidentWrite(incident, 0)]))  # loses
    store.get_incident("inc-1")
    store.get_links(["principal|a", "principal|b"])
    store.members(["s", "t"])
    store.incidents(since=T0)
    store.unhandled_incidents()
    store.mark_handled("inc-1", 1)
    store.mark_handled("inc-1", 1)
    store.set_meta("k", "v")
    store.get_meta("k")
    store.raise_watermark(T0)
    store.raise_watermark(T0 - timedelta(minutes=1))  # a failed condition: read back
    store.signal_count()


# Each DynamoDB operation and the IAM actions it needs (a transaction: one per kind of part it may hold).
IAM_ACTIONS = {
    "GetItem": {"dynamodb:GetItem"},
    "PutItem": {"dynamodb:PutItem"},
    "UpdateItem": {"dynamodb:UpdateItem"},
    "DeleteItem": {"dynamodb:DeleteItem"},
    "Query": {"dynamodb:Query"},
    "BatchGetItem": {"dynamodb:BatchGetItem"},
    "BatchWriteItem": {"dynamodb:BatchWriteItem"},
    "TransactWriteItems": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"},
}


def test_the_store_calls_only_what_the_correlator_role_is_granted(client: Any, store: DynamoDBStore) -> None:
    # GIVEN every operation the store makes during a workload touching each of its methods
    called: set[str] = set()
    client._client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: called.add(model.name), unique_id="record-calls"
    )
    _contract_workload(store)
    # THEN each is one of the allowed operations, and the template grants the correlator what they need
    assert called <= set(IAM_ACTIONS), called - set(IAM_ACTIONS)
    assert {"Query", "TransactWriteItems", "BatchGetItem", "BatchWriteItem"} <= called
    statements = load_template()["Resources"]["CorrelatorRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    [grant] = [s for s in statements["Statement"] if s.get("Sid") == "StateTable"]
    needed = set().union(*(IAM_ACTIONS[name] for name in called))
    assert needed <= set(grant["Action"]), needed - set(grant["Action"])


def test_consumed_units_are_counted_for_reads_and_writes(store: DynamoDBStore) -> None:
    _contract_workload(store)
    assert store.read_units > 0
    assert store.write_units > 0
    reads, writes = store.read_units, store.write_units
    store.get_meta("k")
    assert store.read_units > reads
    assert store.write_units == writes


# --- opening from a URL ---------------------------------------------------------------------------------------------
def test_dynamodb_urls_name_the_table_and_region() -> None:
    assert parse_dynamodb_url("dynamodb://cordon-state?region=eu-west-1") == ("cordon-state", "eu-west-1")
    assert parse_dynamodb_url("dynamodb://cordon-state") == ("cordon-state", None)
    # the CLI's URL for both of the stack's tables names the state table as `state=`
    both = "dynamodb://?audit=cordon-audit&state=cordon-state&region=eu-west-1"
    assert parse_dynamodb_url(both) == ("cordon-state", "eu-west-1")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dynamodb://", "bad DynamoDB state URL 'dynamodb://': it names no state table; write dynamodb://TABLE"),
        ("dynamodb://?audit=a", "'dynamodb://?audit=a': it names no state table"),
        ("dynamodb://t?state=u", "it names two state tables (t, u)"),
        ("dynamodb://t/x", "bad DynamoDB state URL 'dynamodb://t/x': write dynamodb://TABLE?region=REGION"),
        ("dynamodb://t?profile=x", "unknown parameter 'profile', valid: audit, region, state"),
    ],
)
def test_bad_dynamodb_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(StateError, match=re.escape(message)):
        parse_dynamodb_url(url)


def test_open_state_opens_each_kind_of_store(client: Any, tmp_path: Path) -> None:
    # moto is active (the client fixture): the store's own client reaches the table
    dynamodb = open_state(f"dynamodb://{TABLE}?region={REGION}")
    assert isinstance(dynamodb, DynamoDBStore)
    dynamodb.set_meta("k", "v")
    assert open_dynamodb_store(f"dynamodb://{TABLE}?region={REGION}").get_meta("k") == "v"
    assert dynamodb._client.meta.config.retries["mode"] == "standard"
    assert isinstance(open_state("memory://"), MemoryStore)
    assert isinstance(open_state(f"sqlite:///{tmp_path / 'state.db'}"), SqliteStore)
    with pytest.raises(StateError, match="unknown state store 'redis://x': use memory://, sqlite:///path"):
        open_state("redis://x")


def test_link_and_membership_items_expire_a_week_after_their_last_write(client: Any, store: DynamoDBStore) -> None:
    # GIVEN a commit that links an entity and counts a signal
    before = datetime.now(UTC)
    links = EntityLinks("principal|a", 1, {"inc-1": Span(before, before)})
    incident = Incident(**_incident_fields("inc-1"), version=1)
    assert store.commit(
        Commit(incidents=[IncidentWrite(incident, 0)], links=[LinksWrite(links, 0)], members={"s": "inc-1"})
    )
    # THEN both items carry a TTL: the table does not grow with every signal and entity ever seen
    ttl = {
        item["pk"]["S"].split("#")[0]: int(item["expires_at"]["N"])
        for item in every_item(client)
        if "expires_at" in item
    }
    week = timedelta(days=7)
    for kind in ("link", "member"):
        assert (before + week).timestamp() - 5 <= ttl[kind] <= (datetime.now(UTC) + week).timestamp() + 5, kind
