"""sagemaker.rollback-endpoint-config against moto's SageMaker. moto 5.2 lacks UpdateEndpoint and CloudTrail's
LookupEvents: a PartialStubber answers UpdateEndpoint (checking the request, and moving moto's endpoint as AWS would)
and a Stubber answers LookupEvents (checking the request) with the endpoint's deployment history."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber
from moto.sagemaker.models import sagemaker_backends

from responders.base import ResponderError, Target
from responders.sagemaker import RollbackEndpointConfig, previous_config
from responders.sagemaker.endpoint_rollback import RollbackEndpointConfigParams

from .conftest import ACCOUNT, REGION
from .stubbing import PartialStubber, pin_clients

ENDPOINT = "fraud-scorer"
TARGET = Target(
    type="sagemaker_endpoint", id=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}", account=ACCOUNT
)
BEFORE = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
PARAMS = RollbackEndpointConfigParams(before=BEFORE)
RESPONDER = RollbackEndpointConfig()


def _record(name: str, when: str, endpoint: str, config: str, error: str | None = None) -> dict[str, Any]:
    record = {
        "eventName": name,
        "eventTime": when,
        "eventSource": "sagemaker.amazonaws.com",
        "requestParameters": {"endpointName": endpoint, "endpointConfigName": config},
    }
    return record | ({"errorCode": error} if error else {})


HISTORY = {
    "UpdateEndpoint": [
        _record("UpdateEndpoint", "2026-11-12T09:00:00Z", "churn-model", "churn-config-v2"),  # another endpoint
        _record(
            "UpdateEndpoint", "2026-11-11T16:00:00Z", ENDPOINT, "fraud-scorer-config-broken", "ValidationException"
        ),
        _record("UpdateEndpoint", "2026-11-10T14:30:00Z", ENDPOINT, "fraud-scorer-config-v7"),
    ],
    "CreateEndpoint": [_record("CreateEndpoint", "2026-11-01T08:00:00Z", ENDPOINT, "fraud-scorer-config-v6")],
}


@pytest.fixture
def endpoint(aws: Any) -> None:
    sagemaker = aws.client("sagemaker")
    for version in ("v6", "v7", "v8"):
        sagemaker.create_model(
            ModelName=f"fraud-{version}", ExecutionRoleArn="arn:aws:iam::1:role/x", PrimaryContainer={"Image": "img"}
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"fraud-scorer-config-{version}",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": f"fraud-{version}",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="fraud-scorer-config-v8")  # the tampered one


def _serving() -> str:
    return str(sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT].endpoint_config_name)


def _stubs(aws: Any, ctx: Any, monkeypatch: pytest.MonkeyPatch, reads: int) -> tuple[Stubber, PartialStubber]:
    """LookupEvents answered from HISTORY for `reads` state reads (two lookups each); UpdateEndpoint moves moto."""
    clients = pin_clients(monkeypatch, ctx)
    cloudtrail = clients["cloudtrail"] = aws.client("cloudtrail")
    history = Stubber(cloudtrail)
    for _ in range(reads):
        for name, records in HISTORY.items():
            history.add_response(
                "lookup_events",
                {"Events": [{"CloudTrailEvent": json.dumps(r)} for r in records]},
                {
                    "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": name}],
                    "EndTime": BEFORE,
                    "MaxResults": 50,
                },
            )
    sagemaker = clients["sagemaker"] = aws.client("sagemaker")

    def deploy(request: dict[str, Any]) -> None:
        sagemaker_backends[ACCOUNT][REGION].endpoints[request["EndpointName"]].endpoint_config_name = request[
            "EndpointConfigName"
        ]

    return history, PartialStubber(sagemaker, {"UpdateEndpoint": deploy})


def _expect_update(stubber: PartialStubber, config: str) -> None:
    stubber.add_response(
        "update_endpoint",
        {"EndpointArn": TARGET.id},
        {"EndpointName": ENDPOINT, "EndpointConfigName": config},
    )


def test_the_endpoint_serves_its_config_from_before_the_incident_and_rollback_serves_the_other_again(
    aws: Any, endpoint: None, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the endpoint serving the tampered config, and CloudTrail's history of its deployments
    ctx = make_context(aws)
    history, sagemaker = _stubs(aws, ctx, monkeypatch, reads=5)
    _expect_update(sagemaker, "fraud-scorer-config-v7")
    with history, sagemaker:
        before = RESPONDER.read_state(ctx, TARGET, PARAMS)
        assert before["previous_endpoint_config"] == "fraud-scorer-config-v7"
        # WHEN rolled back to it
        after = RESPONDER.apply(ctx, TARGET, PARAMS, before)
        # THEN UpdateEndpoint asked for the last successful deployment before the incident, and it is served
        assert _serving() == "fraud-scorer-config-v7" and after["endpoint_config"] == "fraud-scorer-config-v7"
        assert RESPONDER.holds(ctx, TARGET, PARAMS, before, after)
        # WHEN the action is undone THEN the config served before the action is served again
        _expect_update(sagemaker, "fraud-scorer-config-v8")
        RESPONDER.rollback(ctx, TARGET, PARAMS, before, after)
    sagemaker.assert_no_pending_responses()
    assert _serving() == "fraud-scorer-config-v8"


def test_an_endpoint_already_on_its_previous_config_is_left_alone(
    aws: Any, endpoint: None, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT].endpoint_config_name = "fraud-scorer-config-v7"
    ctx = make_context(aws)
    history, sagemaker = _stubs(aws, ctx, monkeypatch, reads=2)
    with history, sagemaker:  # no UpdateEndpoint expected: the Stubber would fail on one
        before = RESPONDER.read_state(ctx, TARGET, PARAMS)
        RESPONDER.apply(ctx, TARGET, PARAMS, before)
    assert _serving() == "fraud-scorer-config-v7"


def test_an_endpoint_with_no_deployment_before_the_incident_is_refused(
    aws: Any, endpoint: None, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(aws)
    clients = pin_clients(monkeypatch, ctx)
    cloudtrail = clients["cloudtrail"] = aws.client("cloudtrail")
    history = Stubber(cloudtrail)
    for _ in range(2):
        history.add_response("lookup_events", {"Events": []})
    with history, pytest.raises(ResponderError, match="no deployment of endpoint fraud-scorer before the incident"):
        RESPONDER.apply(ctx, TARGET, PARAMS, {})
    assert _serving() == "fraud-scorer-config-v8"


def test_rollback_leaves_a_config_someone_deployed_since(
    aws: Any, endpoint: None, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_context(aws)
    history, sagemaker = _stubs(aws, ctx, monkeypatch, reads=4)
    _expect_update(sagemaker, "fraud-scorer-config-v7")
    with history, sagemaker:
        before = RESPONDER.read_state(ctx, TARGET, PARAMS)
        after = RESPONDER.apply(ctx, TARGET, PARAMS, before)
        sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT].endpoint_config_name = "fraud-scorer-config-v6"
        with pytest.raises(ResponderError, match="serves fraud-scorer-config-v6 now, not the rolled-back config"):
            RESPONDER.rollback(ctx, TARGET, PARAMS, before, after)
    assert _serving() == "fraud-scorer-config-v6"


def test_the_previous_config_is_the_last_successful_deployment_of_this_endpoint_before() -> None:
    records = [r for group in HISTORY.values() for r in group]
    assert previous_config(records, "Fraud-Scorer", BEFORE) == "fraud-scorer-config-v7"
    assert previous_config(records, ENDPOINT, datetime(2026, 11, 5, tzinfo=UTC)) == "fraud-scorer-config-v6"
    assert previous_config(records, ENDPOINT, datetime(2026, 10, 1, tzinfo=UTC)) is None
