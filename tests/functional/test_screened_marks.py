"""A CloudTrail call no rule can match raises nothing, so its delivery is looked up and marked in one step
(`StateStore.mark_new`): on DynamoDB one conditional PutItem, where an event that may raise signals still takes a
strongly consistent GetItem first and its PutItem only after its signals and incidents are written. Most records
of a trail are such calls: this halves their DynamoDB requests. Checked on moto's DynamoDB with the examples'
CloudTrail records, the site configuration and the built-in rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cordon.replay import load_ruleset
from correlators.config import Config, load_config
from correlators.detect import Detector
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.normalize import CloudTrailCall, normalize_screened
from correlators.pipeline import Pipeline
from correlators.state.dynamodb import DynamoDBStore
from tests.unit.test_state_contract import TABLE, dynamodb_table

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "examples" / "cordon.yaml"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(SITE)


def _records(config: Config, attack: str, screened: bool) -> list[RawRecord]:
    """The records of one attack of the examples (their times within one window) whose CloudTrail call the
    built-in rules screen out (or, with False, that they build into events), each once."""
    detector = Detector(load_ruleset(config))
    found: dict[str, RawRecord] = {}
    for item in read_inputs([str(REPO / "examples" / "attacks" / attack)]):
        if not isinstance(item, RawRecord):
            continue
        try:
            events = normalize_screened(item, config, detector.may_match)
        except EventRejectedError:
            continue
        if len(events) == 1 and isinstance(events[0], CloudTrailCall) == screened:
            found.setdefault(f"{events[0].event_id}|{events[0].time}", item)
    return list(found.values())


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with dynamodb_table(monkeypatch) as dynamodb:
        yield dynamodb


def _record_requests(client: Any) -> list[tuple[str, str]]:
    """Every request botocore sends from now on, in order: (operation, the partition key it names first)."""
    sent: list[tuple[str, str]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb", lambda params, model, **_: sent.append((model.name, _first_key(params)))
    )
    return sent


def _first_key(params: dict[str, Any]) -> str:
    """The partition key a request names first (of its item, its key, or its first batch put)."""
    item = params.get("Key") or params.get("Item")
    if item is None and "RequestItems" in params:
        requests = next(iter(params["RequestItems"].values()))
        first = requests[0] if isinstance(requests, list) else {"Key": requests["Keys"][0]}
        item = first.get("PutRequest", {}).get("Item") or first.get("Key") or {}
    return str((item or {}).get("pk", {}).get("S", ""))


def _on_marks(sent: list[tuple[str, str]]) -> Counter[str]:
    """The requests on the items of seen events, by operation (`GetItem`, `PutItem`)."""
    return Counter(operation for operation, key in sent if key.startswith("seen#"))


def test_a_screened_call_is_marked_with_one_conditional_put(client: Any, config: Config) -> None:
    records = _records(config, "stolen-instance-credentials", screened=True)
    assert len(records) >= 40  # most of the attack's CloudTrail records match no rule
    sent = _record_requests(client)
    pipeline = Pipeline(config, load_ruleset(config), DynamoDBStore(client, TABLE))
    for record in records:
        assert pipeline.take(record) is None
    assert _on_marks(sent) == {"PutItem": len(records)}  # no look-up before
    assert (pipeline.stats.accepted, pipeline.stats.duplicates, pipeline.stats.signals) == (len(records), 0, 0)

    # Delivered again (at least once): each is refused by its mark, and counted a duplicate once.
    sent.clear()
    for record in records:
        assert pipeline.take(record) is None
    assert _on_marks(sent) == {"PutItem": len(records)}
    assert pipeline.stats.duplicates == len(records)


def test_an_event_that_may_raise_signals_is_looked_up_first_and_marked_after(client: Any, config: Config) -> None:
    records = _records(config, "bedrock-llmjacking", screened=False)
    assert len(records) >= 10
    sent = _record_requests(client)
    pipeline = Pipeline(config, load_ruleset(config), DynamoDBStore(client, TABLE))
    for record in records:
        pipeline.take(record)
    assert _on_marks(sent) == {"GetItem": len(records), "PutItem": len(records)}
    assert pipeline.stats.signals > 0
    # Each mark comes after the event's writes (its signals' "stored" markers): a crash between leaves it
    # unmarked, and the redelivery redoes them.
    marks = [n for n, (operation, key) in enumerate(sent) if key.startswith("seen#")]
    looked_up, marked = marks[0::2], marks[1::2]
    assert [sent[n][0] for n in looked_up] == ["GetItem"] * len(records)
    assert [sent[n][0] for n in marked] == ["PutItem"] * len(records)
    between = [[key for _, key in sent[start:end]] for start, end in zip(looked_up, marked, strict=True)]
    assert all(any(key.startswith("put#") for key in keys) for keys in between)  # each of these raises signals
