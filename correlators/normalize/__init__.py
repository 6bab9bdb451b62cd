"""Turn one raw record into normalized events: tell the source apart, parse it, resolve identities, enrich.

    events = normalize(record, config)   # list[NormalizedEvent], or raises EventRejectedError(reason, where)

A record is an EventBridge event (CloudTrail API call, GuardDuty finding, Security Hub findings, CloudWatch alarm
state change, AWS Config rule compliance change), or what such an event carries bare: a CloudTrail record, a
GuardDuty finding, an ASFF finding, a Config compliance change.
A Security Hub event may carry several findings: one event each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from correlators.config import Config
from correlators.errors import EventRejectedError
from correlators.ingest import RawRecord
from correlators.model import NormalizedEvent
from correlators.normalize.cloudtrail import (
    CloudTrailCall,
    looks_like_cloudtrail,
    normalize_cloudtrail,
    read_cloudtrail,
)
from correlators.normalize.cloudwatch import normalize_alarm
from correlators.normalize.compliance import looks_like_compliance_change, normalize_compliance_change
from correlators.normalize.enrich import classified, enrich, judge
from correlators.normalize.fields import NO_ENVELOPE, Envelope, text
from correlators.normalize.guardduty import looks_like_guardduty, normalize_guardduty
from correlators.normalize.securityhub import looks_like_asff, normalize_asff

__all__ = ["INACTIVE_FINDING_STATUSES", "SUPPORTED_DETAIL_TYPES", "CloudTrailCall", "normalize", "normalize_screened"]

# Finding.status values that mean "nothing to act on": archived or closed findings, passed controls.
INACTIVE_FINDING_STATUSES = frozenset({"ARCHIVED", "RESOLVED", "SUPPRESSED", "PASSED"})

_Parser = Callable[[dict[str, Any], str, Envelope], list[NormalizedEvent]]


def _one(parse: Callable[[dict[str, Any], str, Envelope], NormalizedEvent]) -> _Parser:
    return lambda detail, origin, envelope: [parse(detail, origin, envelope)]


def _findings(detail: dict[str, Any], origin: str, envelope: Envelope) -> list[NormalizedEvent]:
    findings = detail.get("findings")
    if not isinstance(findings, list) or not findings:
        raise EventRejectedError("Security Hub event: detail.findings: expected a non-empty list of ASFF findings")
    events = []
    for index, finding in enumerate(findings):
        if not isinstance(finding, dict):
            raise EventRejectedError(f"Security Hub event: detail.findings[{index}]: expected an object")
        try:
            events.append(normalize_asff(finding, origin, envelope))
        except EventRejectedError as error:
            # One malformed finding rejects the event: AWS sends one finding per event, so a bad one means a
            # broken producer, and a partial event would hide that.
            raise EventRejectedError(f"Security Hub event: detail.findings[{index}]: {error.reason}") from None
    return events


def _requested_findings(detail: dict[str, Any], origin: str, envelope: Envelope) -> list[NormalizedEvent]:
    """Findings an analyst selected in Security Hub and sent with the custom action: a request for containment."""
    events = _findings(detail, origin, envelope)
    return [
        event.model_copy(update={"finding": event.finding.model_copy(update={"requested": True})})
        if event.finding is not None
        else event
        for event in events
    ]


_CLOUDTRAIL = _one(normalize_cloudtrail)

SUPPORTED_DETAIL_TYPES: dict[str, _Parser] = {
    "AWS API Call via CloudTrail": _CLOUDTRAIL,
    # The same CloudTrail record shape, for sign-ins (ConsoleLogin) and service-initiated events.
    "AWS Console Sign In via CloudTrail": _CLOUDTRAIL,
    "AWS Service Event via CloudTrail": _CLOUDTRAIL,
    "GuardDuty Finding": _one(normalize_guardduty),
    "Security Hub Findings - Imported": _findings,
    "Security Hub Findings": _findings,  # the older name, still in collectors' test data
    "Security Hub Findings - Custom Action": _requested_findings,
    "CloudWatch Alarm State Change": _one(normalize_alarm),
    "Config Rules Compliance Change": _one(normalize_compliance_change),
}

# The detail-types whose detail is one CloudTrail record. A tuple: a detail-type that is a list or an object
# (hostile input) is compared, never hashed.
_CLOUDTRAIL_DETAIL_TYPES = tuple(name for name, parse in SUPPORTED_DETAIL_TYPES.items() if parse is _CLOUDTRAIL)

_EXPECTED = (
    "expected an EventBridge event (detail-type, detail), a CloudTrail record (eventVersion, eventTime, "
    "eventName, eventSource), a GuardDuty finding (type, service.serviceName 'guardduty'), "
    "an ASFF finding (SchemaVersion, ProductArn, Id), or a Config compliance change (configRuleName, "
    "newEvaluationResult)"
)


def normalize(record: RawRecord, config: Config) -> list[NormalizedEvent]:
    """The normalized, enriched events in one record, or EventRejectedError (carrying `record.where`)."""
    return cast(list[NormalizedEvent], normalize_screened(record, config, _every_call))


def normalize_screened(
    record: RawRecord, config: Config, may_match: Callable[[CloudTrailCall], bool]
) -> list[NormalizedEvent] | list[CloudTrailCall]:
    """`normalize`, except that a CloudTrail call no rule can match (`may_match`) is left unbuilt: the call, with
    its resources classified, stands for its event. Refuses what `normalize` refuses, with the same reasons (it is
    `normalize`, with every call passed)."""
    payload, where = record.payload, record.where
    carried = _cloudtrail_record(payload)
    try:
        if carried is None:
            events = _parse(payload, where)
        else:
            document, envelope = carried
            call = read_cloudtrail(document, where, envelope)
    except EventRejectedError as error:
        raise EventRejectedError(error.reason, where=where) from None
    if carried is None:
        for event in events:
            enrich(event, config)  # in place
        return events
    if config.assets and call.resources:
        call.resources = classified(call.resources, config)  # as `enrich` classifies an event's
    if not may_match(call):
        return [call]
    event = call.event()
    return [judge(event, config) if event.resources or event.images else event]


def _every_call(call: CloudTrailCall) -> bool:
    return True


def _cloudtrail_record(payload: dict[str, Any]) -> tuple[dict[str, Any], Envelope] | None:
    """The CloudTrail record a payload is, or carries as the detail of a CloudTrail event, with its envelope; None
    for anything else (what `_parse` reads, a malformed CloudTrail event included)."""
    if "eventVersion" in payload and "detail-type" not in payload and "detail" not in payload:
        return payload, NO_ENVELOPE  # a bare record, as nearly every line of a trail is
    if payload.get("detail-type") in _CLOUDTRAIL_DETAIL_TYPES and isinstance(payload.get("detail"), dict):
        return payload["detail"], _envelope_of(payload)  # what `_parse_envelope` would read
    return None


def _parse(payload: dict[str, Any], origin: str) -> list[NormalizedEvent]:
    if "detail-type" in payload:
        return _parse_envelope(payload, origin)
    if isinstance(payload.get("detail"), dict):
        # An EventBridge fragment without its detail-type (as in some sample events): read what it carries.
        return _parse_bare(payload["detail"], origin, _envelope_of(payload))
    return _parse_bare(payload, origin, NO_ENVELOPE)


def _parse_envelope(payload: dict[str, Any], origin: str) -> list[NormalizedEvent]:
    detail_type = payload["detail-type"]
    parse = SUPPORTED_DETAIL_TYPES.get(detail_type) if isinstance(detail_type, str) else None
    if parse is None:
        supported = ", ".join(f"'{name}'" for name in SUPPORTED_DETAIL_TYPES)
        raise EventRejectedError(f"unsupported detail-type {detail_type!r} (supported: {supported})")
    detail = payload.get("detail")
    if not isinstance(detail, dict):
        raise EventRejectedError(f"{detail_type} event: detail: expected an object")
    return parse(detail, origin, _envelope_of(payload))


def _parse_bare(document: dict[str, Any], origin: str, envelope: Envelope) -> list[NormalizedEvent]:
    if looks_like_cloudtrail(document):
        return [normalize_cloudtrail(document, origin, envelope)]
    if looks_like_asff(document):
        return [normalize_asff(document, origin, envelope)]
    if looks_like_guardduty(document):
        return [normalize_guardduty(document, origin, envelope)]
    if looks_like_compliance_change(document):
        return [normalize_compliance_change(document, origin, envelope)]
    if isinstance(document.get("findings"), list):  # the detail of a Security Hub event
        return _findings(document, origin, envelope)
    keys = ", ".join(list(document)[:6]) + (", ..." if len(document) > 6 else "")
    raise EventRejectedError(f"not a security event: {_EXPECTED}; got an object with keys {keys or '(none)'}")


def _envelope_of(payload: dict[str, Any]) -> Envelope:
    return Envelope(
        id=text(payload.get("id")),
        account=text(payload.get("account")),
        region=text(payload.get("region")),
        time=text(payload.get("time")),
    )
