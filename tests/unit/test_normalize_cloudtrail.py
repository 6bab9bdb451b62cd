"""CloudTrail records, bare and inside EventBridge events."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import EntityType, EventSource, NormalizedEvent, Resource
from correlators.normalize import normalize

ACCOUNT = "111122223333"
IAM_USER = {
    "type": "IAMUser",
    "principalId": "AIDACKCEVSQ6C2EXAMPLE",
    "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
    "accountId": ACCOUNT,
    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
    "userName": "alice",
}


def _record(**overrides: Any) -> dict[str, Any]:
    # Shape from the CloudTrail User Guide, "CloudTrail record contents" (data event for S3 GetObject).
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": copy.deepcopy(IAM_USER),
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"bucketName": "ml-data", "key": "train/part-0001.parquet"},
        "responseElements": None,
        "eventID": "3f1b5d1e-0000-4000-8000-000000000001",
        "readOnly": True,
        "resources": [
            {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::ml-data/train/part-0001.parquet"},
            {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::ml-data"},
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
    }
    record.update(overrides)
    return record


def _one(payload: dict[str, Any], config: Config | None = None) -> NormalizedEvent:
    events = normalize(RawRecord(payload, "events.json:7"), config or Config())
    assert len(events) == 1
    return events[0]


def _envelope(detail: dict[str, Any], detail_type: str = "AWS API Call via CloudTrail") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2024-05-01T12:00:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def test_s3_data_event() -> None:
    event = _one(_record())

    assert event.event_id == "3f1b5d1e-0000-4000-8000-000000000001"
    assert event.time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert event.source is EventSource.CLOUDTRAIL
    assert (event.account, event.region) == (ACCOUNT, "us-east-1")
    assert event.action == "s3:GetObject"
    assert (event.outcome, event.error_code) == ("success", None)
    assert event.source_ip == "203.0.113.7"
    assert event.user_agent == "aws-cli/2.15.0"
    assert event.resources == [
        Resource(type=EntityType.OBJECT, id="s3://ml-data/train/part-0001.parquet"),
        Resource(type=EntityType.BUCKET, id="arn:aws:s3:::ml-data"),
    ]
    assert event.raw["eventName"] == "GetObject"
    assert event.origin == "events.json:7"


def test_error_code_means_failure() -> None:
    event = _one(_record(errorCode="AccessDenied", errorMessage="Access Denied"))

    assert (event.outcome, event.error_code) == ("failure", "AccessDenied")


def test_eventbridge_envelope_gives_the_same_event_with_raw_being_the_record() -> None:
    record = _record()
    del record["recipientAccountId"]

    event = _one(_envelope(record))

    assert event.event_id == "3f1b5d1e-0000-4000-8000-000000000001"
    assert event.action == "s3:GetObject"
    assert event.raw == record
    assert event.account == ACCOUNT  # from userIdentity, then the envelope


def test_console_sign_in_detail_type_is_cloudtrail() -> None:
    record = _record(
        eventSource="signin.amazonaws.com", eventName="ConsoleLogin", requestParameters=None, resources=None
    )

    event = _one(_envelope(record, "AWS Console Sign In via CloudTrail"))

    assert event.action == "signin:ConsoleLogin"


def test_source_ip_keeps_only_addresses() -> None:
    # CloudTrail writes the calling service there when a service acts for the principal.
    assert _one(_record(sourceIPAddress="AWS Internal")).source_ip is None
    assert _one(_record(sourceIPAddress="athena.amazonaws.com")).source_ip is None
    assert _one(_record(sourceIPAddress="2001:db8::1")).source_ip == "2001:db8::1"


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"endpointName": "Fraud-Detector-Prod"},
            [
                Resource(
                    type=EntityType.SAGEMAKER_ENDPOINT,
                    id="arn:aws:sagemaker:us-east-1:111122223333:endpoint/fraud-detector-prod",
                )
            ],
        ),
        (
            {"modelName": "FraudModel", "notebookInstanceName": "Research-NB", "trainingJobName": "Train-42"},
            [
                Resource(
                    type=EntityType.SAGEMAKER_MODEL, id="arn:aws:sagemaker:us-east-1:111122223333:model/fraudmodel"
                ),
                Resource(
                    type=EntityType.SAGEMAKER_NOTEBOOK,
                    id="arn:aws:sagemaker:us-east-1:111122223333:notebook-instance/research-nb",
                ),
                Resource(
                    type=EntityType.SAGEMAKER_TRAINING_JOB,
                    id="arn:aws:sagemaker:us-east-1:111122223333:training-job/train-42",
                ),
            ],
        ),
        (
            {"modelPackageName": "arn:aws:sagemaker:us-east-1:111122223333:model-package/fraud/3"},
            [
                Resource(
                    type=EntityType.SAGEMAKER_MODEL_PACKAGE,
                    id="arn:aws:sagemaker:us-east-1:111122223333:model-package/fraud/3",
                )
            ],
        ),
        (
            {"modelPackageGroupName": "Fraud"},
            [
                Resource(
                    type=EntityType.SAGEMAKER_MODEL_PACKAGE,
                    id="arn:aws:sagemaker:us-east-1:111122223333:model-package-group/fraud",
                )
            ],
        ),
    ],
)
def test_sagemaker_parameters_become_lowercased_arns(parameters: dict[str, str], expected: list[Resource]) -> None:
    record = _record(
        eventSource="sagemaker.amazonaws.com", eventName="InvokeEndpoint", requestParameters=parameters, resources=None
    )

    assert _one(record).resources == expected


def test_api_gateway_parameters() -> None:
    record = _record(
        eventSource="apigateway.amazonaws.com",
        eventName="UpdateApiKey",
        resources=None,
        requestParameters={"restApiId": "a1b2c3d4e5", "apiKey": "k9k9k9k9k9"},
    )

    assert _one(record).resources == [
        Resource(type=EntityType.API, id="arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5"),
        Resource(type=EntityType.API_KEY, id="arn:aws:apigateway:us-east-1::/apikeys/k9k9k9k9k9"),
    ]


def test_ec2_and_ssm_instance_ids() -> None:
    record = _record(
        eventSource="ec2.amazonaws.com",
        eventName="StopInstances",
        resources=None,
        requestParameters={"instancesSet": {"items": [{"instanceId": "i-0abc12345def67890"}]}},
        responseElements={"instancesSet": {"items": [{"instanceId": "i-0abc12345def67890"}, {"x": 1}]}},
    )
    send_command = _record(
        eventSource="ssm.amazonaws.com",
        eventName="SendCommand",
        resources=None,
        requestParameters={"instanceIds": ["i-11111111", "not-an-instance"]},
    )

    assert _one(record).resources == [Resource(type=EntityType.INSTANCE, id="i-0abc12345def67890")]
    assert _one(send_command).resources == [Resource(type=EntityType.INSTANCE, id="i-11111111")]


def test_events_naming_one_instance_share_its_resource() -> None:
    # GIVEN two calls naming the same instance, and one naming an id that is no instance id
    stop = _record(
        eventSource="ec2.amazonaws.com",
        eventName="StopInstances",
        resources=None,
        requestParameters={"instanceId": "i-0abc12345def67890"},
    )
    start = _record(
        eventSource="ec2.amazonaws.com",
        eventName="StartInstances",
        resources=None,
        requestParameters={"instanceId": "i-0abc12345def67890"},
    )
    odd = _record(
        eventSource="ec2.amazonaws.com",
        eventName="StopInstances",
        resources=None,
        requestParameters={"instanceId": "vol-0abc12345def67890"},
    )

    # WHEN they are normalized
    first, second, third = _one(stop), _one(start), _one(odd)

    # THEN the instance is one shared (frozen) Resource, and the odd id names none
    assert first.resources == [Resource(type=EntityType.INSTANCE, id="i-0abc12345def67890")]
    assert first.resources[0] is second.resources[0]
    assert third.resources == []


def test_iam_target_user_stays_in_raw_only() -> None:
    record = _record(
        eventSource="iam.amazonaws.com",
        eventName="CreateAccessKey",
        resources=None,
        requestParameters={"userName": "bob"},
    )

    event = _one(record)

    assert event.action == "iam:CreateAccessKey"
    assert event.resources == []
    assert event.raw["requestParameters"]["userName"] == "bob"


def test_insight_event_takes_the_api_from_insight_details() -> None:
    # Shape from the CloudTrail User Guide, "CloudTrail log file examples" (Insights).
    record = {
        "eventVersion": "1.07",
        "eventTime": "2019-11-14T00:51:00Z",
        "awsRegion": "us-east-1",
        "eventID": "EXAMPLE8-9621-4d00-b913-beca2EXAMPLE",
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT,
        "insightDetails": {
            "state": "Start",
            "eventSource": "ssm.amazonaws.com",
            "eventName": "UpdateInstanceInformation",
        },
        "eventCategory": "Insight",
    }

    event = _one(record)

    assert event.action == "ssm:UpdateInstanceInformation"
    assert event.actor is None
    assert event.raw == record


def test_record_without_event_id_gets_a_stable_content_id() -> None:
    # eventVersion 1.0 records (2014) predate eventID.
    record = _record(eventVersion="1.0")
    del record["eventID"]

    first, again = _one(record), _one(copy.deepcopy(record))

    assert first.event_id.startswith("sha256:") and first.event_id == again.event_id
    assert first.event_id != _one(_record(eventVersion="1.0", eventName="PutObject", eventID=None)).event_id


def test_missing_required_fields_are_all_named() -> None:
    record = _record()
    del record["eventTime"]

    with pytest.raises(EventRejectedError, match=r"^events.json:7: CloudTrail record: eventTime: missing$"):
        _one(record)


def test_every_missing_field_is_named() -> None:
    # The Bedrock sample in cloud-custodian's test data lacks both.
    record = {"eventVersion": "1.08", "eventSource": "bedrock.amazonaws.com"}

    with pytest.raises(EventRejectedError) as caught:
        _one(record)

    assert caught.value.reason == "CloudTrail record: eventTime: missing; eventName: missing"
    assert caught.value.where == "events.json:7"


def test_non_string_time_is_rejected() -> None:
    with pytest.raises(EventRejectedError, match=r"eventTime: expected an ISO-8601 timestamp string, got 5$"):
        _one(_record(eventTime=5))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-13-01T00:00:00Z", "impossible timestamp '2024-13-01T00:00:00Z' (month must be in 1..12)"),
        ("1999-12-31T23:59:59Z", "impossible timestamp '1999-12-31T23:59:59Z' (year outside 2000..2100)"),
        ("2101-01-01T00:00:00Z", "impossible timestamp '2101-01-01T00:00:00Z' (year outside 2000..2100)"),
        ("yesterday", "impossible timestamp 'yesterday' (Invalid isoformat string: 'yesterday')"),
    ],
)
def test_impossible_timestamps_are_rejected(value: str, reason: str) -> None:
    with pytest.raises(EventRejectedError, match=f"^events.json:7: CloudTrail record: eventTime: {re.escape(reason)}$"):
        _one(_record(eventTime=value))


def test_timestamps_are_utc_whatever_the_offset() -> None:
    assert _one(_record(eventTime="2024-05-01T14:00:00+02:00")).time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert _one(_record(eventTime="2024-05-01T12:00:00.123+0000")).time.tzinfo is UTC
    assert _one(_record(eventTime="2024-05-01T12:00:00")).time == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_wrong_types_are_rejected() -> None:
    with pytest.raises(
        EventRejectedError, match=r"CloudTrail record: eventName: input should be a valid string, got 42"
    ):
        _one(_record(eventName=42))
    with pytest.raises(EventRejectedError, match=r"CloudTrail record: requestParameters: input should be a valid dict"):
        _one(_record(requestParameters=["a"]))
