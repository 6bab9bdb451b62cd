"""Telling sources apart: EventBridge detail-types, bare records, and what is not a security event."""

from __future__ import annotations

from typing import Any

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import EventSource
from correlators.normalize import SUPPORTED_DETAIL_TYPES, normalize


def _normalize(payload: dict[str, Any]) -> list[Any]:
    return normalize(RawRecord(payload, "mixed.jsonl:4"), Config())


@pytest.mark.parametrize(
    "detail_type",
    [
        "Security Hub Insight Results",
        "EC2 Instance State-change Notification",
        "AWS Health Event",
        "Config Configuration Item Change",
        "CloudWatch Alarm Configuration Change",
        "Scheduled Event",
    ],
)
def test_unsupported_detail_types_are_rejected_naming_the_supported_ones(detail_type: str) -> None:
    payload = {"id": "1", "detail-type": detail_type, "source": "aws.x", "detail": {}}

    with pytest.raises(EventRejectedError) as caught:
        _normalize(payload)

    assert caught.value.where == "mixed.jsonl:4"
    assert caught.value.reason == (
        f"unsupported detail-type {detail_type!r} (supported: 'AWS API Call via CloudTrail', "
        "'AWS Console Sign In via CloudTrail', 'AWS Service Event via CloudTrail', 'GuardDuty Finding', "
        "'Security Hub Findings - Imported', 'Security Hub Findings', 'Security Hub Findings - Custom Action', "
        "'CloudWatch Alarm State Change', 'Config Rules Compliance Change')"
    )


def test_supported_detail_types_cover_the_five_sources() -> None:
    assert len(SUPPORTED_DETAIL_TYPES) == 9


def test_detail_must_be_an_object() -> None:
    with pytest.raises(
        EventRejectedError, match=r"^mixed.jsonl:4: GuardDuty Finding event: detail: expected an object$"
    ):
        _normalize({"detail-type": "GuardDuty Finding", "detail": [1]})


def test_non_string_detail_type_is_rejected() -> None:
    with pytest.raises(EventRejectedError, match=r"unsupported detail-type 7 "):
        _normalize({"detail-type": 7, "detail": {}})


def test_anything_else_is_rejected_saying_what_was_expected() -> None:
    # A Config rule invocation event, as in cloud-custodian's test data.
    payload = {
        "configRuleId": "config-rule-x",
        "version": "1.0",
        "configRuleName": "x",
        "configRuleArn": "arn",
        "invokingEvent": "{}",
        "resultToken": "t",
        "eventLeftScope": False,
    }

    with pytest.raises(EventRejectedError) as caught:
        _normalize(payload)

    assert caught.value.reason == (
        "not a security event: expected an EventBridge event (detail-type, detail), a CloudTrail record "
        "(eventVersion, eventTime, eventName, eventSource), a GuardDuty finding (type, service.serviceName "
        "'guardduty'), an ASFF finding (SchemaVersion, ProductArn, Id), or a Config compliance change "
        "(configRuleName, newEvaluationResult); got an object with keys configRuleId, "
        "version, configRuleName, configRuleArn, invokingEvent, resultToken, ..."
    )


def test_empty_object_is_rejected() -> None:
    with pytest.raises(EventRejectedError, match=r"got an object with keys \(none\)$"):
        _normalize({})


def test_eventbridge_fragment_without_detail_type_is_read_by_its_detail() -> None:
    # As in the amazon-guardduty-waf-acl sample: {"region": ..., "detail": <GuardDuty finding>}.
    fragment = {
        "region": "us-east-1",
        "detail": {
            "id": "02be5693b63eea1d67e6f321c6aee4f3",
            "type": "UnauthorizedAccess:EC2/SSHBruteForce",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": "i-99999999"}},
            "service": {"serviceName": "guardduty", "eventLastSeen": "2018-05-11T14:56:39.976Z"},
            "severity": 2,
            "updatedAt": "2018-05-11T14:56:39.976Z",
        },
    }

    [event] = _normalize(fragment)

    assert (event.source, event.region) == (EventSource.GUARDDUTY, "us-east-1")
