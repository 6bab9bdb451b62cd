"""Identity resolution: keys to users, sessions to roles (and instances), findings and calls to one node."""

from __future__ import annotations

from typing import Any

import pytest

from correlators.config import Config
from correlators.ingest import RawRecord
from correlators.model import IDENTITY_TYPES, Actor, NormalizedEvent
from correlators.normalize import normalize
from correlators.normalize.identity import from_cloudtrail, role_arn_from_session

ACCOUNT = "111122223333"
INSTANCE = "i-0a1b2c3d4e5f60718"
ROLE_KEY = "ASIAQNZGKIQY56JQ7WML"
USER_KEY = "AKIAQNZGKIQYEXAMPLE1"


def _normalize(payload: dict[str, Any]) -> NormalizedEvent:
    [event] = normalize(RawRecord(payload, "test:1"), Config())
    return event


def _identity_keys(event: NormalizedEvent) -> set[str]:
    return {entity.key for entity in event.entities() if entity.type in IDENTITY_TYPES}


def _cloudtrail(user_identity: dict[str, Any], event_name: str = "ListBuckets") -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": user_identity,
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "eventID": "00000000-0000-4000-8000-000000000001",
        "recipientAccountId": ACCOUNT,
    }


def _instance_role_identity() -> dict[str, Any]:
    # An EC2 instance-profile session, as CloudTrail records it (session name = instance id).
    return {
        "type": "AssumedRole",
        "principalId": f"AROAQNZGKIQY3EXAMPLE:{INSTANCE}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ml-training-role/{INSTANCE}",
        "accountId": ACCOUNT,
        "accessKeyId": ROLE_KEY,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAQNZGKIQY3EXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/service-role/ml-training-role",
                "accountId": ACCOUNT,
                "userName": "ml-training-role",
            },
            "attributes": {"creationDate": "2024-05-01T11:00:00Z", "mfaAuthenticated": "false"},
            "ec2RoleDelivery": "2.0",
        },
    }


def _guardduty(access_key_details: dict[str, Any], finding_type: str) -> dict[str, Any]:
    # Shape from the GuardDuty User Guide, "Finding details" (resource.accessKeyDetails, awsApiCallAction).
    return {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": "us-east-1",
        "partition": "aws",
        "id": "c2c6a7d0e3f4b5a6978812345678abcd",
        "arn": f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/12abc34d567e8fa901bc2d34eexample/finding/c2c6",
        "type": finding_type,
        "resource": {"resourceType": "AccessKey", "accessKeyDetails": access_key_details},
        "service": {
            "serviceName": "guardduty",
            "action": {
                "actionType": "AWS_API_CALL",
                "awsApiCallAction": {
                    "api": "ListBuckets",
                    "serviceName": "s3.amazonaws.com",
                    "callerType": "Remote IP",
                    "remoteIpDetails": {"ipAddressV4": "198.51.100.23"},
                },
            },
            "eventFirstSeen": "2024-05-01T12:00:00.000Z",
            "eventLastSeen": "2024-05-01T12:05:00.000Z",
            "archived": False,
            "count": 3,
        },
        "severity": 8,
        "createdAt": "2024-05-01T12:06:00.000Z",
        "updatedAt": "2024-05-01T12:06:00.000Z",
        "title": "Credentials for an EC2 instance role were used from outside AWS.",
    }


def test_iam_user_key_resolves_to_the_user() -> None:
    identity = {
        "type": "IAMUser",
        "principalId": "AIDAQNZGKIQYEXAMPLE",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/data/alice",
        "accountId": ACCOUNT,
        "accessKeyId": USER_KEY,
        "userName": "alice",
    }

    assert from_cloudtrail(identity, ACCOUNT) == Actor(
        principal=f"arn:aws:iam::{ACCOUNT}:user/data/alice",
        principal_type="IAMUser",
        user_name="alice",
        access_key=USER_KEY,
        account=ACCOUNT,
    )


