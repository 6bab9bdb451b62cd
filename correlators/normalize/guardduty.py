"""GuardDuty findings (bare, or the `detail` of a `GuardDuty Finding` event)."""

from __future__ import annotations

from typing import Any

from pydantic import FiniteFloat, model_validator

from correlators.model import EventSource, Finding, NormalizedEvent, Resource, Severity
from correlators.normalize import identity
from correlators.normalize import resources as res
from correlators.normalize.fields import Envelope, SourceModel, Timestamp, dig, mapping, text, validate

LABEL = "GuardDuty finding"

# GuardDuty AI Protection finding types (docs: "GuardDuty AI Protection finding types"), by prefix so that a
# variant GuardDuty adds under one of them (PromptInjection.Indirect) is covered too. They default to severity
# Low, so a severity floor would drop every one of them: Cordon never applies one to them (the EventBridge rules
# in template.yaml and infra/member-account.yaml, and `correlation.standalone_min_severity`).
AI_PROTECTION_TYPE_PREFIXES = (
    "Impact:IAMUser/AnomalousModelInvocation",
    "Impact:IAMUser/CostHarvesting",
    "Impact:IAMUser/PromptInjection.",
)


def is_ai_protection(finding_type: str) -> bool:
    return finding_type.startswith(AI_PROTECTION_TYPE_PREFIXES)


class GuardDutyService(SourceModel):
    eventLastSeen: Timestamp | None = None
    archived: bool = False
    action: dict[str, Any] | None = None


class GuardDutyFinding(SourceModel):
    id: str
    type: str
    severity: FiniteFloat  # NaN and Infinity are refused: never read as critical
    updatedAt: Timestamp | None = None
    accountId: str | None = None
    region: str | None = None
    partition: str | None = None
    title: str | None = None
    service: GuardDutyService = GuardDutyService()
    resource: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_a_time(self) -> GuardDutyFinding:
        if self.service.eventLastSeen is None and self.updatedAt is None:
            raise ValueError("service.eventLastSeen and updatedAt: both missing")
        return self


def looks_like_guardduty(document: dict[str, Any]) -> bool:
    # Sample findings in the console and in docs omit schemaVersion and accountId; the service name stays.
    return "type" in document and (
        dig(document, "service", "serviceName") == "guardduty" or ":guardduty:" in str(document.get("arn", ""))
    )


def severity_of(score: float) -> Severity:
    """GuardDuty's documented bands: 1.0-3.9 low, 4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0 critical."""
    if score < 4:
        return Severity.LOW
    if score < 7:
        return Severity.MEDIUM
    if score < 9:
        return Severity.HIGH
    return Severity.CRITICAL


def normalize_guardduty(document: dict[str, Any], origin: str, envelope: Envelope | None = None) -> NormalizedEvent:
    envelope = envelope or Envelope()
    finding = validate(GuardDutyFinding, document, LABEL)
    account = finding.accountId or envelope.account
    partition = finding.partition or "aws"
    action = finding.service.action or {}
    api_call = mapping(action.get("awsApiCallAction"))
    error_code = text(api_call.get("errorCode"))
    # eventLastSeen is when GuardDuty last saw the activity; updatedAt moves on for bookkeeping too
    # (archiving, severity changes), so it is only the fallback.
    seen = finding.service.eventLastSeen or finding.updatedAt
    assert seen is not None  # checked by the model
    return NormalizedEvent(
        event_id=finding.id,
        time=seen,
        source=EventSource.GUARDDUTY,
        account=account,
        region=finding.region or envelope.region,
        action=_api(api_call),
        outcome="failure" if error_code else "success",
        error_code=error_code,
        actor=identity.from_access_key_details(dig(finding.resource, "accessKeyDetails"), account, partition),
        source_ip=_remote_ip(action),
        user_agent=text(dig(api_call, "userAgent", "fullUserAgent")) or text(api_call.get("userAgent")),
        resources=res.unique(_resources(finding.resource or {})),
        finding=Finding(
            type=finding.type,
            title=finding.title,
            product="guardduty",
            severity=severity_of(finding.severity),
            severity_score=finding.severity,
            status="ARCHIVED" if finding.service.archived else "ACTIVE",
        ),
        raw=document,
        origin=origin,
    )


def _api(api_call: dict[str, Any]) -> str | None:
    api = text(api_call.get("api"))
    service = text(api_call.get("serviceName"))
    if api and service:
        return f"{service.removesuffix('.amazonaws.com')}:{api}"
    return api


def _remote_ip(action: dict[str, Any]) -> str | None:
    """remoteIpDetails of whichever action GuardDuty saw (API call, network connection, port probe, ...)."""
    for details in action.values():
        if not isinstance(details, dict):
            continue
        candidates = [details.get("remoteIpDetails")]
        if isinstance(details.get("portProbeDetails"), list):
            candidates += [
                probe.get("remoteIpDetails") for probe in details["portProbeDetails"] if isinstance(probe, dict)
            ]
        for remote in candidates:
            address = text(dig(remote, "ipAddressV4")) or text(dig(remote, "ipAddressV6"))
            if address:
                return address
    return None


def _resources(resource: dict[str, Any]) -> list[Resource | None]:
    found: list[Resource | None] = [res.instance(dig(resource, "instanceDetails", "instanceId"))]
    buckets = resource.get("s3BucketDetails")
    for bucket in buckets if isinstance(buckets, list) else []:
        if name := text(mapping(bucket).get("name")):
            found.append(res.bucket(name))
    return found
