"""bedrock.deny-invocation against moto: the inline deny on a role and a user, widening, refusals, rollback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from responders.base import ResponderError, Target, get_responder
from responders.bedrock import DenyInvocationParams

from .conftest import ACCOUNT, check_read_back

TRUST = json.dumps({"Version": "2012-10-17", "Statement": []})
POLICY = "cordon-deny-model-invocation"


def _role(aws: Any, name: str = "bedrock-app", path: str = "/") -> str:
    return str(aws.client("iam").create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])


def _denied_actions(document: dict[str, Any]) -> set[str]:
    return {action for statement in document["Statement"] for action in statement["Action"]}


def test_deny_invocation_puts_the_deny_on_the_role_and_rollback_removes_it(aws: Any, make_context: Any) -> None:
    # GIVEN a role with no policy of Cordon's name
    arn = _role(aws)
    responder, ctx = get_responder("bedrock.deny-invocation"), make_context(aws)
    target, params = Target("principal", arn), get_responder("bedrock.deny-invocation").Params()
    before = responder.read_state(ctx, target, params)
    assert before["policy"] is None
    # WHEN applied
    after = responder.apply(ctx, target, params, before)
    # THEN the role carries the deny, read back from IAM: invocation, streaming, Converse and model access
    iam = aws.client("iam")
    document = iam.get_role_policy(RoleName="bedrock-app", PolicyName=POLICY)["PolicyDocument"]
    assert after["policy"] == document
    denied = _denied_actions(document)
    assert {"bedrock:InvokeModel*", "bedrock:Converse*", "bedrock:PutFoundationModelEntitlement"} <= denied
    assert {"iam:PutRolePolicy", "iam:DeleteRolePolicy"} <= denied  # it cannot lift its own deny
    assert all(s["Effect"] == "Deny" for s in document["Statement"])
    # AND applying again changes nothing
    assert responder.apply(ctx, target, params, before)["policy"] == document
    # WHEN rolled back, the role is as it was
    responder.rollback(ctx, target, params, before, after)
    assert iam.list_role_policies(RoleName="bedrock-app")["PolicyNames"] == []


def test_rollback_restores_a_policy_of_that_name_that_was_there_before(aws: Any, make_context: Any) -> None:
    # GIVEN a role that already carries an older deny of that name (another incident's, with an extra action)
    arn = _role(aws)
    older = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CordonDenyModelInvocation",
                "Effect": "Deny",
                "Action": ["sagemaker:InvokeEndpoint"],
                "Resource": "*",
            }
        ],
    }
    aws.client("iam").put_role_policy(RoleName="bedrock-app", PolicyName=POLICY, PolicyDocument=json.dumps(older))
    responder, ctx, target = get_responder("bedrock.deny-invocation"), make_context(aws), Target("principal", arn)
    params = responder.Params()
    before = responder.read_state(ctx, target, params)
    # WHEN applied, the deny is widened, never narrowed
    after = responder.apply(ctx, target, params, before)
    assert {"sagemaker:InvokeEndpoint", "bedrock:InvokeModel*"} <= _denied_actions(after["policy"])
    # AND rollback puts the older one back exactly
    responder.rollback(ctx, target, params, before, after)
    assert aws.client("iam").get_role_policy(RoleName="bedrock-app", PolicyName=POLICY)["PolicyDocument"] == older


def test_deny_invocation_on_a_user_with_extra_actions(aws: Any, make_context: Any) -> None:
    aws.client("iam").create_user(UserName="ci-deployer")
    arn = f"arn:aws:iam::{ACCOUNT}:user/ci-deployer"
    responder, ctx, target = get_responder("bedrock.deny-invocation"), make_context(aws), Target("principal", arn)
    params = DenyInvocationParams(extra_actions=["sagemaker:InvokeEndpoint*"])
    responder.apply(ctx, target, params, responder.read_state(ctx, target, params))
    document = aws.client("iam").get_user_policy(UserName="ci-deployer", PolicyName=POLICY)["PolicyDocument"]
    assert {"sagemaker:InvokeEndpoint*", "bedrock:InvokeModel*", "iam:PutUserPolicy"} <= _denied_actions(document)


def test_the_read_back_after_a_failure_holds_and_rolls_back(aws: Any, make_context: Any) -> None:
    arn = _role(aws)
    responder = get_responder("bedrock.deny-invocation")
    check_read_back(responder, make_context(aws), Target("principal", arn), responder.Params())


@pytest.mark.parametrize(
    ("name", "path", "reason"),
    [
        ("AWSServiceRoleForAmazonBedrock", "/aws-service-role/bedrock.amazonaws.com/", "service-linked"),
        ("AWSReservedSSO_DevAdmin_635426549a280cc6", "/aws-reserved/sso.amazonaws.com/", "IAM Identity Center"),
    ],
)
def test_roles_iam_cannot_change_are_refused(aws: Any, make_context: Any, name: str, path: str, reason: str) -> None:
    arn = _role(aws, name, path)
    responder, ctx, target = get_responder("bedrock.deny-invocation"), make_context(aws), Target("principal", arn)
    with pytest.raises(ResponderError, match=reason):
        responder.apply(ctx, target, responder.Params(), {})
    assert aws.client("iam").list_role_policies(RoleName=name)["PolicyNames"] == []