def test_iam_user_without_arn_and_empty_key() -> None:
    # A failed ConsoleLogin: no ARN, accessKeyId "".
    identity = {"type": "IAMUser", "principalId": "AIDA", "accountId": ACCOUNT, "accessKeyId": "", "userName": "anaya"}

    actor = from_cloudtrail(identity, ACCOUNT)

    assert actor is not None
    assert (actor.principal, actor.access_key) == (f"arn:aws:iam::{ACCOUNT}:user/anaya", None)


def test_instance_profile_session_resolves_to_role_with_path_session_and_instance() -> None:
    actor = from_cloudtrail(_instance_role_identity(), ACCOUNT)

    assert actor == Actor(
        principal=f"arn:aws:iam::{ACCOUNT}:role/service-role/ml-training-role",
        principal_type="AssumedRole",
        access_key=ROLE_KEY,
        session=f"arn:aws:sts::{ACCOUNT}:assumed-role/ml-training-role/{INSTANCE}",
        session_name=INSTANCE,
        instance=INSTANCE,
        account=ACCOUNT,
    )


def test_session_without_issuer_derives_the_role_arn() -> None:
    identity = {
        "type": "AssumedRole",
        "arn": "arn:aws-cn:sts::111122223333:assumed-role/Admin/jane@example.com",
        "accountId": ACCOUNT,
    }

    actor = from_cloudtrail(identity, ACCOUNT)

    assert actor is not None
    assert actor.principal == "arn:aws-cn:iam::111122223333:role/Admin"
    assert (actor.session_name, actor.instance) == ("jane@example.com", None)


def test_role_arn_from_session_rejects_other_arns() -> None:
    assert role_arn_from_session(f"arn:aws:iam::{ACCOUNT}:user/alice") is None
    assert role_arn_from_session("not an arn") is None


@pytest.mark.parametrize(
    ("identity", "principal", "principal_type"),
    [
        (
            {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT},
            f"arn:aws:iam::{ACCOUNT}:root",
            "Root",
        ),
        # A service is no principal of the account (it would glue everyone it serves together); invoked_by keeps it.
        ({"type": "AWSService", "invokedBy": "rds.amazonaws.com"}, None, "AWSService"),
        # Service events name no type, only invokedBy.
        (
            {"accountId": ACCOUNT, "invokedBy": "secretsmanager.amazonaws.com"},
            None,
            "AWSService",
        ),
        (
            {"type": "AWSAccount", "principalId": "AIDA:x", "accountId": "444455556666"},
            "arn:aws:iam::444455556666:root",
            "AWSAccount",
        ),
        (
            {
                "type": "IdentityCenterUser",
                "accountId": ACCOUNT,
                "onBehalfOf": {
                    "userId": "544894e8-80c1-707f-60e3-3ba6510dfac1",
                    "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-9067642ac7",
                },
            },
            "arn:aws:identitystore:::user/544894e8-80c1-707f-60e3-3ba6510dfac1",
            "IdentityCenterUser",
        ),
        ({"type": "SAMLUser", "principalId": "SAMPLE", "userName": "bob"}, None, "SAMLUser"),
    ],
)
def test_other_identity_types(identity: dict[str, Any], principal: str | None, principal_type: str) -> None:
    actor = from_cloudtrail(identity, ACCOUNT)

    assert actor is not None
    assert (actor.principal, actor.principal_type) == (principal, principal_type)


def test_federated_user_resolves_to_the_iam_user_who_minted_it() -> None:
    # From the Stratus Red Team detonation log of aws.persistence.sts-federation-token.
    identity = {
        "type": "FederatedUser",
        "principalId": "742491224508:stratus_red_team",
        "arn": "arn:aws:sts::742491224508:federated-user/stratus_red_team",
        "accountId": "742491224508",
        "accessKeyId": "ASIASTJKC5GCM7ZE6LUP",
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "userName": "fed-user",
                "arn": "arn:aws:iam::742491224508:user/fed-user",
            }
        },
    }

    actor = from_cloudtrail(identity, None)

    assert actor is not None
    assert actor.principal == "arn:aws:iam::742491224508:user/fed-user"
    assert actor.session == "arn:aws:sts::742491224508:federated-user/stratus_red_team"
    assert actor.session_name == "stratus_red_team"


