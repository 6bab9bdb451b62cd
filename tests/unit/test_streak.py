"""The in-order shortcut for busy groups changes speed, never results: one principal reading hundreds of training
objects gives the same incidents with and without it, in order and shuffled, and in order it takes the shortcut
for almost every signal."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cordon.replay import incident_json
from correlators import streak
from correlators.ingest import RawRecord
from correlators.model import NormalizedEvent
from correlators.normalize import normalize
from correlators.pipeline import Pipeline
from correlators.state import MemoryStore, SqliteStore
from correlators.state.base import StateStore
from tests.unit.test_event_time_order import CONFIG, RULES

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _read(n: int, user: str = "hoarder") -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventID": f"00000000-0000-4000-8000-{n:012d}",
        "eventTime": (START + timedelta(seconds=2 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "recipientAccountId": "111122223333",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::111122223333:user/{user}",
            "accountId": "111122223333",
            "userName": user,
            "accessKeyId": "AKIAHOARDER000000001",
        },
        # every fifth read repeats an object: distinct counts are not just event counts
        "requestParameters": {"bucketName": "acme-fraud-training", "key": f"datasets/2026-11/obj-{n - n % 5}.parquet"},
        "eventCategory": "Data",
    }


def _events(count: int) -> list[NormalizedEvent]:
    events = []
    for n in range(count):
        events.extend(normalize(RawRecord(_read(n), f"hot:{n}"), CONFIG))
    return events


EVENTS = _events(600)


def _run(events: list[NormalizedEvent], store: StateStore | None = None) -> list[dict[str, Any]]:
    pipeline = Pipeline(CONFIG, RULES, store or MemoryStore())
    for event in events:
        pipeline.submit(event)
    return [incident_json(i) for i in pipeline.store.incidents()]


def test_in_order_the_shortcut_decides_almost_every_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    decisions: list[streak.Decision | None] = []
    decide = streak.decide

    def counting(*args: Any, **kwargs: Any) -> streak.Decision | None:
        decisions.append(decide(*args, **kwargs))
        return decisions[-1]

    monkeypatch.setattr(streak, "decide", counting)
    incidents = _run(EVENTS)
    raised_alone = [d for d in decisions if d is not None and d.holds]
    assert len(incidents) == 1 and incidents[0]["signal_count"] > 1000
    assert len(raised_alone) > 0.9 * len(EVENTS) - 60  # all but the start of the burst


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_with_and_without_the_shortcut_and_in_any_order_the_incidents_are_the_same(
    store: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    def fresh() -> StateStore:
        return MemoryStore() if store == "memory" else SqliteStore(tmp_path / f"{random.random()}.db")

    with_shortcut = _run(EVENTS, fresh())
    shuffled = list(EVENTS)
    random.Random(7).shuffle(shuffled)
    assert _run(shuffled, fresh()) == with_shortcut
    monkeypatch.setattr(streak, "decide", lambda *args, **kwargs: None)
    assert _run(EVENTS, fresh()) == with_shortcut


def test_a_streak_is_written_only_when_it_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    rule = RULES.correlations[0]
    writes: list[str] = []
    set_meta = store.set_meta
    monkeypatch.setattr(store, "set_meta", lambda key, value: (writes.append(value), set_meta(key, value)))
    streak.extend(store, rule, "g", START, START + timedelta(minutes=5))
    streak.extend(store, rule, "g", START + timedelta(minutes=1), START + timedelta(minutes=4))  # covered already
    assert len(writes) == 1
    streak.extend(store, rule, "g", START + timedelta(minutes=4), START + timedelta(minutes=6))
    assert len(writes) == 2
    assert streak.load(store, rule, "g") == [(START, START + timedelta(minutes=6))]
    streak.extend(store, rule, "g", START + timedelta(hours=1), START + timedelta(hours=2))
    assert streak.load(store, rule, "g") == [
        (START, START + timedelta(minutes=6)),
        (START + timedelta(hours=1), START + timedelta(hours=2)),
    ]
