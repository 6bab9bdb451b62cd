"""AWS Config rule compliance changes: the `detail` of a `Config Rules Compliance Change` EventBridge event, or
the same object bare (the `Message` of Config's SNS compliance notification).

Config sends one when a rule's verdict on a resource changes (and on a resource's first evaluation, with no
`oldEvaluationResult`). The event names no principal: it says what a resource has become, not who made it so.

Time: the verdict's `orderingTimestamp`, when Config captured the configuration it judged (for a change-triggered
rule, moments after the change itself); then `resultRecordedTime`, `notificationCreationTime`, the envelope's
time. The earliest of these is the closest to when the resource changed, which is what a rule that orders the
change against the calls around it (a bucket turned public, then read) needs.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from correlators.errors import EventRejectedError
from correlators.model import Compliance, EventSource, NormalizedEvent
from correlators.normalize import resources as res
from correlators.normalize.fields import NO_ENVELOPE, Envelope, SourceModel, Timestamp, dig, parse_time, text, validate

LABEL = "AWS Config compliance change"


class _Qualifier(SourceModel):
    configRuleName: str | None = None
    resourceType: str | None = None
    resourceId: str | None = None


class _Identifier(SourceModel):
    evaluationResultQualifier: _Qualifier = _Qualifier()
    orderingTimestamp: Timestamp | None = None


class _EvaluationResult(SourceModel):
    complianceType: str
    evaluationResultIdentifier: _Identifier = _Identifier()
    resultRecordedTime: Timestamp | None = None
    annotation: str | None = None


class ComplianceChange(SourceModel):
    newEvaluationResult: _EvaluationResult
    oldEvaluationResult: dict[str, Any] | None = None
    configRuleName: str | None = None
    resourceType: str | None = None
    resourceId: str | None = None
    awsRegion: str | None = None
    awsAccountId: str | None = None
    notificationCreationTime: Timestamp | None = None


def looks_like_compliance_change(document: dict[str, Any]) -> bool:
    return "newEvaluationResult" in document and ("configRuleName" in document or "configRuleARN" in document)


def normalize_compliance_change(
    document: dict[str, Any], origin: str, envelope: Envelope | None = None
) -> NormalizedEvent:
    envelope = envelope or NO_ENVELOPE
    change = validate(ComplianceChange, document, f"{LABEL}: detail")
    new = change.newEvaluationResult
    qualifier = new.evaluationResultIdentifier.evaluationResultQualifier
    rule = _required(change.configRuleName or qualifier.configRuleName, "configRuleName")
    resource_type = _required(change.resourceType or qualifier.resourceType, "resourceType")
    resource_id = _required(change.resourceId or qualifier.resourceId, "resourceId")
    region = change.awsRegion or envelope.region
    account = change.awsAccountId or envelope.account
    time = _time(change, envelope)
    return NormalizedEvent(
        event_id=envelope.id or _derived_id(rule, resource_type, resource_id, new.complianceType, time),
        time=time,
        source=EventSource.CONFIG,
        account=account,
        region=region,
        resources=res.unique([res.from_config(resource_type, resource_id, region, account)]),
        compliance=Compliance(
            rule=rule,
            compliance=new.complianceType,
            previous_compliance=text(dig(change.oldEvaluationResult, "complianceType")),
            resource_type=resource_type,
            resource_id=resource_id,
            annotation=text(new.annotation),
        ),
        raw=document,
        origin=origin,
    )


def _required(value: str | None, field: str) -> str:
    if not value:
        raise EventRejectedError(f"{LABEL}: detail.{field}: missing (also in newEvaluationResult's qualifier)")
    return value


def _time(change: ComplianceChange, envelope: Envelope) -> datetime:
    new = change.newEvaluationResult
    found = (
        new.evaluationResultIdentifier.orderingTimestamp or new.resultRecordedTime or change.notificationCreationTime
    )
    if found is not None:
        return found
    if envelope.time is None:
        raise EventRejectedError(
            f"{LABEL}: newEvaluationResult's orderingTimestamp and resultRecordedTime, "
            "notificationCreationTime and time: all missing"
        )
    try:
        return parse_time(envelope.time)
    except ValueError as error:
        raise EventRejectedError(f"{LABEL}: time: {error}") from None


def _derived_id(rule: str, resource_type: str, resource_id: str, compliance: str, time: datetime) -> str:
    """For a bare change (no EventBridge id): the same verdict, delivered twice, is one event."""
    key = "\n".join((rule, resource_type, resource_id, compliance, time.isoformat()))
    return "config-" + hashlib.sha256(key.encode()).hexdigest()[:32]
