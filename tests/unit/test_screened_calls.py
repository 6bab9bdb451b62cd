"""A CloudTrail call that no rule can match is never built into an event (`normalize_screened`): the rule index
reads the call in its place. That is only right if the call reads as its event would, field by field, if the
screen says "no candidate" exactly when the event's candidates are none, and if a call that may match becomes the
very event `normalize` makes. Checked on every CloudTrail record of the examples and, when present, the samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from cordon.replay import load_ruleset
from correlators.config import Config, load_config
from correlators.detect import Detector
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord, read_inputs
from correlators.model import EventSource, NormalizedEvent
from correlators.normalize import CloudTrailCall, normalize, normalize_screened
from correlators.pipeline import Pipeline
from correlators.sigma.fields import FIELDS_BEFORE_BUILDING, FieldView
from correlators.sigma.loader import load_rules
from correlators.state.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"
SITE = REPO / "examples" / "cordon.yaml"
SIGMAHQ = REPO / "bench" / "rules" / "sigmahq-cloudtrail"


def _normalized(config: Config) -> Iterator[tuple[RawRecord, list[NormalizedEvent]]]:
    """Each record that `normalize` takes, with its events."""
    folders = [REPO / "examples"] + ([SAMPLES] if SAMPLES.is_dir() else [])
    for item in read_inputs([str(folder) for folder in folders]):
        if isinstance(item, RawRecord):
            try:
                yield item, normalize(item, config)
            except EventRejectedError:
                continue


def _calls(config: Config) -> Iterator[tuple[CloudTrailCall, NormalizedEvent]]:
    """Each record that is a CloudTrail call: the call, unscreened, and the event `normalize` makes of it."""
    for record, events in _normalized(config):
        screened = normalize_screened(record, config, lambda call: False)
        if isinstance(screened[0], CloudTrailCall):
            assert len(screened) == len(events) == 1
            yield screened[0], events[0]


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(SITE)


@pytest.fixture(scope="module")
def detector(config: Config) -> Detector:
    return Detector(load_ruleset(config, [SIGMAHQ]))


def test_a_call_reads_as_its_event_for_every_field_the_screen_may_read(config: Config) -> None:
    pairs = list(_calls(config))
    assert len(pairs) > (3000 if SAMPLES.is_dir() else 100)
    assert sum(bool(event.asset_classes) for _, event in pairs) > 10  # the site's classes are read, not just empty
    raw_fields = ("eventSource", "eventName", "userAgent", "userIdentity.arn", "userIdentity.type", "resources.ARN")
    for call, event in pairs:
        for name in (*sorted(FIELDS_BEFORE_BUILDING), *raw_fields):
            assert FieldView(cast(NormalizedEvent, call)).get(name) == FieldView(event).get(name), (event.origin, name)


def test_the_screen_passes_exactly_the_calls_whose_event_has_candidates(config: Config, detector: Detector) -> None:
    index = detector._rules_by_source[EventSource.CLOUDTRAIL]
    passed = 0
    for call, event in _calls(config):
        may_match = detector.may_match(call)
        assert may_match == bool(index.candidates(event)), event.origin
        if not may_match:
            assert detector.detect(event) == [], event.origin  # a CloudTrail event raises nothing without a rule
        passed += may_match
    assert passed > 20


def test_a_call_that_may_match_is_the_event_normalize_makes(config: Config) -> None:
    for record, expected in _normalized(config):
        built = normalize_screened(record, config, lambda call: True)
        assert built == expected, record.where
        assert [event.model_dump_json() for event in built] == [event.model_dump_json() for event in expected]


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": "e-1",
        "eventTime": "2026-11-30T09:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/ana"},
        "requestParameters": {"bucketName": "b", "key": "k"},
    }
    record.update(changes)
    return {key: value for key, value in record.items() if value is not None}


def _envelope(detail: Any, detail_type: Any = "AWS API Call via CloudTrail") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "ev-1",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "444455556666",
        "region": "eu-west-1",
        "time": "2026-11-30T09:00:01Z",
        "detail": detail,
    }


BROKEN = {
    "no event time": _record(eventTime=None),
    "an impossible time": _record(eventTime="2026-13-40T00:00:00Z"),
    "a number for a name": _record(eventName=7),
    "a list for the identity": _record(userIdentity=["x"]),
    "a string for the request": _record(requestParameters="bucketName=b"),
    "an envelope with a broken detail": _envelope(_record(eventSource=None)),
    "an envelope whose detail is a list": _envelope([_record()]),
    "a list for a detail-type": _envelope(_record(), detail_type=["AWS API Call via CloudTrail"]),
    "an object for a detail-type": {**_envelope(_record()), "detail-type": {"a": 1}},
}


@pytest.mark.parametrize("payload", BROKEN.values(), ids=list(BROKEN))
def test_a_broken_record_is_refused_as_normalize_refuses_it(payload: dict[str, Any]) -> None:
    record = RawRecord(payload, "events.jsonl:7")
    with pytest.raises(EventRejectedError) as expected:
        normalize(record, Config())
    for may_match in (False, True):
        with pytest.raises(EventRejectedError) as screened:
            normalize_screened(record, Config(), lambda call, answer=may_match: answer)
        assert (screened.value.reason, screened.value.where) == (expected.value.reason, expected.value.where)


def test_a_call_in_an_eventbridge_envelope_takes_the_envelope_account_and_region() -> None:
    record = RawRecord(_envelope(_record()), "events.jsonl:1")

    (call,) = normalize_screened(record, Config(), lambda call: False)
    (event,) = normalize(record, Config())

    assert isinstance(call, CloudTrailCall)
    assert (call.account, call.region, call.time, call.event_id) == ("444455556666", "eu-west-1", event.time, "e-1")
    assert normalize_screened(record, Config(), lambda call: True) == [event]


RULE_ON_A_VERDICT = """
title: Object read by someone who is not a declared writer
id: 9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    cordon.declared_writer: 'false'  # a text: indexed, so the index reads the verdict of every event
  condition: selection
level: high
"""


def test_rules_that_read_an_enrichment_verdict_turn_the_screen_off(tmp_path: Path) -> None:
    # GIVEN a rule pinning only a field computed for built events (the declared-writer verdict)
    (tmp_path / "verdict.yml").write_text(RULE_ON_A_VERDICT)
    config = Config(assets={"training_data": ["s3://b/*"]}, asset_writers={"training_data": ["arn:aws:iam::*:role/w"]})
    pipeline = Pipeline(config, load_rules([tmp_path]), MemoryStore())
    index = pipeline._detector._rules_by_source[EventSource.CLOUDTRAIL]
    assert "cordon.declared_writer" in index.field_names

    # WHEN a read by an undeclared principal arrives, and one by a declared writer
    writer = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/w/s"}
    for line, record in enumerate((_record(), _record(eventID="e-2", userIdentity=writer)), start=1):
        assert pipeline.take(RawRecord(record, f"events.jsonl:{line}")) is None

    # THEN every call is built and detected as before: the rule raises its signal for the first only
    call = normalize_screened(RawRecord(_record(), "events.jsonl:1"), config, lambda call: False)[0]
    assert isinstance(call, CloudTrailCall)
    assert pipeline._detector.may_match(call) is True
    assert pipeline.stats.signals == 1