def test_invoked_by_is_recorded() -> None:
    identity = _instance_role_identity() | {"invokedBy": "sagemaker.amazonaws.com"}

    actor = from_cloudtrail(identity, ACCOUNT)

    assert actor is not None and actor.invoked_by == "sagemaker.amazonaws.com"


@pytest.mark.parametrize("misplaced", [["a", "list"], {"an": "object"}, 7, True, ""])
def test_a_value_of_the_wrong_type_counts_as_absent_whether_or_not_it_can_be_a_cache_key(misplaced: Any) -> None:
    # Lists and objects cannot key the identity cache; 7 and True (equal to 1 and 1.0) can, and must not make two
    # identities that differ only there resolve differently: every non-string reads as no value at all.
    expected = from_cloudtrail(_instance_role_identity() | {"userName": None}, ACCOUNT)

    actor = from_cloudtrail(_instance_role_identity() | {"userName": misplaced}, ACCOUNT)

    assert actor == expected
    assert actor is not None and actor.principal == f"arn:aws:iam::{ACCOUNT}:role/service-role/ml-training-role"


def test_a_session_context_or_issuer_that_is_no_object_is_ignored() -> None:
    for context in ("text", {"sessionIssuer": ["not", "an", "object"]}):
        identity = _instance_role_identity() | {"sessionContext": context}

        actor = from_cloudtrail(identity, ACCOUNT)

        # The role comes from the session ARN instead (without the issuer's path).
        assert actor is not None and actor.principal == f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"


def test_no_identity_is_no_actor() -> None:
    assert from_cloudtrail(None, ACCOUNT) is None
    assert from_cloudtrail({}, ACCOUNT) is None


