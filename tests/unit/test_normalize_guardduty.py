"""GuardDuty findings, bare and inside `GuardDuty Finding` events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.normalize import normalize
from correlators.normalize.guardduty import severity_of

ACCOUNT = "111122223333"
# Shape from the GuardDuty User Guide, "Finding details", for Exfiltration:S3/AnomalousBehavior (an S3
# protection finding: accessKeyDetails, s3BucketDetails, and an AWS API call seen from a remote IP).
S3_FINDING: dict[str, Any] = {
    "schemaVersion": "2.0",
    "accountId": ACCOUNT,
    "region": "us-east-1",
    "partition": "aws",
    "id": "5ec6b3a1c9d24f6ab1e2e0c1f0example",
    "arn": f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/dt/finding/5ec6b3a1c9d24f6ab1e2e0c1f0example",
    "type": "Exfiltration:S3/AnomalousBehavior",
    "resource": {
        "resourceType": "S3Bucket",
        "accessKeyDetails": {
            "accessKeyId": "AKIAQNZGKIQYEXAMPLE1",
            "principalId": "AIDAQNZGKIQYEXAMPLE",
            "userName": "alice",
            "userType": "IAMUser",
        },
        "s3BucketDetails": [
            {"arn": "arn:aws:s3:::ml-data", "name": "ml-data", "type": "Destination"},
            {"arn": "arn:aws:s3:::ml-models", "name": "ml-models", "type": "Destination"},
        ],
    },
    "service": {
        "serviceName": "guardduty",
        "detectorId": "dt",
        "action": {
            "actionType": "AWS_API_CALL",
            "awsApiCallAction": {
                "api": "GetObject",
                "serviceName": "s3.amazonaws.com",
                "callerType": "Remote IP",
                "errorCode": "AccessDenied",
                "remoteIpDetails": {"ipAddressV4": "198.51.100.23"},
                "userAgent": {"fullUserAgent": "aws-cli/2.15.0", "userAgentCategory": "AWS CLI"},
            },
        },
        "eventFirstSeen": "2024-05-01T12:00:00.000Z",
        "eventLastSeen": "2024-05-01T12:30:00.000Z",
        "archived": False,
        "count": 40,
    },
    "severity": 8,
    "createdAt": "2024-05-01T12:31:00.000Z",
    "updatedAt": "2024-05-01T13:00:00.000Z",
    "title": "Anomalous S3 reads from ml-data.",
}


def _finding(**overrides: Any) -> dict[str, Any]:
    finding = copy.deepcopy(S3_FINDING)
    finding.update(overrides)
    return finding


def _one(payload: dict[str, Any]) -> NormalizedEvent:
    [event] = normalize(RawRecord(payload, "gd.json:1"), Config())
    return event


def test_s3_finding() -> None:
    event = _one(_finding())

    assert event.event_id == "5ec6b3a1c9d24f6ab1e2e0c1f0example"
    assert event.source is EventSource.GUARDDUTY
    assert event.time == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)  # eventLastSeen, not updatedAt
    assert (event.account, event.region) == (ACCOUNT, "us-east-1")
    assert event.action == "s3:GetObject"
    assert (event.outcome, event.error_code) == ("failure", "AccessDenied")
    assert event.source_ip == "198.51.100.23"
    assert event.user_agent == "aws-cli/2.15.0"
    assert event.actor is not None and event.actor.principal == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert event.resources == [
        Resource(type=EntityType.BUCKET, id="arn:aws:s3:::ml-data"),
        Resource(type=EntityType.BUCKET, id="arn:aws:s3:::ml-models"),
    ]
    assert event.finding is not None
    assert event.finding.model_dump() == {
        "type": "Exfiltration:S3/AnomalousBehavior",
        "title": "Anomalous S3 reads from ml-data.",
        "product": "guardduty",
        "severity": Severity.HIGH,
        "severity_score": 8.0,
        "status": "ACTIVE",
        "requested": False,
    }
    assert event.raw == S3_FINDING


def test_eventbridge_envelope() -> None:
    envelope = {
        "version": "0",
        "id": "c8c4daa7-a20c-2f03-0070-b7393dd542ad",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": "1970-01-01T00:00:00Z",  # as in GuardDuty sample events: the finding's own times count
        "region": "us-east-1",
        "resources": [],
        "detail": _finding(),
    }

    event = _one(envelope)

    assert event.event_id == "5ec6b3a1c9d24f6ab1e2e0c1f0example"
    assert event.time == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert event.raw == S3_FINDING


def test_time_falls_back_to_updated_at() -> None:
    finding = _finding()
    del finding["service"]["eventLastSeen"]

    assert _one(finding).time == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def test_no_time_at_all_is_rejected() -> None:
    finding = _finding()
    del finding["service"]["eventLastSeen"], finding["updatedAt"]

    with pytest.raises(
        EventRejectedError, match=r"^gd.json:1: GuardDuty finding: service.eventLastSeen and updatedAt: both missing$"
    ):
        _one(finding)


def test_archived_finding() -> None:
    finding = _finding()
    finding["service"]["archived"] = True

    event = _one(finding)

    assert event.finding is not None and event.finding.status == "ARCHIVED"


def test_instance_finding_with_network_connection() -> None:
    # Shape from the GuardDuty sample finding UnauthorizedAccess:EC2/SSHBruteForce.
    finding = _finding(
        type="UnauthorizedAccess:EC2/SSHBruteForce",
        resource={"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0a1b2c3d4e5f60718"}},
        service={
            "serviceName": "guardduty",
            "action": {
                "actionType": "NETWORK_CONNECTION",
                "networkConnectionAction": {
                    "connectionDirection": "INBOUND",
                    "remoteIpDetails": {"ipAddressV4": "203.0.113.9"},
                },
            },
            "eventLastSeen": "2024-05-01T12:30:00Z",
        },
        severity=2,
    )

    event = _one(finding)

    assert event.action is None and event.actor is None
    assert event.source_ip == "203.0.113.9"
    assert event.resources == [Resource(type=EntityType.INSTANCE, id="i-0a1b2c3d4e5f60718")]
    assert event.finding is not None and event.finding.severity is Severity.LOW


def test_port_probe_remote_ip() -> None:
    finding = _finding(
        service={
            "serviceName": "guardduty",
            "action": {
                "actionType": "PORT_PROBE",
                "portProbeAction": {"portProbeDetails": [{"remoteIpDetails": {"ipAddressV4": "192.0.2.4"}}]},
            },
            "eventLastSeen": "2024-05-01T12:30:00Z",
        }
    )

    assert _one(finding).source_ip == "192.0.2.4"


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (1.0, Severity.LOW),
        (3.9, Severity.LOW),
        (4.0, Severity.MEDIUM),
        (6.9, Severity.MEDIUM),
        (7.0, Severity.HIGH),
        (8.9, Severity.HIGH),
        (9.0, Severity.CRITICAL),
        (10, Severity.CRITICAL),
    ],
)
def test_severity_bands(score: float, severity: Severity) -> None:
    assert severity_of(score) is severity


def test_sample_finding_without_schema_version_or_account_is_still_guardduty() -> None:
    finding = _finding()
    del finding["schemaVersion"], finding["accountId"], finding["arn"]

    assert _one(finding).account is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "GuardDuty finding: id: input should be a valid string, got None"),
        (
            {"severity": "high"},
            "GuardDuty finding: severity: input should be a valid number, unable to parse string as a number, "
            "got 'high'",
        ),
        (
            {"updatedAt": "2024-02-30T00:00:00Z"},
            "GuardDuty finding: updatedAt: impossible timestamp '2024-02-30T00:00:00Z' (day is out of range for month)",
        ),
    ],
)
def test_invalid_fields(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventRejectedError) as caught:
        _one(_finding(**change))

    assert caught.value.reason == reason
