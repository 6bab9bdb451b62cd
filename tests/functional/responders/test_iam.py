"""IAM responders against moto: one key of several, older sessions, quarantine; refusals and rollback."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from responders.base import ResponderError, Target, get_responder
from responders.iam import QuarantineParams, RevokeSessions

from .conftest import ACCOUNT

NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})


def _role(aws: Any, name: str, path: str = "/") -> str:
    return str(aws.client("iam").create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])


def _user_with_keys(aws: Any, name: str = "alice", count: int = 2) -> list[str]:
    iam = aws.client("iam")
    iam.create_user(UserName=name)
    return [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(count)]


def _keys(aws: Any, user: str = "alice") -> dict[str, str]:
    keys = aws.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {key["AccessKeyId"]: key["Status"] for key in keys}


def _inline(aws: Any, role: str) -> dict[str, Any]:
    iam = aws.client("iam")
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"] for name in names}


def _context(make_context: Any, aws: Any, incident_id: str = "inc-0000000000000001", now: datetime = NOW) -> Any:
    ctx = make_context(aws, {"id": incident_id, "actions": []})
    ctx.now = now
    return ctx


# --- iam.deactivate-access-key --------------------------------------------------------------------------------------
def test_deactivate_access_key_deactivates_only_the_named_key(aws: Any, make_context: Any) -> None:
    # GIVEN a user with two active keys (Cloud Custodian #5583 deactivated both)
    named, other = _user_with_keys(aws)
    responder, ctx, target = get_responder("iam.deactivate-access-key"), make_context(aws), Target("access_key", named)
    params = responder.Params()

    # WHEN the responder reads state and applies
    before = responder.read_state(ctx, target, params)
    assert _keys(aws) == {named: "Active", other: "Active"}  # reading changed nothing
    after = responder.apply(ctx, target, params, before)

    # THEN only the named key is inactive, and the state says so
    assert _keys(aws) == {named: "Inactive", other: "Active"}
    assert before["status"] == "Active" and before["user_name"] == "alice"
    assert after["status"] == "Inactive" and after["previous_status"] == "Active"

    # AND applying again changes nothing and succeeds
    again = responder.apply(ctx, target, params, responder.read_state(ctx, target, params))
    assert again["status"] == "Inactive" and _keys(aws) == {named: "Inactive", other: "Active"}

    # AND rollback (from the first apply's record) makes it active again
    restored = responder.rollback(ctx, target, params, before, after)
    assert restored["status"] == "Active" and _keys(aws) == {named: "Active", other: "Active"}


def test_deactivate_access_key_rollback_keeps_a_key_that_was_already_inactive(aws: Any, make_context: Any) -> None:
    (key,) = _user_with_keys(aws, count=1)
    aws.client("iam").update_access_key(UserName="alice", AccessKeyId=key, Status="Inactive")
    responder, ctx, target = get_responder("iam.deactivate-access-key"), make_context(aws), Target("access_key", key)
    before = responder.read_state(ctx, target, responder.Params())
    after = responder.apply(ctx, target, responder.Params(), before)
    responder.rollback(ctx, target, responder.Params(), before, after)
    assert _keys(aws) == {key: "Inactive"}


def test_deactivate_access_key_refuses_temporary_keys(aws: Any, make_context: Any) -> None:
    responder = get_responder("iam.deactivate-access-key")
    message = (
        "refusing ASIAEXAMPLEEXAMPLE12: ASIA keys are temporary session credentials and cannot be deactivated; "
        "use iam.revoke-sessions on the principal that issued them"
    )
    with pytest.raises(ResponderError, match=re.escape(message)) as raised:
        responder.read_state(make_context(aws), Target("access_key", "ASIAEXAMPLEEXAMPLE12"), responder.Params())
    assert raised.value.permanent


@pytest.mark.parametrize("key", ["AKIA123", "akiaexampleexample12", "AKIAEXAMPLEEXAMPLE12 ", "*"])
def test_deactivate_access_key_rejects_malformed_ids(aws: Any, make_context: Any, key: str) -> None:
    responder = get_responder("iam.deactivate-access-key")
    with pytest.raises(ResponderError, match=re.escape(f"not an access key id: {key!r}")):
        responder.read_state(make_context(aws), Target("access_key", key), responder.Params())


def test_deactivate_access_key_unknown_key_is_a_permanent_error(aws: Any, make_context: Any) -> None:
    responder = get_responder("iam.deactivate-access-key")
    with pytest.raises(ResponderError, match="NoSuchEntity") as raised:
        responder.read_state(make_context(aws), Target("access_key", "AKIAEXAMPLEEXAMPLE12"), responder.Params())
    assert raised.value.permanent


def test_deactivate_access_key_takes_no_params() -> None:
    with pytest.raises(ValidationError, match="user_name"):
        get_responder("iam.deactivate-access-key").Params.model_validate({"user_name": "alice"})


# --- iam.revoke-sessions --------------------------------------------------------------------------------------------
def test_revoke_sessions_puts_the_revoke_older_sessions_policy(aws: Any, make_context: Any) -> None:
    arn = _role(aws, "ml-training")
    responder, ctx, target = get_responder("iam.revoke-sessions"), _context(make_context, aws), Target("principal", arn)
    params = responder.Params()

    before = responder.read_state(ctx, target, params)
    assert before == {"principal": arn, "policy_name": "cordon-revoke-older-sessions", "policy": None}
    assert _inline(aws, "ml-training") == {}  # reading changed nothing
    after = responder.apply(ctx, target, params, before)

    expected = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CordonRevokeinc0000000000000001",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-11-20T10:30:00Z"}},
            }
        ],
    }
    assert _inline(aws, "ml-training") == {"cordon-revoke-older-sessions": expected}
    assert after == {**before, "policy": expected, "previous_policy": None}

    restored = responder.rollback(ctx, target, params, before, after)
    assert _inline(aws, "ml-training") == {} and restored["policy"] is None


def test_revoke_sessions_cutoff_never_moves_for_the_same_incident_and_never_back(aws: Any, make_context: Any) -> None:
    arn = _role(aws, "ml-training")
    responder, target = get_responder("iam.revoke-sessions"), Target("principal", arn)

    def cutoff() -> str:
        statement = _inline(aws, "ml-training")["cordon-revoke-older-sessions"]["Statement"][0]
        return str(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])

    def apply(incident_id: str, now: datetime) -> None:
        ctx = _context(make_context, aws, incident_id, now)
        responder.apply(ctx, target, responder.Params(), responder.read_state(ctx, target, responder.Params()))

    apply("inc-1", NOW)
    apply("inc-1", datetime(2026, 11, 20, 11, 0, tzinfo=UTC))  # a redelivery later widens nothing
    assert cutoff() == "2026-11-20T10:30:00Z"
    apply("inc-2", datetime(2026, 11, 20, 12, 0, 0, 250000, tzinfo=UTC))  # a new incident: now, rounded up
    assert cutoff() == "2026-11-20T12:00:01Z"
    apply("inc-3", datetime(2026, 11, 20, 9, 0, tzinfo=UTC))  # a clock behind: never readmit revoked sessions
    assert cutoff() == "2026-11-20T12:00:01Z"


def test_revoke_sessions_on_a_user_and_rollback_restores_a_previous_policy(aws: Any, make_context: Any) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="bob", Path="/team/")
    previous = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="bob", PolicyName="cordon-revoke-older-sessions", PolicyDocument=json.dumps(previous))
    # The path is not in the ARN the incident names: the responder resolves it.
    responder, ctx = get_responder("iam.revoke-sessions"), _context(make_context, aws)
    target = Target("principal", f"arn:aws:iam::{ACCOUNT}:user/bob")

    before = responder.read_state(ctx, target, responder.Params())
    after = responder.apply(ctx, target, responder.Params(), before)
    assert after["principal"] == f"arn:aws:iam::{ACCOUNT}:user/team/bob"
    assert after["previous_policy"] == previous and after["policy"]["Statement"][0]["Action"] == "*"

    responder.rollback(ctx, target, responder.Params(), before, after)
    policy = iam.get_user_policy(UserName="bob", PolicyName="cordon-revoke-older-sessions")["PolicyDocument"]
    assert policy == previous


@pytest.mark.parametrize(
    ("name", "path", "named", "message"),
    [
        (
            "AWSServiceRoleForAmazonSageMakerNotebooks",
            "/aws-service-role/sagemaker.amazonaws.com/",
            "role/aws-service-role/sagemaker.amazonaws.com/AWSServiceRoleForAmazonSageMakerNotebooks",
            "refusing arn:aws:iam::123456789012:role/aws-service-role/sagemaker.amazonaws.com/"
            "AWSServiceRoleForAmazonSageMakerNotebooks: service-linked roles are managed by AWS and must not be "
            "contained",
        ),
        (
            "AWSReservedSSO_DataScientist_0123456789abcdef",
            "/aws-reserved/sso.amazonaws.com/",
            "role/AWSReservedSSO_DataScientist_0123456789abcdef",  # as resolved from a session: no path
            "refusing arn:aws:iam::123456789012:role/AWSReservedSSO_DataScientist_0123456789abcdef: IAM Identity "
            "Center roles cannot be changed in IAM; remove the permission set assignment in IAM Identity Center "
            "instead",
        ),
        (
            "ScientistAccess",  # Identity Center's path alone is enough
            "/aws-reserved/sso.amazonaws.com/us-east-1/",
            "role/ScientistAccess",
            "refusing arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/us-east-1/ScientistAccess: IAM "
            "Identity Center roles cannot be changed in IAM; remove the permission set assignment in IAM Identity "
            "Center instead",
        ),
    ],
)
@pytest.mark.parametrize("name_of", ["iam.revoke-sessions", "iam.quarantine-principal"])
def test_refuses_service_linked_and_identity_center_roles(
    aws: Any, make_context: Any, name: str, path: str, named: str, message: str, name_of: str
) -> None:
    _role(aws, name, path)
    responder, ctx = get_responder(name_of), _context(make_context, aws)
    target = Target("principal", f"arn:aws:iam::{ACCOUNT}:{named}")
    for action in (responder.read_state, lambda *a: responder.apply(*a, {})):
        with pytest.raises(ResponderError, match=re.escape(message)) as raised:
            action(ctx, target, responder.Params())
        assert raised.value.permanent
    assert _inline(aws, name) == {}


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        (f"arn:aws:iam::{ACCOUNT}:root", f"not an IAM user or role ARN: 'arn:aws:iam::{ACCOUNT}:root'"),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/ml-training/i-0abc",
            f"not an IAM user or role ARN: 'arn:aws:sts::{ACCOUNT}:assumed-role/ml-training/i-0abc'",
        ),
        ("*", "not an IAM user or role ARN: '*'"),
        (
            "arn:aws:iam::111122223333:role/ml-training",
            f"arn:aws:iam::111122223333:role/ml-training is not in this session's account {ACCOUNT}",
        ),
    ],
)
def test_revoke_sessions_refuses_what_is_not_a_principal_of_this_account(
    aws: Any, make_context: Any, arn: str, message: str
) -> None:
    _role(aws, "ml-training")  # a namesake here must not be changed for another account's role
    responder = get_responder("iam.revoke-sessions")
    with pytest.raises(ResponderError, match=re.escape(message)):
        responder.read_state(_context(make_context, aws), Target("principal", arn), responder.Params())
    assert _inline(aws, "ml-training") == {}


def test_revoke_sessions_needs_the_incident_id(aws: Any, make_context: Any) -> None:
    arn = _role(aws, "ml-training")
    ctx = make_context(aws, {"title": "no id"})
    with pytest.raises(ResponderError, match=re.escape("iam.revoke-sessions needs the incident id")):
        RevokeSessions().apply(ctx, Target("principal", arn), RevokeSessions.Params(), {})


# --- iam.quarantine-principal ---------------------------------------------------------------------------------------
def test_quarantine_principal_denies_sagemaker_and_ml_data_and_rolls_back(aws: Any, make_context: Any) -> None:
    # GIVEN a role that already has some other inline policy
    arn = _role(aws, "ml-training")
    other = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    aws.client("iam").put_role_policy(RoleName="ml-training", PolicyName="data", PolicyDocument=json.dumps(other))
    responder, ctx, target = get_responder("iam.quarantine-principal"), make_context(aws), Target("principal", arn)
    params = responder.Params(buckets=["training-data", "arn:aws:s3:::model-artifacts"], extra_actions=["bedrock:*"])
    original = _inline(aws, "ml-training")

    # WHEN it is quarantined (twice: a redelivery)
    before = responder.read_state(ctx, target, params)
    assert _inline(aws, "ml-training") == original
    after = responder.apply(ctx, target, params, before)
    again = responder.apply(ctx, target, params, responder.read_state(ctx, target, params))

    # THEN the quarantine policy is there, scoped to the buckets, and the other policy is untouched
    policy = _inline(aws, "ml-training")["cordon-quarantine"]
    assert policy == after["policy"] == again["policy"]
    assert again["previous_policy"] == policy  # the second apply found its own policy and changed nothing
    assert policy["Statement"] == [
        {"Sid": "CordonQuarantineSageMaker", "Effect": "Deny", "Action": "sagemaker:*", "Resource": "*"},
        {
            "Sid": "CordonQuarantineMLData",
            "Effect": "Deny",
            "Action": ["s3:GetObject*", "s3:PutObject*", "s3:ListBucket*", "s3:DeleteObject*"],
            "Resource": [
                "arn:aws:s3:::training-data",
                "arn:aws:s3:::training-data/*",
                "arn:aws:s3:::model-artifacts",
                "arn:aws:s3:::model-artifacts/*",
            ],
        },
        {
            "Sid": "CordonQuarantineTamper",
            "Effect": "Deny",
            "Action": ["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
            "Resource": arn,
        },
        {"Sid": "CordonQuarantineExtra", "Effect": "Deny", "Action": ["bedrock:*"], "Resource": "*"},
    ]
    assert _inline(aws, "ml-training")["data"] == other

    # AND rollback leaves exactly what was there before
    responder.rollback(ctx, target, params, before, after)
    assert _inline(aws, "ml-training") == original


def test_quarantine_principal_defaults_to_every_bucket(aws: Any, make_context: Any) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="carol")
    responder, ctx = get_responder("iam.quarantine-principal"), make_context(aws)
    target = Target("principal", f"arn:aws:iam::{ACCOUNT}:user/carol")
    after = responder.apply(ctx, target, responder.Params(), {})
    statements = {s["Sid"]: s for s in after["policy"]["Statement"]}
    assert statements["CordonQuarantineMLData"]["Resource"] == "*"
    assert statements["CordonQuarantineTamper"]["Action"] == ["iam:PutUserPolicy", "iam:DeleteUserPolicy"]
    assert "CordonQuarantineExtra" not in statements
    assert iam.get_user_policy(UserName="carol", PolicyName="cordon-quarantine")["PolicyDocument"] == after["policy"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bucket": ["x"]}, "Extra inputs are not permitted"),
        ({"buckets": ["Not_A_Bucket"]}, "not an S3 bucket name or arn:aws:s3:::name: 'Not_A_Bucket'"),
        ({"buckets": ["arn:aws:s3:::data/key"]}, "not an S3 bucket name or arn:aws:s3:::name"),
        ({"buckets": ["arn:aws:s3:::*"]}, "not an S3 bucket name or arn:aws:s3:::name"),
        ({"extra_actions": ["*"]}, "not an IAM action pattern like 'bedrock:InvokeModel\\*': '\\*'"),
        ({"extra_actions": ["bedrock InvokeModel"]}, "not an IAM action pattern"),
        ({"extra_actions": ['bedrock:Invoke"Model']}, "not an IAM action pattern"),
    ],
)
def test_quarantine_principal_rejects_bad_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QuarantineParams.model_validate(params)


def test_a_principal_named_with_the_wrong_path_is_refused(aws: Any, make_context: Any) -> None:
    arn = _role(aws, "ml-training", "/ml/")
    responder, ctx = get_responder("iam.quarantine-principal"), make_context(aws)
    wrong = f"arn:aws:iam::{ACCOUNT}:role/other/ml-training"
    message = f"{wrong} does not exist: the role ml-training is {arn}"
    with pytest.raises(ResponderError, match=re.escape(message)):
        responder.apply(ctx, Target("principal", wrong), responder.Params(), {})
    assert _inline(aws, "ml-training") == {}


def test_quarantine_principal_never_narrows_an_earlier_quarantine(aws: Any, make_context: Any) -> None:
    # GIVEN a principal quarantined from every bucket by an earlier incident
    arn = _role(aws, "ml-training")
    responder, ctx, target = get_responder("iam.quarantine-principal"), make_context(aws), Target("principal", arn)
    responder.apply(ctx, target, responder.Params(extra_actions=["bedrock:*"]), {})
    earlier = _inline(aws, "ml-training")["cordon-quarantine"]

    # WHEN a later incident's playbook quarantines it from one bucket, with another extra action
    params = responder.Params(buckets=["training-data"], extra_actions=["ecr:BatchGetImage"])
    before = responder.read_state(ctx, target, params)
    after = responder.apply(ctx, target, params, before)

    # THEN every bucket stays denied and both extra actions are denied
    statements = {s["Sid"]: s for s in _inline(aws, "ml-training")["cordon-quarantine"]["Statement"]}
    assert statements["CordonQuarantineMLData"]["Resource"] == "*"
    assert statements["CordonQuarantineExtra"]["Action"] == ["ecr:BatchGetImage", "bedrock:*"]

    # AND rolling back the later incident leaves the earlier quarantine exactly
    responder.rollback(ctx, target, params, before, after)
    assert _inline(aws, "ml-training")["cordon-quarantine"] == earlier


def test_quarantine_principal_widens_bucket_scopes(aws: Any, make_context: Any) -> None:
    arn = _role(aws, "ml-training")
    responder, ctx, target = get_responder("iam.quarantine-principal"), make_context(aws), Target("principal", arn)
    responder.apply(ctx, target, responder.Params(buckets=["training-data"]), {})
    responder.apply(ctx, target, responder.Params(buckets=["model-artifacts"]), {})
    statements = {s["Sid"]: s for s in _inline(aws, "ml-training")["cordon-quarantine"]["Statement"]}
    assert statements["CordonQuarantineMLData"]["Resource"] == [
        "arn:aws:s3:::model-artifacts",
        "arn:aws:s3:::model-artifacts/*",
        "arn:aws:s3:::training-data",
        "arn:aws:s3:::training-data/*",
    ]


READ_ONLY = ("Get", "List", "Describe")


def _record_calls(aws: Any) -> set[str]:
    """Every AWS action made through clients of `aws` from now on, as IAM names it (`iam:GetRole`)."""
    called: set[str] = set()

    def record(event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".")
        called.add(f"{service}:{operation}")

    aws.events.register("before-call.*.*", record)
    return called


@pytest.mark.parametrize(
    ("name", "target_of", "params"),
    [
        ("iam.deactivate-access-key", lambda aws: Target("access_key", _user_with_keys(aws)[0]), {}),
        ("iam.revoke-sessions", lambda aws: Target("principal", _role(aws, "ml-training")), {}),
        ("iam.quarantine-principal", lambda aws: Target("principal", _role(aws, "ml-training")), {"buckets": ["b-1"]}),
    ],
)
def test_every_call_is_a_declared_permission(
    aws: Any, make_context: Any, name: str, target_of: Any, params: dict[str, Any]
) -> None:
    responder, target = get_responder(name), target_of(aws)
    ctx, params_model = _context(make_context, aws), responder.Params.model_validate(params)
    called = _record_calls(aws)
    before = responder.read_state(ctx, target, params_model)
    assert all(action.split(":")[1].startswith(READ_ONLY) for action in called)
    after = responder.apply(ctx, target, params_model, before)
    responder.apply(ctx, target, params_model, responder.read_state(ctx, target, params_model))
    responder.rollback(ctx, target, params_model, before, after)
    assert called and called <= set(responder.permissions)
