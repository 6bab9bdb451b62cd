"""API Gateway responders: throttle an inference API, disable an API key.

Targets: a REST API as `arn:aws:apigateway:REGION::/restapis/ID`, an API key by its id or as
`arn:aws:apigateway:REGION::/apikeys/ID` (the normalizer's spelling; REGION may be empty when no event said it).
Key *values* are secrets: Cordon never asks for one (`includeValue` stays false) and never echoes a target that is
not a well-formed key id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field

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

_REGION = r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)?"
_REST_API_ARN = re.compile(rf"arn:aws(?:-[a-z]+)*:apigateway:{_REGION}::/restapis/(?P<id>[a-z0-9]{{10}})")
_KEY = re.compile(rf"(?:arn:aws(?:-[a-z]+)*:apigateway:{_REGION}::/apikeys/)?(?P<id>[a-z0-9]{{10}})")
_ALL_METHODS = "*/*"  # the stage-wide method setting; a method with its own setting keeps its own limits
_RATE, _BURST = "throttlingRateLimit", "throttlingBurstLimit"


@dataclass(frozen=True)
class RestApi:
    arn: str
    region: str | None
    id: str


def _check_type(responder_: Responder, target: Target) -> None:
    if target.type not in responder_.target_types:
        raise ResponderError(
            f"{responder_.name} acts on {', '.join(sorted(responder_.target_types))}, not {target.type!r}"
        )


def _check_region(ctx: ActionContext, what: str, region: str | None) -> None:
    session_region = getattr(ctx.session, "region_name", None)
    if region and session_region and session_region != region:
        raise ResponderError(f"{what} is in {region}, but the session is for {session_region}")


def parse_rest_api_arn(arn: str) -> RestApi:
    match = _REST_API_ARN.fullmatch(arn)
    if not match:
        # HTTP APIs (`/apis/ID`) have no stage method throttling like this, and `/apis-by-name/` is not an id yet.
        raise ResponderError(f"not an API Gateway REST API ARN (arn:aws:apigateway:REGION::/restapis/ID): {arn!r}")
    return RestApi(arn, match["region"], match["id"])


# --- apigateway.throttle: pure request builders --------------------------------------------------------------------


def _number(value: float) -> str:
    # Patch values are strings; "5" rather than "5.0" for whole rates (accepted by AWS for a double, and by moto).
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def tightened(current: dict[str, Any] | None, rate: float, burst: int) -> tuple[float, int]:
    """The limits to set: the requested ones, but never looser than limits already in place."""
    if current is None:
        return float(rate), burst
    return min(float(current["rate"]), float(rate)), min(int(current["burst"]), burst)


def stage_patch(rate: float, burst: int) -> list[dict[str, str]]:
    return [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": _number(rate)},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
    ]


def usage_plan_patch(rate: float, burst: int) -> list[dict[str, str]]:
    return [
        {"op": "replace", "path": "/throttle/rateLimit", "value": _number(rate)},
        {"op": "replace", "path": "/throttle/burstLimit", "value": str(burst)},
    ]


def stage_restore_patch(prior: dict[str, Any] | None) -> list[dict[str, str]]:
    # No stage-wide setting before: remove the one the throttle created (as `aws_api_gateway_method_settings` does).
    return [{"op": "remove", "path": "/*/*"}] if prior is None else stage_patch(prior["rate"], prior["burst"])


def usage_plan_restore_patch(prior: dict[str, Any] | None) -> list[dict[str, str]]:
    return [{"op": "remove", "path": "/throttle"}] if prior is None else usage_plan_patch(prior["rate"], prior["burst"])


# --- apigateway.throttle: thin AWS I/O -----------------------------------------------------------------------------


def _throttle_state(ctx: ActionContext, api: RestApi, params: ThrottleParams) -> State:
    client = ctx.client("apigateway")
    stage = call(client.get_stage, restApiId=api.id, stageName=params.stage)
    state: State = {"rest_api": api.id, "stage": params.stage}
    if params.usage_plan_id is None:
        settings = stage.get("methodSettings", {})
        setting = settings.get(_ALL_METHODS)
        limits = {"rate": float(setting[_RATE]), "burst": int(setting[_BURST])} if setting else None
        # The whole stage-wide setting, so a rollback can tell whether someone changed it since.
        overrides = sorted(k for k in settings if k != _ALL_METHODS)
        return state | {"scope": "stage", "throttle": limits, "method_setting": setting, "method_overrides": overrides}
    plan = call(client.get_usage_plan, usagePlanId=params.usage_plan_id)
    stages = [{"api": s["apiId"], "stage": s["stage"]} for s in plan.get("apiStages", [])]
    throttle = plan.get("throttle")
    limits = {"rate": float(throttle["rateLimit"]), "burst": int(throttle["burstLimit"])} if throttle else None
    return state | {"scope": "usage_plan", "usage_plan": params.usage_plan_id, "throttle": limits, "api_stages": stages}


def _send_patch(ctx: ActionContext, api: RestApi, params: ThrottleParams, patch: list[dict[str, str]]) -> None:
    client = ctx.client("apigateway")
    if params.usage_plan_id is None:
        call(client.update_stage, restApiId=api.id, stageName=params.stage, patchOperations=patch)
    else:
        call(client.update_usage_plan, usagePlanId=params.usage_plan_id, patchOperations=patch)


class ThrottleParams(ResponderParams):
    stage: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")
    rate_limit: float = Field(ge=0)  # requests per second (steady state); 0 turns every request away
    burst_limit: int = Field(ge=0)
    usage_plan_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,64}$")


@responder("apigateway.throttle")
class Throttle(Responder):
    """Throttle a REST API stage that serves a model, to slow extraction or abuse while the incident is worked.

    Without `usage_plan_id`: the stage-wide method setting (`*/*`) gets the limits; a method with its own setting
    keeps its own (they are listed in the state as `method_overrides`). With `usage_plan_id`: the usage plan's
    throttle, which applies to every API key in the plan; the plan must cover this API and stage. A limit already
    lower than the requested one is kept: containment never loosens a throttle. Rollback restores the prior
    limits, or removes the setting Cordon created, and refuses if someone changed it since.

    Example::

        - responder: apigateway.throttle
          target: "entities[?type=='api'].id"
          params: {stage: prod, rate_limit: 1, burst_limit: 2}
    """

    Params = ThrottleParams
    permissions = ("apigateway:GET", "apigateway:PATCH")  # GetStage/GetUsagePlan, UpdateStage/UpdateUsagePlan
    target_types = frozenset({"api"})
    reversible = True

    def _api(self, ctx: ActionContext, target: Target) -> RestApi:
        _check_type(self, target)
        api = parse_rest_api_arn(target.id)
        _check_region(ctx, api.arn, api.region)
        return api

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _throttle_state(ctx, self._api(ctx, target), _throttle_params(params))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        api, p = self._api(ctx, target), _throttle_params(params)
        state = _throttle_state(ctx, api, p)
        if state["scope"] == "usage_plan" and {"api": api.id, "stage": p.stage} not in state["api_stages"]:
            raise ResponderError(f"usage plan {p.usage_plan_id} does not cover API {api.id} stage {p.stage}")
        rate, burst = tightened(state["throttle"], p.rate_limit, p.burst_limit)
        wanted = {"rate": rate, "burst": burst}
        if state["throttle"] != wanted:
            patch = stage_patch(rate, burst) if state["scope"] == "stage" else usage_plan_patch(rate, burst)
            _send_patch(ctx, api, p, patch)
        after = _throttle_state(ctx, api, p)
        if after["throttle"] != wanted:
            raise VerificationError(f"{api.arn} {state['scope']} throttle is {after['throttle']}, not {wanted}")
        # What a rollback restores: the limits found just before this apply changed anything.
        return after | {"prior": state["throttle"]}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        api, p = self._api(ctx, target), _throttle_params(params)
        state = _throttle_state(ctx, api, p)
        mine = after["method_setting"] if state["scope"] == "stage" else after["throttle"]
        now = state["method_setting"] if state["scope"] == "stage" else state["throttle"]
        if now != mine:
            raise ResponderError(
                f"{api.arn} {state['scope']} throttle changed since Cordon set it (now {state['throttle']}): "
                "not overwriting that change"
            )
        # `before` first: the limits before the first attempt. A retry's `prior` may be its own throttle.
        prior = before["throttle"] if "throttle" in before else after["prior"]
        if prior == state["throttle"]:
            return state  # nothing to restore (the limits were already this tight)
        patch = stage_restore_patch(prior) if state["scope"] == "stage" else usage_plan_restore_patch(prior)
        _send_patch(ctx, api, p, patch)
        final = _throttle_state(ctx, api, p)
        if final["throttle"] != prior:
            raise VerificationError(
                f"{api.arn} {state['scope']} throttle is {final['throttle']} after rollback, not {prior}"
            )
        return final


def _throttle_params(params: ResponderParams) -> ThrottleParams:
    if not isinstance(params, ThrottleParams):
        raise ResponderError(f"expected ThrottleParams, got {type(params).__name__}")
    return params


# --- apigateway.disable-api-key ------------------------------------------------------------------------------------


def _key_state(ctx: ActionContext, key_id: str) -> State:
    key = call(ctx.client("apigateway").get_api_key, apiKey=key_id, includeValue=False)
    return {"api_key": key["id"], "name": key.get("name"), "enabled": bool(key.get("enabled"))}


def _set_enabled(ctx: ActionContext, key_id: str, enabled: bool) -> None:
    patch = [{"op": "replace", "path": "/enabled", "value": "true" if enabled else "false"}]
    call(ctx.client("apigateway").update_api_key, apiKey=key_id, patchOperations=patch)


@responder("apigateway.disable-api-key")
class DisableApiKey(Responder):
    """Disable an API Gateway API key that the incident names (requests with it are refused with 403).

    The key is kept, with its usage plans, so a rollback simply enables it again (only if Cordon disabled it).

    Example::

        - responder: apigateway.disable-api-key
          target: "entities[?type=='api_key'].id"
    """

    permissions = ("apigateway:GET", "apigateway:PATCH")  # GetApiKey, UpdateApiKey
    target_types = frozenset({"api_key"})
    reversible = True

    def _key_id(self, ctx: ActionContext, target: Target) -> str:
        _check_type(self, target)
        match = _KEY.fullmatch(target.id)
        if not match:
            # Not echoed: a misbound playbook could pass a key's secret value here.
            raise ResponderError("target is not an API Gateway API key id (10 lowercase letters or digits, or its ARN)")
        _check_region(ctx, f"API key {match['id']}", match["region"])
        return match["id"]

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _key_state(ctx, self._key_id(ctx, target))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        key_id = self._key_id(ctx, target)
        state = _key_state(ctx, key_id)
        if state["enabled"]:
            _set_enabled(ctx, key_id, enabled=False)
        after = _key_state(ctx, key_id)
        if after["enabled"]:
            raise VerificationError(f"API key {key_id} is still enabled after UpdateApiKey")
        return after | {"disabled_by_cordon": state["enabled"]}

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        return state.get("enabled") is False

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        key_id = self._key_id(ctx, target)
        state = _key_state(ctx, key_id)
        # `before` first: enabled before the first attempt. A retry's `disabled_by_cordon` is False after a partial one.
        disabled_by_cordon = before["enabled"] if "enabled" in before else after.get("disabled_by_cordon")
        if not disabled_by_cordon or state["enabled"]:
            return state
        _set_enabled(ctx, key_id, enabled=True)
        final = _key_state(ctx, key_id)
        if not final["enabled"]:
            raise VerificationError(f"API key {key_id} is still disabled after UpdateApiKey")
        return final
