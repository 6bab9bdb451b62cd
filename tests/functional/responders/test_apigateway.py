"""API Gateway responders against moto. moto 5.2 ignores UpdateStage's `remove /*/*` (it only removes
/accessLogSettings): that one call is answered by a Stubber, which removes moto's method setting as AWS would."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from moto.apigateway.models import apigateway_backends
from pydantic import ValidationError

from responders.apigateway import DisableApiKey, Throttle, ThrottleParams
from responders.base import ResponderError, Target, VerificationError

from .conftest import ACCOUNT, REGION, check_read_back
from .stubbing import PartialStubber, pin_clients

MUTATING = ("Update", "Create", "Delete", "Put")


@pytest.fixture
def calls(aws: boto3.session.Session) -> list[str]:
    seen: list[str] = []
    aws.events.register("before-call.*.*", lambda model, **_: seen.append(model.name))
    return seen


def _mutations(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(MUTATING)]


@pytest.fixture
def api(aws: boto3.session.Session) -> str:
    client = aws.client("apigateway")
    api_id = client.create_rest_api(name="fraud-inference")["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="POST", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName="prod")
    return str(api_id)


def _target(api_id: str) -> Target:
    return Target("api", f"arn:aws:apigateway:{REGION}::/restapis/{api_id}", account=ACCOUNT, region=REGION)


def _method_settings(aws: boto3.session.Session, api_id: str) -> dict[str, Any]:
    return dict(aws.client("apigateway").get_stage(restApiId=api_id, stageName="prod")["methodSettings"])


# --- apigateway.throttle on the stage --------------------------------------------------------------------------------


def test_throttle_stage_and_roll_back_to_no_setting(
    aws: Any, api: str, make_context: Any, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stage without a stage-wide method setting
    ctx, responder = make_context(aws), Throttle()
    params = ThrottleParams(stage="prod", rate_limit=2.5, burst_limit=5)
    before = responder.read_state(ctx, _target(api), params)
    assert _mutations(calls) == []
    assert before["throttle"] is None and before["method_setting"] is None

    # WHEN it is throttled
    after = responder.apply(ctx, _target(api), params, before)

    # THEN the stage-wide setting carries the limits
    assert after["throttle"] == {"rate": 2.5, "burst": 5} and after["prior"] is None
    setting = _method_settings(aws, api)["*/*"]
    assert (setting["throttlingRateLimit"], setting["throttlingBurstLimit"]) == (2.5, 5)

    # WHEN it is rolled back (the `remove /*/*` call is stubbed: moto lacks it) THEN the setting is gone again
    client = pin_clients(monkeypatch, ctx).setdefault("apigateway", aws.client("apigateway"))

    def remove(request: dict[str, Any]) -> None:
        apigateway_backends[ACCOUNT][REGION].apis[request["restApiId"]].stages[
            request["stageName"]
        ].method_settings.pop("*/*")

    stubber = PartialStubber(client, {"UpdateStage": remove})
    stubber.add_response(
        "update_stage",
        {},
        {"restApiId": api, "stageName": "prod", "patchOperations": [{"op": "remove", "path": "/*/*"}]},
    )
    with stubber:
        restored = responder.rollback(ctx, _target(api), params, before, after)
    stubber.assert_no_pending_responses()
    assert restored == before
    assert _method_settings(aws, api) == {}


def test_throttle_stage_restores_prior_limits(aws: Any, api: str, make_context: Any) -> None:
    aws.client("apigateway").update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "100"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "200"},
            {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
        ],
    )
    ctx, responder, params = make_context(aws), Throttle(), ThrottleParams(stage="prod", rate_limit=1, burst_limit=2)
    before = responder.read_state(ctx, _target(api), params)

    after = responder.apply(ctx, _target(api), params, before)
    assert after["throttle"] == {"rate": 1.0, "burst": 2}
    assert after["method_setting"]["metricsEnabled"] is True  # the rest of the setting is untouched

    assert responder.rollback(ctx, _target(api), params, before, after) == before


def test_throttle_apply_twice_changes_nothing_the_second_time(
    aws: Any, api: str, make_context: Any, calls: list[str]
) -> None:
    ctx, responder, params = make_context(aws), Throttle(), ThrottleParams(stage="prod", rate_limit=1, burst_limit=2)
    first = responder.apply(ctx, _target(api), params, responder.read_state(ctx, _target(api), params))
    calls.clear()

    second = responder.apply(ctx, _target(api), params, responder.read_state(ctx, _target(api), params))

    assert _mutations(calls) == []
    assert second["throttle"] == first["throttle"]


def test_throttle_never_loosens_a_tighter_limit(aws: Any, api: str, make_context: Any) -> None:
    aws.client("apigateway").update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "0.5"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "50"},
        ],
    )
    ctx, responder, params = make_context(aws), Throttle(), ThrottleParams(stage="prod", rate_limit=10, burst_limit=20)

    after = responder.apply(ctx, _target(api), params, {})

    assert after["throttle"] == {"rate": 0.5, "burst": 20}  # the lower of each


def test_throttle_rollback_does_not_overwrite_a_later_change(aws: Any, api: str, make_context: Any) -> None:
    ctx, responder, params = make_context(aws), Throttle(), ThrottleParams(stage="prod", rate_limit=1, burst_limit=2)
    after = responder.apply(ctx, _target(api), params, {})
    aws.client("apigateway").update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "7"}],
    )

    with pytest.raises(
        ResponderError,
        match=rf"^arn:aws:apigateway:us-east-1::/restapis/{api} stage throttle changed since Cordon set it "
        r"\(now \{'rate': 7.0, 'burst': 2\}\): not overwriting that change$",
    ):
        responder.rollback(ctx, _target(api), params, {}, after)


def test_throttle_lists_methods_that_keep_their_own_limits(aws: Any, api: str, make_context: Any) -> None:
    aws.client("apigateway").update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": "/~1/POST/throttling/rateLimit", "value": "500"}],
    )
    state = Throttle().read_state(
        make_context(aws), _target(api), ThrottleParams(stage="prod", rate_limit=1, burst_limit=1)
    )
    assert state["method_overrides"] == ["~1/POST"]


# --- apigateway.throttle on a usage plan ------------------------------------------------------------------------------


@pytest.fixture
def usage_plan(aws: boto3.session.Session, api: str) -> str:
    return str(
        aws.client("apigateway").create_usage_plan(name="partners", apiStages=[{"apiId": api, "stage": "prod"}])["id"]
    )


def test_throttle_usage_plan_and_roll_back(
    aws: Any, api: str, usage_plan: str, make_context: Any, calls: list[str]
) -> None:
    ctx, responder = make_context(aws), Throttle()
    params = ThrottleParams(stage="prod", rate_limit=3, burst_limit=6, usage_plan_id=usage_plan)
    before = responder.read_state(ctx, _target(api), params)
    assert _mutations(calls) == [] and before["throttle"] is None

    after = responder.apply(ctx, _target(api), params, before)
    assert aws.client("apigateway").get_usage_plan(usagePlanId=usage_plan)["throttle"] == {
        "rateLimit": 3.0,
        "burstLimit": 6,
    }
    assert _method_settings(aws, api) == {}  # the stage is left alone

    assert responder.rollback(ctx, _target(api), params, before, after) == before
    assert "throttle" not in aws.client("apigateway").get_usage_plan(usagePlanId=usage_plan)


def test_throttle_refuses_a_usage_plan_that_does_not_cover_the_stage(
    aws: Any, api: str, make_context: Any, calls: list[str]
) -> None:
    plan = aws.client("apigateway").create_usage_plan(name="other")["id"]
    calls.clear()
    params = ThrottleParams(stage="prod", rate_limit=3, burst_limit=6, usage_plan_id=plan)

    with pytest.raises(ResponderError, match=rf"^usage plan {plan} does not cover API {api} stage prod$"):
        Throttle().apply(make_context(aws), _target(api), params, {})
    assert _mutations(calls) == []


def test_throttle_raises_when_the_change_does_not_take(
    aws: Any, api: str, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(aws)
    stubber = PartialStubber(
        pin_clients(monkeypatch, ctx).setdefault("apigateway", aws.client("apigateway")),
        {"UpdateStage": lambda _: None},
    )
    stubber.add_response("update_stage", {})
    with (
        stubber,
        pytest.raises(
            VerificationError, match=r"^arn:aws:apigateway:.* stage throttle is None, not \{'rate': 1.0, 'burst': 2\}$"
        ),
    ):
        Throttle().apply(ctx, _target(api), ThrottleParams(stage="prod", rate_limit=1, burst_limit=2), {})


def test_throttle_accepts_an_api_arn_without_a_region(aws: Any, api: str, make_context: Any) -> None:
    # The normalizer leaves the region empty when no event said it; the session's region is used.
    target = Target("api", f"arn:aws:apigateway:::/restapis/{api}")
    state = Throttle().read_state(make_context(aws), target, ThrottleParams(stage="prod", rate_limit=1, burst_limit=1))
    assert state["rest_api"] == api


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (Target("api_key", "abcdefghij"), "apigateway.throttle acts on api, not 'api_key'"),
        (
            Target("api", "arn:aws:apigateway:us-east-1::/restapis/abc/stages/prod"),
            "not an API Gateway REST API ARN (arn:aws:apigateway:REGION::/restapis/ID): "
            "'arn:aws:apigateway:us-east-1::/restapis/abc/stages/prod'",
        ),
        (
            Target("api", "arn:aws:execute-api:us-east-1:123456789012:abcdefghij/prod/POST/"),
            "not an API Gateway REST API ARN (arn:aws:apigateway:REGION::/restapis/ID): "
            "'arn:aws:execute-api:us-east-1:123456789012:abcdefghij/prod/POST/'",
        ),
        (
            Target("api", "arn:aws:apigateway:us-east-1::/apis/abcdefghij"),
            "not an API Gateway REST API ARN (arn:aws:apigateway:REGION::/restapis/ID): "
            "'arn:aws:apigateway:us-east-1::/apis/abcdefghij'",
        ),
        (
            Target("api", "arn:aws:apigateway:eu-west-1::/restapis/abcdefghij"),
            "arn:aws:apigateway:eu-west-1::/restapis/abcdefghij is in eu-west-1, but the session is for us-east-1",
        ),
    ],
)
def test_throttle_refuses_other_targets(aws: Any, make_context: Any, target: Target, message: str) -> None:
    with pytest.raises(ResponderError, match=f"^{re.escape(message)}$"):
        Throttle().read_state(make_context(aws), target, ThrottleParams(stage="prod", rate_limit=1, burst_limit=1))


@pytest.mark.parametrize(
    "params",
    [
        {"stage": "prod", "rate_limit": -1, "burst_limit": 1},
        {"stage": "prod", "rate_limit": 1, "burst_limit": -1},
        {"stage": "prod/*", "rate_limit": 1, "burst_limit": 1},
        {"stage": "prod", "rate_limit": 1},
        {"stage": "prod", "rate_limit": 1, "burst_limit": 1, "usage_plan_id": "../x"},
        {"stage": "prod", "rate_limit": 1, "burst_limit": 1, "method": "POST"},
    ],
)
def test_throttle_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ThrottleParams.model_validate(params)


# --- apigateway.disable-api-key --------------------------------------------------------------------------------------


@pytest.fixture
def api_key(aws: boto3.session.Session) -> Target:
    key = aws.client("apigateway").create_api_key(name="partner-acme", enabled=True)
    return Target("api_key", key["id"], account=ACCOUNT, region=REGION)


def test_disable_api_key_and_roll_back(aws: Any, api_key: Target, make_context: Any, calls: list[str]) -> None:
    ctx, responder, params = make_context(aws), DisableApiKey(), DisableApiKey.Params()
    before = responder.read_state(ctx, api_key, params)
    assert _mutations(calls) == []
    assert before == {"api_key": api_key.id, "name": "partner-acme", "enabled": True}
    assert "GetApiKey" in calls and "value" not in before  # the secret is never fetched

    after = responder.apply(ctx, api_key, params, before)
    assert after["enabled"] is False and after["disabled_by_cordon"] is True
    calls.clear()
    responder.apply(ctx, api_key, params, responder.read_state(ctx, api_key, params))
    assert _mutations(calls) == []

    assert responder.rollback(ctx, api_key, params, before, after) == before


def test_disable_api_key_rollback_leaves_a_key_that_was_already_disabled(
    aws: Any, api_key: Target, make_context: Any
) -> None:
    aws.client("apigateway").update_api_key(
        apiKey=api_key.id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
    ctx, responder, params = make_context(aws), DisableApiKey(), DisableApiKey.Params()
    before = responder.read_state(ctx, api_key, params)
    after = responder.apply(ctx, api_key, params, before)

    assert after["disabled_by_cordon"] is False
    assert responder.rollback(ctx, api_key, params, before, after) == before


def test_disable_api_key_raises_when_the_change_does_not_take(
    aws: Any, api_key: Target, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(aws)
    stubber = PartialStubber(
        pin_clients(monkeypatch, ctx).setdefault("apigateway", aws.client("apigateway")),
        {"UpdateApiKey": lambda _: None},
    )
    stubber.add_response("update_api_key", {})
    with (
        stubber,
        pytest.raises(VerificationError, match=rf"^API key {api_key.id} is still enabled after UpdateApiKey$"),
    ):
        DisableApiKey().apply(ctx, api_key, DisableApiKey.Params(), {})


def test_disable_api_key_never_echoes_what_may_be_a_key_value(aws: Any, make_context: Any) -> None:
    secret = "Xk2f9Q7wLmN3pR8sT1vY4zA6bC0dE5gH9jK2mN4p"  # looks like a key value, not an id
    with pytest.raises(ResponderError) as error:
        DisableApiKey().read_state(make_context(aws), Target("api_key", secret), DisableApiKey.Params())
    assert str(error.value) == "target is not an API Gateway API key id (10 lowercase letters or digits, or its ARN)"
    with pytest.raises(ResponderError, match=r"^apigateway.disable-api-key acts on api_key, not 'api'$"):
        DisableApiKey().read_state(make_context(aws), Target("api", "abcdefghij"), DisableApiKey.Params())
    with pytest.raises(ValidationError):
        DisableApiKey.Params.model_validate({"delete": True})


def test_disable_api_key_named_by_its_arn(aws: Any, api_key: Target, make_context: Any) -> None:
    # The normalizer's spelling of an API key entity.
    target = Target("api_key", f"arn:aws:apigateway:{REGION}::/apikeys/{api_key.id}")
    after = DisableApiKey().apply(make_context(aws), target, DisableApiKey.Params(), {})
    assert after["api_key"] == api_key.id and after["enabled"] is False
    with pytest.raises(
        ResponderError, match=rf"^API key {api_key.id} is in eu-west-1, but the session is for us-east-1$"
    ):
        DisableApiKey().read_state(
            make_context(aws), Target("api_key", target.id.replace(REGION, "eu-west-1")), DisableApiKey.Params()
        )


def test_disable_api_key_read_back_holds_and_rolls_back(aws: Any, api_key: Target, make_context: Any) -> None:
    before = check_read_back(DisableApiKey(), make_context(aws), api_key, DisableApiKey.Params())
    assert before["enabled"] is True