def test_guardduty_instance_credentials_and_cloudtrail_calls_meet_on_the_same_nodes() -> None:
    # GIVEN a GuardDuty finding about an instance role's credentials used outside AWS
    finding = _guardduty(
        {
            "accessKeyId": ROLE_KEY,
            "principalId": f"AROAQNZGKIQY3EXAMPLE:{INSTANCE}",
            "userName": "ml-training-role",
            "userType": "AssumedRole",
        },
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    )
    # AND the CloudTrail call made with those credentials (a role without a path: GuardDuty only has its name)
    identity = _instance_role_identity()
    identity["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"
    call = _cloudtrail(identity)

    # WHEN both are normalized
    from_finding, from_call = _normalize(finding), _normalize(call)

    # THEN they name the same principal, key, session and instance
    assert from_finding.actor is not None
    assert from_finding.actor.principal == f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"
    assert from_finding.actor.instance == INSTANCE
    assert (
        _identity_keys(from_finding)
        == _identity_keys(from_call)
        == {
            f"principal:arn:aws:iam::{ACCOUNT}:role/ml-training-role",
            f"access_key:{ROLE_KEY}",
            f"session:arn:aws:sts::{ACCOUNT}:assumed-role/ml-training-role/{INSTANCE}",
            f"instance:{INSTANCE}",
        }
    )


def test_role_path_only_cloudtrail_knows_still_meets_on_key_session_and_instance() -> None:
    finding = _guardduty(
        {
            "accessKeyId": ROLE_KEY,
            "principalId": f"AROA:{INSTANCE}",
            "userName": "ml-training-role",
            "userType": "AssumedRole",
        },
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    )

    shared = _identity_keys(_normalize(finding)) & _identity_keys(_normalize(_cloudtrail(_instance_role_identity())))

    assert shared == {
        f"access_key:{ROLE_KEY}",
        f"session:arn:aws:sts::{ACCOUNT}:assumed-role/ml-training-role/{INSTANCE}",
        f"instance:{INSTANCE}",
    }


def test_guardduty_iam_user_key_and_cloudtrail_call_meet_on_the_same_nodes() -> None:
    finding = _guardduty(
        {"accessKeyId": USER_KEY, "principalId": "AIDAQNZGKIQYEXAMPLE", "userName": "alice", "userType": "IAMUser"},
        "UnauthorizedAccess:IAMUser/TorIPCaller",
    )
    call = _cloudtrail(
        {
            "type": "IAMUser",
            "principalId": "AIDAQNZGKIQYEXAMPLE",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "accessKeyId": USER_KEY,
            "userName": "alice",
        }
    )

    from_finding = _normalize(finding)

    assert from_finding.actor is not None
    assert (from_finding.actor.principal, from_finding.actor.user_name) == (
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        "alice",
    )
    assert (
        _identity_keys(from_finding)
        == _identity_keys(_normalize(call))
        == {
            f"principal:arn:aws:iam::{ACCOUNT}:user/alice",
            f"access_key:{USER_KEY}",
        }
    )


def test_guardduty_root_key() -> None:
    finding = _guardduty(
        {"accessKeyId": USER_KEY, "principalId": ACCOUNT, "userName": "Root", "userType": "Root"},
        "Policy:IAMUser/RootCredentialUsage",
    )

    actor = _normalize(finding).actor

    assert actor is not None and actor.principal == f"arn:aws:iam::{ACCOUNT}:root"


def test_asff_access_key_and_cloudtrail_call_meet_on_the_same_nodes() -> None:
    # A GuardDuty finding as Security Hub imports it (ASFF): the key is an AwsIamAccessKey resource.
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/d/finding/f",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "GeneratorId": "arn:aws:guardduty:us-east-1:111122223333:detector/d",
        "AwsAccountId": ACCOUNT,
        "Types": ["TTPs/Initial Access/UnauthorizedAccess:IAMUser-TorIPCaller"],
        "CreatedAt": "2024-05-01T12:06:00.000Z",
        "UpdatedAt": "2024-05-01T12:06:00.000Z",
        "Severity": {"Label": "MEDIUM", "Normalized": 50},
        "Title": "API ListBuckets was invoked from a Tor exit node.",
        "Resources": [
            {
                "Type": "AwsIamAccessKey",
                "Id": f"AWS::IAM::AccessKey:{USER_KEY}",
                "Partition": "aws",
                "Region": "us-east-1",
                "Details": {
                    "AwsIamAccessKey": {
                        "PrincipalId": "AIDAQNZGKIQYEXAMPLE",
                        "PrincipalName": "alice",
                        "PrincipalType": "IAMUser",
                    }
                },
            }
        ],
    }
    call = _cloudtrail(
        {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "accessKeyId": USER_KEY,
            "userName": "alice",
        }
    )

    assert (
        _identity_keys(_normalize(finding))
        == _identity_keys(_normalize(call))
        == {
            f"principal:arn:aws:iam::{ACCOUNT}:user/alice",
            f"access_key:{USER_KEY}",
        }
    )


def test_asff_access_key_with_only_a_user_name_and_no_key_id() -> None:
    # Older findings: Details.AwsIamAccessKey.UserName, and an Id without a key ("AWS::IAM::AccessKey:null").
    finding_resources = [
        {
            "Type": "AwsIamAccessKey",
            "Id": "AWS::IAM::AccessKey:null",
            "Details": {"AwsIamAccessKey": {"UserName": "kapil"}},
        }
    ]
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": "f-1",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
        "AwsAccountId": ACCOUNT,
        "Types": ["t"],
        "UpdatedAt": "2024-05-01T12:00:00Z",
        "Severity": {"Label": "LOW"},
        "Resources": finding_resources,
    }

    actor = _normalize(finding).actor

    assert actor is not None
    assert (actor.principal, actor.access_key) == (f"arn:aws:iam::{ACCOUNT}:user/kapil", None)


def test_asff_role_and_user_resources_are_the_actor_not_resources() -> None:
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": "f-2",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "AwsAccountId": ACCOUNT,
        "Types": ["t"],
        "UpdatedAt": "2024-05-01T12:00:00Z",
        "Severity": {"Label": "LOW"},
        "Resources": [
            {"Type": "AwsIamRole", "Id": f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"},
            {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::ml-data"},
        ],
    }

    event = _normalize(finding)

    assert event.actor is not None and event.actor.principal == f"arn:aws:iam::{ACCOUNT}:role/ml-training-role"
    assert [r.id for r in event.resources] == ["arn:aws:s3:::ml-data"]
