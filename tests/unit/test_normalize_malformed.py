"""Malformed input of every kind is rejected with EventRejectedError; no other exception escapes normalize.

Each fixture below is valid; every value in it, at every depth, is swapped in turn for a value of each JSON type.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.normalize import normalize

CONFIG = Config(assets={"ml": ["s3://ml-data/*", "arn:aws:sagemaker:*"]})
SWAPS: tuple[Any, ...] = (None, 0, 1.5, True, "", "x", [], [1], {}, {"a": 1})

CLOUDTRAIL = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "AssumedRole",
        "principalId": "AROA:i-0a1b2c3d4e5f60718",
        "arn": "arn:aws:sts::111122223333:assumed-role/r/i-0a1b2c3d4e5f60718",
        "accountId": "111122223333",
        "accessKeyId": "ASIAQNZGKIQY56JQ7WML",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/r"},
            "ec2RoleDelivery": "2.0",
        },
    },
    "eventTime": "2024-05-01T12:00:00Z",
    "eventSource": "sagemaker.amazonaws.com",
    "eventName": "InvokeEndpoint",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "198.51.100.1",
    "requestParameters": {
        "endpointName": "e",
        "bucketName": "ml-data",
        "key": "k",
        "restApiId": "a",
        "instancesSet": {"items": [{"instanceId": "i-0a1b2c3d4e5f60718"}]},
    },
    "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::ml-data/k"}],
    "eventID": "e-1",
    "recipientAccountId": "111122223333",
}
GUARDDUTY = {
    "detail-type": "GuardDuty Finding",
    "id": "envelope-id",
    "account": "111122223333",
    "region": "us-east-1",
    "detail": {
        "accountId": "111122223333",
        "id": "f-1",
        "type": "Exfiltration:S3/AnomalousBehavior",
        "partition": "aws",
        "resource": {
            "accessKeyDetails": {
                "accessKeyId": "ASIA",
                "principalId": "AROA:i-0a1b2c3d",
                "userName": "r",
                "userType": "AssumedRole",
            },
            "instanceDetails": {"instanceId": "i-0a1b2c3d"},
            "s3BucketDetails": [{"name": "ml-data"}],
        },
        "service": {
            "serviceName": "guardduty",
            "action": {
                "awsApiCallAction": {
                    "api": "GetObject",
                    "serviceName": "s3.amazonaws.com",
                    "errorCode": "Denied",
                    "remoteIpDetails": {"ipAddressV4": "198.51.100.2"},
                    "userAgent": {"fullUserAgent": "cli"},
                },
                "portProbeAction": {"portProbeDetails": [{"remoteIpDetails": {"ipAddressV4": "198.51.100.3"}}]},
            },
            "eventLastSeen": "2024-05-01T12:00:00Z",
            "archived": False,
        },
        "severity": 8,
        "updatedAt": "2024-05-01T12:00:00Z",
        "title": "t",
    },
}
SECURITY_HUB = {
    "detail-type": "Security Hub Findings - Imported",
    "region": "us-east-1",
    "detail": {
        "findings": [
            {
                "SchemaVersion": "2018-10-08",
                "Id": "f-2",
                "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
                "GeneratorId": "g",
                "AwsAccountId": "111122223333",
                "Types": ["t"],
                "UpdatedAt": "2024-05-01T12:00:00Z",
                "Severity": {"Label": "HIGH", "Normalized": 70},
                "ProductFields": {"action/awsApiCallAction/api": "GetObject"},
                "Resources": [
                    {
                        "Type": "AwsIamAccessKey",
                        "Id": "AKIAQNZGKIQYEXAMPLE1",
                        "Details": {"AwsIamAccessKey": {"PrincipalName": "alice", "PrincipalType": "IAMUser"}},
                    },
                    {"Type": "AwsIamRole", "Id": "arn:aws:iam::111122223333:role/r"},
                    {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::ml-data", "Region": "us-east-1"},
                ],
                "Workflow": {"Status": "NEW"},
                "Compliance": {"Status": "FAILED"},
                "RecordState": "ACTIVE",
                "Action": {
                    "AwsApiCallAction": {
                        "Api": "GetObject",
                        "ServiceName": "s3",
                        "RemoteIpDetails": {"IpAddressV4": "198.51.100.4"},
                    }
                },
                "Network": {"SourceIpV4": "198.51.100.5"},
            }
        ]
    },
}
ALARM = {
    "detail-type": "CloudWatch Alarm State Change",
    "id": "a-1",
    "account": "111122223333",
    "region": "us-east-1",
    "time": "2024-05-01T12:00:00Z",
    "detail": {
        "alarmName": "n",
        "state": {"value": "ALARM", "reason": "r", "timestamp": "2024-05-01T12:00:00.000+0000"},
        "previousState": {"value": "OK"},
        "configuration": {
            "metrics": [
                {
                    "id": "m",
                    "returnData": True,
                    "metricStat": {
                        "metric": {
                            "namespace": "AWS/SageMaker",
                            "name": "Invocation5XXErrors",
                            "dimensions": {
                                "EndpointName": "e",
                                "ApiName": "a",
                                "ApiId": "b",
                                "InstanceId": "i-0a1b2c3d",
                            },
                        }
                    },
                }
            ]
        },
    },
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _swapped(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    node: Any = copied
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copied


@pytest.mark.parametrize(
    "fixture", [CLOUDTRAIL, GUARDDUTY, SECURITY_HUB, ALARM], ids=["cloudtrail", "guardduty", "securityhub", "alarm"]
)
def test_the_valid_fixture_is_accepted(fixture: dict[str, Any]) -> None:
    assert normalize(RawRecord(fixture, "f:1"), CONFIG)


@pytest.mark.parametrize(
    "fixture", [CLOUDTRAIL, GUARDDUTY, SECURITY_HUB, ALARM], ids=["cloudtrail", "guardduty", "securityhub", "alarm"]
)
def test_any_value_of_any_type_anywhere_is_accepted_or_rejected_never_a_crash(fixture: dict[str, Any]) -> None:
    outcomes = {"accepted": 0, "rejected": 0}
    for path in _paths(fixture):
        for value in SWAPS:
            try:
                normalize(RawRecord(_swapped(fixture, path, value), "f:1"), CONFIG)
                outcomes["accepted"] += 1
            except EventRejectedError as error:
                assert error.where == "f:1" and error.reason
                outcomes["rejected"] += 1

    assert outcomes["accepted"] and outcomes["rejected"]
