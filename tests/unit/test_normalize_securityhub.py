"""ASFF findings: Security Hub events (one event per finding), GetFindings elements, bare findings."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import EntityType, EventSource, NormalizedEvent, Resource, Severity
from correlators.normalize import INACTIVE_FINDING_STATUSES, normalize

ACCOUNT = "111122223333"
# Shape from the Security Hub User Guide, "Sample control findings" (AWS Foundational Security Best Practices).
CONTROL_FINDING: dict[str, Any] = {
    "SchemaVersion": "2018-10-08",
    "Id": f"arn:aws:securityhub:us-east-1:{ACCOUNT}:security-control/S3.2/finding/a1b2c3d4-EXAMPLE",
    "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    "ProductName": "Security Hub",
    "CompanyName": "AWS",
    "Region": "us-east-1",
    "GeneratorId": "security-control/S3.2",
    "AwsAccountId": ACCOUNT,
    "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
    "FirstObservedAt": "2024-04-01T00:00:00.000Z",
    "LastObservedAt": "2024-05-01T09:00:00.000Z",
    "CreatedAt": "2024-04-01T00:00:00.000Z",
    "UpdatedAt": "2024-05-01T09:30:00.000Z",
    "Severity": {"Label": "CRITICAL", "Normalized": 90, "Original": "CRITICAL"},
    "Title": "S3 general purpose buckets should block public read access",
    "Resources": [
        {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::ml-data", "Partition": "aws", "Region": "us-east-1"},
        {"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0a1b2c3d4e5f60718"},
        {
            "Type": "AwsSageMakerNotebookInstance",
            "Id": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:notebook-instance/Research-NB",
        },
        {"Type": "AwsKmsKey", "Id": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234"},
    ],
    "Compliance": {"Status": "FAILED"},
    "WorkflowState": "NEW",
    "Workflow": {"Status": "NEW"},
    "RecordState": "ACTIVE",
}


def _finding(**overrides: Any) -> dict[str, Any]:
    finding = copy.deepcopy(CONTROL_FINDING)
    finding.update(overrides)
    return finding


def _envelope(findings: list[Any], detail_type: str = "Security Hub Findings - Imported") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "8e5622f9-d81c-4d81-612a-9319e7ee2506",
        "detail-type": detail_type,
        "source": "aws.securityhub",
        "account": ACCOUNT,
        "time": "2024-05-01T09:31:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"findings": findings},
    }


def _all(payload: dict[str, Any]) -> list[NormalizedEvent]:
    return normalize(RawRecord(payload, "hub.json:3"), Config())


def _one(payload: dict[str, Any]) -> NormalizedEvent:
    [event] = _all(payload)
    return event


def test_control_finding() -> None:
    event = _one(_finding())

    assert event.event_id == CONTROL_FINDING["Id"]
    assert event.source is EventSource.SECURITYHUB
    assert event.time == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # LastObservedAt
    assert (event.account, event.region) == (ACCOUNT, "us-east-1")
    assert event.actor is None and event.action is None
    assert event.resources == [
        Resource(type=EntityType.BUCKET, id="arn:aws:s3:::ml-data"),
        Resource(type=EntityType.INSTANCE, id="i-0a1b2c3d4e5f60718"),
        Resource(
            type=EntityType.SAGEMAKER_NOTEBOOK,
            id=f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:notebook-instance/research-nb",
        ),
    ]
    assert event.finding is not None
    assert event.finding.model_dump() == {
        "type": "Software and Configuration Checks/Industry and Regulatory Standards",
        "title": "S3 general purpose buckets should block public read access",
        "product": "securityhub/Security Hub",
        "severity": Severity.CRITICAL,
        "severity_score": 90.0,
        "status": "FAILED",
        "requested": False,
    }
    assert event.raw == CONTROL_FINDING


@pytest.mark.parametrize(
    "detail_type",
    ["Security Hub Findings - Imported", "Security Hub Findings", "Security Hub Findings - Custom Action"],
)
def test_each_finding_of_an_event_is_one_event_whose_raw_is_that_finding(detail_type: str) -> None:
    second = _finding(Id="second-finding")

    events = _all(_envelope([_finding(), second], detail_type))

    assert [e.event_id for e in events] == [CONTROL_FINDING["Id"], "second-finding"]
    assert events[1].raw == second
    assert {e.origin for e in events} == {"hub.json:3"}


def test_one_bad_finding_rejects_the_event_and_says_which() -> None:
    bad = _finding()
    del bad["ProductArn"]

    with pytest.raises(
        EventRejectedError,
        match=r"^hub.json:3: Security Hub event: detail.findings\[1\]: ASFF finding: ProductArn: missing$",
    ):
        _all(_envelope([_finding(), bad]))


def test_event_without_findings_is_rejected() -> None:
    with pytest.raises(EventRejectedError, match=r"detail.findings: expected a non-empty list of ASFF findings"):
        _all(_envelope([]))
    with pytest.raises(EventRejectedError, match=r"detail.findings\[0\]: expected an object"):
        _all(_envelope(["not a finding"]))


def test_time_falls_back_to_updated_then_created() -> None:
    finding = _finding()
    del finding["LastObservedAt"]
    assert _one(finding).time == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    del finding["UpdatedAt"]
    assert _one(finding).time == datetime(2024, 4, 1, tzinfo=UTC)
    del finding["CreatedAt"], finding["FirstObservedAt"]
    with pytest.raises(
        EventRejectedError, match=r"ASFF finding: LastObservedAt, UpdatedAt and CreatedAt: all missing$"
    ):
        _one(finding)


def test_type_falls_back_to_generator_id() -> None:
    event = _one(_finding(Types=[]))

    assert event.finding is not None and event.finding.type == "security-control/S3.2"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ({"Label": "informational"}, Severity.INFORMATIONAL),
        ({"Label": "HIGH", "Normalized": 10}, Severity.HIGH),
        ({"Normalized": 0}, Severity.INFORMATIONAL),
        ({"Normalized": 39}, Severity.LOW),
        ({"Normalized": 40}, Severity.MEDIUM),
        ({"Normalized": 70}, Severity.HIGH),
        ({"Normalized": 90}, Severity.CRITICAL),
        ({"Product": 75}, Severity.HIGH),
        ({}, Severity.INFORMATIONAL),
    ],
)
def test_severity(severity: dict[str, Any], expected: Severity) -> None:
    event = _one(_finding(Severity=severity))

    assert event.finding is not None and event.finding.severity is expected


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"Compliance": {"Status": "PASSED"}}, "PASSED"),
        ({"RecordState": "ARCHIVED"}, "ARCHIVED"),
        ({"Workflow": {"Status": "SUPPRESSED"}}, "SUPPRESSED"),
        ({"Workflow": {"Status": "RESOLVED"}, "Compliance": {"Status": "PASSED"}}, "RESOLVED"),
        ({"Compliance": None, "Workflow": {"Status": "NOTIFIED"}}, "NOTIFIED"),
        ({"Compliance": None, "Workflow": None}, "ACTIVE"),
    ],
)
def test_status(changes: dict[str, Any], status: str) -> None:
    event = _one(_finding(**changes))

    assert event.finding is not None and event.finding.status == status


def test_inactive_statuses() -> None:
    assert {"ARCHIVED", "PASSED", "SUPPRESSED", "RESOLVED"} == INACTIVE_FINDING_STATUSES


def test_product_name_falls_back_to_product_fields_then_arn() -> None:
    finding = _finding(ProductFields={"aws/securityhub/ProductName": "Inspector"})
    del finding["ProductName"]
    event = _one(finding)
    assert event.finding is not None and event.finding.product == "securityhub/Inspector"

    del finding["ProductFields"]
    event = _one(finding)
    assert event.finding is not None and event.finding.product == "securityhub/securityhub"


def test_guardduty_finding_imported_into_security_hub_keeps_api_and_ip() -> None:
    # GuardDuty findings in ASFF keep their details flattened in ProductFields (cloud-custodian placebo data).
    finding = _finding(
        ProductArn="arn:aws:securityhub:us-east-1::product/aws/guardduty",
        ProductFields={
            "action/awsApiCallAction/api": "DescribeInstances",
            "action/awsApiCallAction/serviceName": "ec2.amazonaws.com",
            "aws/guardduty/service/action/awsApiCallAction/remoteIpDetails/ipAddressV4": "204.0.113.36",
        },
    )

    event = _one(finding)

    assert (event.action, event.source_ip) == ("ec2:DescribeInstances", "204.0.113.36")


def test_asff_action_and_network_fields() -> None:
    finding = _finding(
        Action={
            "ActionType": "AWS_API_CALL",
            "AwsApiCallAction": {
                "Api": "GetObject",
                "ServiceName": "s3.amazonaws.com",
                "RemoteIpDetails": {"IpAddressV4": "198.51.100.5"},
            },
        }
    )
    assert (_one(finding).action, _one(finding).source_ip) == ("s3:GetObject", "198.51.100.5")

    assert _one(_finding(Network={"SourceIpV4": "192.0.2.8"})).source_ip == "192.0.2.8"


def test_bare_findings_detail_is_accepted() -> None:
    assert len(_all({"findings": [_finding(), _finding(Id="b")]})) == 2


def test_severity_missing_is_rejected() -> None:
    finding = _finding()
    del finding["Severity"]

    with pytest.raises(EventRejectedError, match=r"^hub.json:3: ASFF finding: Severity: missing$"):
        _one(finding)


def test_a_finding_cordon_generated_itself_is_not_correlated_again() -> None:
    from correlators.config import Config
    from correlators.errors import EventRejectedError
    from correlators.ingest import RawRecord
    from correlators.normalize import normalize

    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": "inc-0123456789abcdef",
        "ProductArn": "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default",
        "GeneratorId": "cordon/ml_credential_finding_then_ml_access",
        "AwsAccountId": "111122223333",
        "Types": ["TTPs/Credential Access"],
        "CreatedAt": "2026-11-20T10:00:00Z",
        "UpdatedAt": "2026-11-20T10:00:00Z",
        "Severity": {"Label": "CRITICAL"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": "x"}],
        "ProductFields": {"cordon/generated": "true"},
    }
    with pytest.raises(EventRejectedError, match="generated by Cordon itself"):
        normalize(RawRecord(payload=finding, where="f.json:1"), Config())
