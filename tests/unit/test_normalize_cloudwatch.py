"""CloudWatch alarm state changes: SageMaker endpoint, API Gateway and EC2 alarms become events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import Alarm, EntityType, EventSource, NormalizedEvent, Resource
from correlators.normalize import normalize

ACCOUNT = "123456789012"


def _alarm_event(metrics: list[dict[str, Any]] | None, **detail: Any) -> dict[str, Any]:
    # Shape from the CloudWatch User Guide, "Alarm events and EventBridge" (single metric alarm).
    event: dict[str, Any] = {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2024-05-01T17:04:40Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:Fraud5xx"],
        "detail": {
            "alarmName": "Fraud5xx",
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2024-05-01T17:04:40.985+0000"},
            "previousState": {
                "value": "OK",
                "reason": "Threshold Crossed",
                "timestamp": "2024-05-01T13:56:40.987+0000",
            },
            "configuration": {"metrics": metrics} if metrics is not None else {"alarmRule": "ALARM(a) OR ALARM(b)"},
        },
    }
    event["detail"].update(detail)
    return event


def _metric(
    namespace: str, name: str, dimensions: dict[str, str], *, id_: str = "m1", return_data: bool = True
) -> dict[str, Any]:
    return {
        "id": id_,
        "metricStat": {
            "metric": {"namespace": namespace, "name": name, "dimensions": dimensions},
            "period": 60,
            "stat": "Sum",
        },
        "returnData": return_data,
    }


def _one(payload: dict[str, Any]) -> NormalizedEvent:
    [event] = normalize(RawRecord(payload, "alarms.jsonl:2"), Config())
    return event


def test_sagemaker_endpoint_alarm() -> None:
    payload = _alarm_event(
        [
            _metric(
                "AWS/SageMaker", "Invocation5XXErrors", {"EndpointName": "Fraud-Detector", "VariantName": "AllTraffic"}
            )
        ]
    )

    event = _one(payload)

    assert event.event_id == "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92"
    assert event.source is EventSource.CLOUDWATCH
    assert event.time == datetime(2024, 5, 1, 17, 4, 40, 985000, tzinfo=UTC)
    assert (event.account, event.region, event.actor) == (ACCOUNT, "us-east-1", None)
    assert event.alarm == Alarm(
        name="Fraud5xx",
        state="ALARM",
        previous_state="OK",
        reason="Threshold Crossed",
        namespace="AWS/SageMaker",
        metric="Invocation5XXErrors",
        dimensions={"EndpointName": "Fraud-Detector", "VariantName": "AllTraffic"},
    )
    assert event.resources == [
        Resource(
            type=EntityType.SAGEMAKER_ENDPOINT, id=f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/fraud-detector"
        )
    ]
    assert event.raw == payload["detail"]


def test_api_gateway_alarms_by_name_and_by_id() -> None:
    by_name = _one(_alarm_event([_metric("AWS/ApiGateway", "5XXError", {"ApiName": "inference-api"})]))
    by_id = _one(_alarm_event([_metric("AWS/ApiGateway", "5xx", {"ApiId": "a1b2c3d4e5"})]))

    assert by_name.resources == [
        Resource(type=EntityType.API, id="arn:aws:apigateway:us-east-1::/apis-by-name/inference-api")
    ]
    assert by_id.resources == [Resource(type=EntityType.API, id="arn:aws:apigateway:us-east-1::/apis/a1b2c3d4e5")]


def test_metric_math_alarm_has_no_single_metric_but_keeps_what_its_inputs_share() -> None:
    payload = _alarm_event(
        [
            {"id": "e1", "expression": "SUM(METRICS())", "label": "Total", "returnData": True},
            _metric("AWS/EC2", "NetworkIn", {"InstanceId": "i-12345678901234567"}, return_data=False),
            _metric("AWS/EC2", "NetworkOut", {"InstanceId": "i-12345678901234567"}, id_="m2", return_data=False),
        ]
    )

    event = _one(payload)

    assert event.alarm is not None
    assert (event.alarm.namespace, event.alarm.metric) == ("AWS/EC2", None)
    assert event.alarm.dimensions == {"InstanceId": "i-12345678901234567"}
    assert event.resources == [Resource(type=EntityType.INSTANCE, id="i-12345678901234567")]


def test_composite_alarm_has_no_metrics() -> None:
    event = _one(_alarm_event(None))

    assert event.alarm is not None
    assert (event.alarm.namespace, event.alarm.metric, event.alarm.dimensions) == (None, None, {})
    assert event.resources == []


def test_time_falls_back_to_the_envelope() -> None:
    payload = _alarm_event([])
    del payload["detail"]["state"]["timestamp"]

    assert _one(payload).time == datetime(2024, 5, 1, 17, 4, 40, tzinfo=UTC)


def test_missing_state_value_and_id_are_rejected() -> None:
    payload = _alarm_event([])
    del payload["detail"]["state"]["value"]
    with pytest.raises(
        EventRejectedError, match=r"^alarms.jsonl:2: CloudWatch alarm event: detail: state.value: missing$"
    ):
        _one(payload)

    payload = _alarm_event([])
    del payload["id"]
    with pytest.raises(EventRejectedError, match=r"CloudWatch alarm event: id: missing$"):
        _one(payload)


def test_bad_envelope_time_is_rejected_when_needed() -> None:
    payload = _alarm_event([])
    del payload["detail"]["state"]["timestamp"]
    payload["time"] = "1970-01-01T00:00:00Z"

    with pytest.raises(
        EventRejectedError, match=r"CloudWatch alarm event: time: impossible timestamp '1970-01-01T00:00:00Z'"
    ):
        _one(payload)
