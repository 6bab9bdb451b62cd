"""s3.deny-principal against moto: merged statements, other statements untouched, exact rollback."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from responders.base import ResponderError, Target, get_responder
from responders.s3 import DenyPrincipalParams, deny_sid

from .conftest import ACCOUNT, check_read_back
from .test_iam import READ_ONLY, _record_calls

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ml-training"
SID = deny_sid(ROLE)
# Written by hand with odd spacing, so an exact restore is visible.
OWNER_POLICY = (
    '{"Version": "2012-10-17",  "Statement": [{"Sid": "ReadForAnalytics", "Effect": "Allow", '
    '"Principal": {"AWS": "arn:aws:iam::123456789012:role/analytics"}, "Action": "s3:GetObject", '
    '"Resource": "arn:aws:s3:::training-data/*"}]}'
)


@pytest.fixture
def s3(aws: Any) -> Any:
    """Two buckets (one with its owner's policy) and a role, in moto; the S3 client to look at them."""
    iam, s3 = aws.client("iam"), aws.client("s3")
    iam.create_role(RoleName="ml-training", AssumeRolePolicyDocument="{}")
    for name in ("training-data", "model-artifacts"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_policy(Bucket="training-data", Policy=OWNER_POLICY)
    return s3


def _policy(s3: Any, bucket: str) -> str | None:
    try:
        return str(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchBucketPolicy"
        return None


def _ours(bucket: str, principal: str = ROLE) -> dict[str, Any]:
    return {
        "Sid": deny_sid(principal),
        "Effect": "Deny",
        "Principal": {"AWS": principal},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


def test_deny_principal_merges_verifies_is_idempotent_and_rolls_back_exactly(
    aws: Any, s3: Any, make_context: Any
) -> None:
    # GIVEN one bucket with the owner's policy and one with none
    responder, ctx, target = get_responder("s3.deny-principal"), make_context(aws), Target("principal", ROLE)
    params = responder.Params(buckets=["training-data", "arn:aws:s3:::model-artifacts"])

    # WHEN state is read, then the deny applied twice
    before = responder.read_state(ctx, target, params)
    assert _policy(s3, "training-data") == OWNER_POLICY and _policy(s3, "model-artifacts") is None
    assert before["buckets"] == {"training-data": {"policy": OWNER_POLICY}, "model-artifacts": {"policy": None}}
    after = responder.apply(ctx, target, params, before)
    applied = {name: _policy(s3, name) for name in ("training-data", "model-artifacts")}
    again = responder.apply(ctx, target, params, responder.read_state(ctx, target, params))

    # THEN the owner's statement is kept, ours is added once, and the second apply wrote nothing
    data = json.loads(applied["training-data"] or "")
    assert data["Statement"] == [json.loads(OWNER_POLICY)["Statement"][0], _ours("training-data")]
    assert json.loads(applied["model-artifacts"] or "")["Statement"] == [_ours("model-artifacts")]
    assert {name: _policy(s3, name) for name in applied} == applied
    assert after["buckets"]["training-data"]["previous_policy"] == OWNER_POLICY
    assert after["buckets"]["model-artifacts"]["previous_policy"] is None
    assert again["buckets"]["training-data"]["previous_policy"] == applied["training-data"]

    # AND rollback puts back the owner's text byte for byte, and no policy where there was none
    restored = responder.rollback(ctx, target, params, before, after)
    assert _policy(s3, "training-data") == OWNER_POLICY and _policy(s3, "model-artifacts") is None
    assert restored["buckets"] == before["buckets"]


def test_deny_principal_replaces_its_own_stale_statement(aws: Any, s3: Any, make_context: Any) -> None:
    stale = {**_ours("training-data"), "Action": "s3:GetObject"}
    document = json.loads(OWNER_POLICY)
    s3.put_bucket_policy(
        Bucket="training-data", Policy=json.dumps({**document, "Statement": [stale, *document["Statement"]]})
    )
    responder, ctx = get_responder("s3.deny-principal"), make_context(aws)
    responder.apply(ctx, Target("principal", ROLE), responder.Params(buckets=["training-data"]), {})
    statements = json.loads(_policy(s3, "training-data") or "")["Statement"]
    assert statements == [_ours("training-data"), document["Statement"][0]]


def test_deny_principal_rollback_keeps_statements_added_since(aws: Any, s3: Any, make_context: Any) -> None:
    # GIVEN the deny applied, then the owner adds a statement of their own
    responder, ctx, target = get_responder("s3.deny-principal"), make_context(aws), Target("principal", ROLE)
    params = responder.Params(buckets=["training-data"])
    before = responder.read_state(ctx, target, params)
    after = responder.apply(ctx, target, params, before)
    added = {"Sid": "AddedLater", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"}
    document = json.loads(_policy(s3, "training-data") or "")
    s3.put_bucket_policy(
        Bucket="training-data", Policy=json.dumps({**document, "Statement": [*document["Statement"], added]})
    )

    # WHEN rolled back
    responder.rollback(ctx, target, params, before, after)

    # THEN only Cordon's statement is gone
    statements = json.loads(_policy(s3, "training-data") or "")["Statement"]
    assert statements == [json.loads(OWNER_POLICY)["Statement"][0], added]


def test_deny_principal_names_a_principal_of_another_account_as_given(aws: Any, s3: Any, make_context: Any) -> None:
    outsider = "arn:aws:iam::111122223333:role/ml-training"  # a namesake of a local role: must not be swapped
    responder, ctx = get_responder("s3.deny-principal"), make_context(aws)
    after = responder.apply(ctx, Target("principal", outsider), responder.Params(buckets=["model-artifacts"]), {})
    assert after["principal"] == outsider
    assert json.loads(_policy(s3, "model-artifacts") or "")["Statement"] == [_ours("model-artifacts", outsider)]


def test_deny_principal_resolves_the_path_of_a_local_role(aws: Any, s3: Any, make_context: Any) -> None:
    aws.client("iam").create_role(
        RoleName="AWSReservedSSO_Scientist_01", Path="/aws-reserved/sso.amazonaws.com/", AssumeRolePolicyDocument="{}"
    )
    responder, ctx = get_responder("s3.deny-principal"), make_context(aws)
    named = f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Scientist_01"  # as resolved from a session
    after = responder.apply(ctx, Target("principal", named), responder.Params(buckets=["model-artifacts"]), {})
    # An Identity Center role may be denied a bucket (the role itself is not changed), under its real ARN.
    real = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Scientist_01"
    assert after["principal"] == real
    assert json.loads(_policy(s3, "model-artifacts") or "")["Statement"] == [_ours("model-artifacts", real)]


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        (
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.amazonaws.com/AWSServiceRoleForAmazonSageMaker",
            f"refusing arn:aws:iam::{ACCOUNT}:role/aws-service-role/sagemaker.amazonaws.com/"
            "AWSServiceRoleForAmazonSageMaker: service-linked roles are managed by AWS and must not be contained",
        ),
        # Denying root in a bucket policy would deny the whole account.
        (f"arn:aws:iam::{ACCOUNT}:root", f"not an IAM user or role ARN: 'arn:aws:iam::{ACCOUNT}:root'"),
        ("*", "not an IAM user or role ARN: '*'"),
    ],
)
def test_deny_principal_refuses(aws: Any, s3: Any, make_context: Any, arn: str, message: str) -> None:
    responder = get_responder("s3.deny-principal")
    with pytest.raises(ResponderError, match=re.escape(message)) as raised:
        responder.apply(make_context(aws), Target("principal", arn), responder.Params(buckets=["training-data"]), {})
    assert raised.value.permanent
    assert _policy(s3, "training-data") == OWNER_POLICY


def test_deny_principal_missing_bucket_is_a_permanent_error(aws: Any, s3: Any, make_context: Any) -> None:
    responder = get_responder("s3.deny-principal")
    with pytest.raises(ResponderError, match="NoSuchBucket") as raised:
        responder.read_state(make_context(aws), Target("principal", ROLE), responder.Params(buckets=["nope-bkt"]))
    assert raised.value.permanent


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "buckets\n  Field required"),
        ({"buckets": []}, "List should have at least 1 item"),
        ({"buckets": ["training-data"], "principal": ROLE}, "Extra inputs are not permitted"),
        ({"buckets": ["arn:aws:s3:::training-data/*"]}, "not an S3 bucket name or arn:aws:s3:::name"),
        ({"buckets": ["s3://training-data"]}, "not an S3 bucket name or arn:aws:s3:::name"),
    ],
)
def test_deny_principal_rejects_bad_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        DenyPrincipalParams.model_validate(params)


def test_deny_principal_calls_only_declared_permissions(aws: Any, s3: Any, make_context: Any) -> None:
    responder, ctx, target = get_responder("s3.deny-principal"), make_context(aws), Target("principal", ROLE)
    params = responder.Params(buckets=["training-data", "model-artifacts"])
    called = _record_calls(aws)
    before = responder.read_state(ctx, target, params)
    assert all(action.split(":")[1].startswith(READ_ONLY) for action in called)
    after = responder.apply(ctx, target, params, before)
    responder.apply(ctx, target, params, responder.read_state(ctx, target, params))
    responder.rollback(ctx, target, params, before, after)
    assert called and called <= set(responder.permissions)


def test_deny_principal_read_back_holds_and_rolls_back(aws: Any, s3: Any, make_context: Any) -> None:
    responder = get_responder("s3.deny-principal")
    params = responder.Params(buckets=["training-data", "model-artifacts"])
    check_read_back(responder, make_context(aws), Target("principal", ROLE), params)
    assert _policy(s3, "training-data") == OWNER_POLICY and _policy(s3, "model-artifacts") is None
