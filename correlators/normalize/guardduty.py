"""GuardDuty findings (bare, or the `detail` of a `GuardDuty Finding` event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import FiniteFloat, model_validator

from correlators.model import Actor, EventSource, Finding, NormalizedEvent, Resource, Severity
from correlators.normalize import identity
from correlators.normalize import resources as res
from correlators.normalize.fields import NO_ENVELOPE, Envelope, SourceModel, Timestamp, dig, mapping, text, validate

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
    detection: dict[str, Any] | None = None  # `anomaly`, or `sequence` for an attack sequence


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
    envelope = envelope or NO_ENVELOPE
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
    actor = identity.from_access_key_details(dig(finding.resource, "accessKeyDetails"), account, partition)
    sequence = _Sequence.of(finding.service.detection, account, partition)
    return NormalizedEvent(
        event_id=finding.id,
        time=seen,
        source=EventSource.GUARDDUTY,
        account=account,
        region=finding.region or envelope.region,
        action=_api(api_call),
        outcome="failure" if error_code else "success",
        error_code=error_code,
        actor=actor or (sequence.actors[0] if sequence.actors else None),
        source_ip=_remote_ip(action) or sequence.source_ip,
        user_agent=text(dig(api_call, "userAgent", "fullUserAgent")) or text(api_call.get("userAgent")),
        resources=res.unique(_resources(finding.resource or {}) + sequence.resources),
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


@dataclass(frozen=True)
class _Sequence:
    """What an attack sequence (`service.detection.sequence`, AttackSequence:* findings) names: its actors, with
    their users, keys, sessions and instances resolved as any finding's `accessKeyDetails`; its resources (the
    access keys among them resolved the same way); and its first network endpoint. Signals refer to these by id,
    so the actors and resources are every entity the signals name."""

    actors: list[Actor]
    resources: list[Resource | None]
    source_ip: str | None

    @classmethod
    def of(cls, detection: dict[str, Any] | None, account: str | None, partition: str) -> _Sequence:
        sequence = mapping(dig(detection, "sequence"))
        actors = [_sequence_actor(mapping(a), account, partition) for a in _list(sequence.get("actors"))]
        found = [actor for actor in actors if actor is not None]
        resources: list[Resource | None] = [r for actor in found for r in res.identities_of(actor)]
        for item in map(mapping, _list(sequence.get("resources"))):
            if item.get("resourceType") == "ACCESS_KEY":
                details = {**mapping(dig(item, "data", "accessKey")), "accessKeyId": item.get("uid")}
                key_owner = identity.from_access_key_details(details, text(item.get("accountId")) or account, partition)
                resources += res.identities_of(key_owner)
            else:
                resources.append(res.from_resource_v2(item))
        ips = [text(mapping(e).get("ip")) for e in _list(sequence.get("endpoints"))]
        return cls(found, resources, next((ip for ip in ips if ip), None))


def _sequence_actor(actor: dict[str, Any], account: str | None, partition: str) -> Actor | None:
    """An attack-sequence actor (`user` {name, uid, type, credentialUid, account}, `session` {issuer}) read as
    GuardDuty's `accessKeyDetails`; a role session's issuer ARN names the role when `user.name` does not."""
    user = mapping(actor.get("user"))
    if not user:
        return None
    issuer = text(dig(actor, "session", "issuer"))
    issuer_role = identity.role_arn_from_session(issuer) or (issuer if issuer and ":role/" in issuer else None)
    name = text(user.get("name"))
    if text(user.get("type")) == "AssumedRole" and issuer_role:
        name = issuer_role.rsplit("/", 1)[-1]
    details = {
        "accessKeyId": user.get("credentialUid"),
        "principalId": user.get("uid"),
        "userName": name,
        "userType": user.get("type"),
    }
    owner_account = text(dig(user, "account", "uid")) or account
    return identity.from_access_key_details(details, owner_account, partition)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
