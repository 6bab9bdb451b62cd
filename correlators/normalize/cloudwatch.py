"""CloudWatch alarm state changes: an ML endpoint's error or latency alarm is a signal like any finding."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from correlators.errors import EventRejectedError
from correlators.model import Alarm, EventSource, NormalizedEvent, Resource
from correlators.normalize import resources as res
from correlators.normalize.fields import Envelope, SourceModel, Timestamp, dig, parse_time, text, validate

LABEL = "CloudWatch alarm event"


class AlarmState(SourceModel):
    value: str
    reason: str | None = None
    timestamp: Timestamp | None = None


class AlarmDetail(SourceModel):
    alarmName: str
    state: AlarmState
    previousState: dict[str, Any] | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)


def normalize_alarm(detail: dict[str, Any], origin: str, envelope: Envelope) -> NormalizedEvent:
    alarm = validate(AlarmDetail, detail, f"{LABEL}: detail")
    if not envelope.id:
        raise EventRejectedError(f"{LABEL}: id: missing")
    metrics = _metrics(alarm.configuration)
    namespace, metric, dimensions = _reported(alarm.configuration, metrics)
    return NormalizedEvent(
        event_id=envelope.id,
        time=alarm.state.timestamp or _envelope_time(envelope),
        source=EventSource.CLOUDWATCH,
        account=envelope.account,
        region=envelope.region,
        resources=res.unique(resource for metric in metrics for resource in _dimension_resources(metric, envelope)),
        alarm=Alarm(
            name=alarm.alarmName,
            state=alarm.state.value,
            previous_state=text(dig(alarm.previousState, "value")),
            reason=alarm.state.reason,
            namespace=namespace,
            metric=metric,
            dimensions=dimensions,
        ),
        raw=detail,
        origin=origin,
    )


def _envelope_time(envelope: Envelope) -> datetime:
    if envelope.time is None:
        raise EventRejectedError(f"{LABEL}: detail.state.timestamp and time: both missing")
    try:
        return parse_time(envelope.time)
    except ValueError as error:
        raise EventRejectedError(f"{LABEL}: time: {error}") from None


def _metrics(configuration: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric the alarm watches. Metric-math and Metrics Insights entries have no metricStat, and
    composite alarms have no metrics at all (only an alarmRule)."""
    entries = configuration.get("metrics")
    if not isinstance(entries, list):
        return []
    return [
        metric
        for entry in entries
        if isinstance(entry, dict) and isinstance(metric := dig(entry, "metricStat", "metric"), dict)
    ]


def _reported(
    configuration: dict[str, Any], metrics: list[dict[str, Any]]
) -> tuple[str | None, str | None, dict[str, str]]:
    """(namespace, metric name, dimensions) of what the alarm evaluates. For metric math there is no single
    metric name, but the namespace and dimensions its inputs share still say what is being watched."""
    listed = configuration.get("metrics")
    entries = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    reported = next((e for e in entries if e.get("returnData")), entries[0] if len(entries) == 1 else None)
    plain = dig(reported, "metricStat", "metric")
    if isinstance(plain, dict):
        return text(plain.get("namespace")), text(plain.get("name")), _dimensions(plain)
    namespaces = {text(m.get("namespace")) for m in metrics}
    shared = [_dimensions(m) for m in metrics]
    dimensions = shared[0] if shared and all(d == shared[0] for d in shared) else {}
    return (namespaces.pop() if len(namespaces) == 1 else None), None, dimensions


def _dimensions(metric: dict[str, Any]) -> dict[str, str]:
    dimensions = metric.get("dimensions")
    if not isinstance(dimensions, dict):
        return {}
    return {str(name): str(value) for name, value in dimensions.items() if value is not None}


def _dimension_resources(metric: dict[str, Any], envelope: Envelope) -> list[Resource | None]:
    dimensions = _dimensions(metric)
    found: list[Resource | None] = [res.instance(dimensions.get("InstanceId"))]
    if endpoint := dimensions.get("EndpointName"):
        found.append(res.sagemaker("endpoint", endpoint, envelope.region, envelope.account))
    if api_name := dimensions.get("ApiName"):  # REST APIs report by name
        found.append(res.api_by_name(api_name, envelope.region))
    if api_id := dimensions.get("ApiId"):  # HTTP and WebSocket APIs report by id; their ARNs are /apis/ID
        found.append(res.http_api(api_id, envelope.region))
    return found
