"""Bedrock responder: deny a principal model invocation (LLM-jacking, cost harvesting), reversibly.

An inline deny policy on the user or role, as iam.quarantine-principal puts one: explicit denies beat any allow,
and rollback restores whatever policy of that name was there before.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import Field

from responders.base import ActionContext, ResponderParams, responder
from responders.iam import _TAMPER_ACTIONS, POLICY_VERSION, ActionPattern, Principal, _InlineDenyPolicy, widen

# Every way to have a model generate tokens on the account's bill: on-demand and streaming invocation, the
# Converse API, agents, flows, knowledge-base generation, batch and asynchronous jobs, and the OpenAI-compatible
# endpoint (bedrock-mantle), as GuardDuty's AI Protection remediation lists them.
INVOCATION_ACTIONS = (
    "bedrock:InvokeModel*",
    "bedrock:Converse*",
    "bedrock:InvokeAgent",
    "bedrock:InvokeInlineAgent",
    "bedrock:InvokeFlow",
    "bedrock:RetrieveAndGenerate*",
    "bedrock:CreateModelInvocationJob",
    "bedrock:StartAsyncInvoke",
    "bedrock-mantle:CreateInference",
)
# What an LLM-jacker calls first to unlock models the account never used (Stratus aws.impact.bedrock-invoke-model).
MODEL_ACCESS_ACTIONS = (
    "bedrock:PutUseCaseForModelAccess",
    "bedrock:CreateFoundationModelAgreement",
    "bedrock:PutFoundationModelEntitlement",
)


class DenyInvocationParams(ResponderParams):
    """`extra_actions`: more actions to deny with the invocation ones, e.g. `sagemaker:InvokeEndpoint*`."""

    extra_actions: list[ActionPattern] = Field(default_factory=list)


def deny_invocation_document(principal: Principal, params: DenyInvocationParams) -> dict[str, Any]:
    actions = list(dict.fromkeys([*INVOCATION_ACTIONS, *params.extra_actions]))
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {"Sid": "CordonDenyModelInvocation", "Effect": "Deny", "Action": actions, "Resource": "*"},
            {"Sid": "CordonDenyModelAccess", "Effect": "Deny", "Action": list(MODEL_ACCESS_ACTIONS), "Resource": "*"},
            # The contained principal must not be able to delete the deny.
            {
                "Sid": "CordonDenyInvocationTamper",
                "Effect": "Deny",
                "Action": _TAMPER_ACTIONS[principal.kind],
                "Resource": principal.arn,
            },
        ],
    }


@responder("bedrock.deny-invocation")
class DenyModelInvocation(_InlineDenyPolicy):
    """Deny a role or user every Bedrock model invocation and model-access enablement, reversibly.

    Puts the inline policy `cordon-deny-model-invocation`: InvokeModel*, Converse*, agents, flows,
    RetrieveAndGenerate, batch and async inference, bedrock-mantle, and PutUseCaseForModelAccess /
    CreateFoundationModelAgreement / PutFoundationModelEntitlement, on every resource, and denies the principal
    changing its own inline policies. Sessions already issued are denied too (IAM evaluates on every call). A deny
    already there is widened, never narrowed. Service-linked and IAM Identity Center roles are refused. Rollback
    restores the policy of that name as it was (or deletes it).

    Example::

        - responder: bedrock.deny-invocation
          target: "entities[?type=='principal'].id"
          params:
            extra_actions: ["sagemaker:InvokeEndpoint*"]
    """

    policy_name = "cordon-deny-model-invocation"
    Params = DenyInvocationParams

    def document(
        self, ctx: ActionContext, principal: Principal, params: ResponderParams, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        return widen(existing, deny_invocation_document(principal, cast(DenyInvocationParams, params)))
