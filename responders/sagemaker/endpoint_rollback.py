"""sagemaker.rollback-endpoint-config: serve the endpoint config an endpoint served before the incident.

SageMaker keeps no history of an endpoint's configs; CloudTrail does. The config to go back to is the one named by
the newest successful CreateEndpoint or UpdateEndpoint of this endpoint before `before` (the incident's first
signal unless bound), read with LookupEvents (the last 90 days of management events). It must still exist.
Reversible: rollback serves again the config the endpoint served when the action first ran.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from pydantic import AwareDatetime

from responders.aws import call
from responders.base import (
    ActionContext,
    Responder,
    ResponderError,
    ResponderParams,
    State,
    Target,
    VerificationError,
    responder,
)
from responders.sagemaker.arns import SageMakerArn, resolve_target

_DEPLOYMENTS = ("UpdateEndpoint", "CreateEndpoint")
_LOOKUP_PAGES = 10  # 500 deployments of the account per call before `before`: enough to find this endpoint's last


class RollbackEndpointConfigParams(ResponderParams):
    """`before`: the config to restore is the one deployed last before this instant (default: the incident's
    first signal)."""

    before: AwareDatetime | None = None


# --- deciding (pure) ----------------------------------------------------------------------------------------------
def previous_config(records: list[dict[str, Any]], endpoint: str, before: datetime) -> str | None:
    """The endpoint config of the newest successful deployment of `endpoint` before `before`, from CloudTrail
    records (LookupEvents' `CloudTrailEvent`, parsed). SageMaker names are case-insensitive."""
    deployed = [
        (record["eventTime"], params["endpointConfigName"])
        for record in records
        if record.get("eventName") in _DEPLOYMENTS
        and not record.get("errorCode")
        and isinstance(params := record.get("requestParameters") or {}, dict)
        and str(params.get("endpointName", "")).lower() == endpoint.lower()
        and params.get("endpointConfigName")
        and datetime.fromisoformat(record["eventTime"]) < before
    ]
    return max(deployed)[1] if deployed else None


# --- AWS I/O (thin) -----------------------------------------------------------------------------------------------
def _deployments(ctx: ActionContext, before: datetime) -> list[dict[str, Any]]:
    cloudtrail, records = ctx.client("cloudtrail"), []
    for name in _DEPLOYMENTS:
        request: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
            "EndTime": before,
            "MaxResults": 50,
        }
        for _ in range(_LOOKUP_PAGES):
            page = call(cloudtrail.lookup_events, **request)
            records += [json.loads(event["CloudTrailEvent"]) for event in page.get("Events", [])]
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return records


def _before(ctx: ActionContext, params: ResponderParams) -> datetime:
    bound = cast(RollbackEndpointConfigParams, params).before
    if bound is not None:
        return bound
    first = ctx.incident.get("first_seen")
    if not isinstance(first, str):
        raise ResponderError("the incident has no first_seen: bind `before`")
    return datetime.fromisoformat(first)


def _state(ctx: ActionContext, arn: SageMakerArn, params: ResponderParams) -> State:
    sagemaker = ctx.client("sagemaker")
    endpoint = call(sagemaker.describe_endpoint, EndpointName=arn.name)
    if endpoint["EndpointArn"].lower() != arn.arn.lower():
        raise ResponderError(f"DescribeEndpoint answered for {endpoint['EndpointArn']}, not {arn.arn}")
    previous = previous_config(_deployments(ctx, _before(ctx, params)), arn.name, _before(ctx, params))
    return {
        "endpoint": endpoint["EndpointName"],
        "status": endpoint["EndpointStatus"],
        "endpoint_config": endpoint["EndpointConfigName"],
        "pending_endpoint_config": endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName"),
        "previous_endpoint_config": previous,
    }


def _serves(state: State, config: str | None) -> bool:
    """Serving `config`, or deploying it (an update in progress lists it as pending)."""
    return config is not None and config in (state.get("endpoint_config"), state.get("pending_endpoint_config"))


def _deploy(ctx: ActionContext, state: State, config: str) -> None:
    if state["status"] != "InService":
        raise ResponderError(
            f"endpoint {state['endpoint']} is {state['status']}: try again when it is InService", permanent=False
        )
    sagemaker = ctx.client("sagemaker")
    call(sagemaker.describe_endpoint_config, EndpointConfigName=config)  # still there: a clear error if not
    call(sagemaker.update_endpoint, EndpointName=state["endpoint"], EndpointConfigName=config)


@responder("sagemaker.rollback-endpoint-config")
class RollbackEndpointConfig(Responder):
    """Roll an endpoint back to the endpoint config it served before the incident. Reversible.

    The config is found in CloudTrail (the last CreateEndpoint / UpdateEndpoint of the endpoint before `before`).
    Refuses when there is none (an endpoint the incident created: delete or quarantine it instead) and while the
    endpoint is not InService. Rollback deploys again the config served when the action first ran.

    Example::

        - responder: sagemaker.rollback-endpoint-config
          target: "entities[?type=='sagemaker_endpoint'].id"
    """

    permissions = (
        "cloudtrail:LookupEvents",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:UpdateEndpoint",
    )
    Params = RollbackEndpointConfigParams
    target_types = frozenset({"sagemaker_endpoint"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _state(ctx, resolve_target(self, ctx, target, "endpoint"), params)

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn = resolve_target(self, ctx, target, "endpoint")
        state = _state(ctx, arn, params)
        previous = state["previous_endpoint_config"]
        if previous is None:
            raise ResponderError(
                f"no deployment of endpoint {arn.name} before the incident in CloudTrail: nothing to roll back to"
            )
        if _serves(state, previous):
            return state
        _deploy(ctx, state, previous)
        after = _state(ctx, arn, params)
        if not _serves(after, previous):
            raise VerificationError(f"endpoint {arn.name} serves {after['endpoint_config']}, not {previous}")
        return after

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return _serves(state, before.get("previous_endpoint_config"))

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        arn = resolve_target(self, ctx, target, "endpoint")
        state, served = _state(ctx, arn, params), before.get("endpoint_config")
        if served is None or _serves(state, served):
            return state
        if not _serves(state, before.get("previous_endpoint_config")):
            raise ResponderError(
                f"endpoint {arn.name} serves {state['endpoint_config']} now, not the rolled-back config:"
                " not overwriting that change"
            )
        _deploy(ctx, state, served)
        final = _state(ctx, arn, params)
        if not _serves(final, served):
            raise VerificationError(f"endpoint {arn.name} serves {final['endpoint_config']}, not {served}")
        return final
