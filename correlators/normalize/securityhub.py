"""ASFF findings (AWS Security Finding Format): Security Hub events, GetFindings responses, bare findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from correlators.model import EventSource, Finding, NormalizedEvent, Resource, Severity
from correlators.normalize import identity
from correlators.normalize import resources as res
from correlators.normalize.cloudtrail import ip_or_none
from correlators.normalize.fields import Envelope, SourceModel, Timestamp, dig, mapping, text, validate

LABEL = "ASFF finding"


class AsffSeverity(SourceModel):
    Label: str | None = None
    Normalized: float | None = None
    Product: float | None = None


class AsffFinding(SourceModel):
    Id: str
    ProductArn: str
    AwsAccountId: str | None = None
    Types: list[str] = Field(default_factory=list)
    GeneratorId: str | None = None
    Title: str | None = None
    ProductName: str | None = None
    Region: str | None = None
    Severity: AsffSeverity
    LastObservedAt: Timestamp | None = None
    UpdatedAt: Timestamp | None = None
    CreatedAt: Timestamp | None = None
    Resources: list[dict[str, Any]] = Field(default_factory=list)
    ProductFields: dict[str, Any] = Field(default_factory=dict)
    Workflow: dict[str, Any] | None = None
    RecordState: str | None = None
    Compliance: dict[str, Any] | None = None
    Action: dict[str, Any] | None = None
    Network: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_time_and_type(self) -> AsffFinding:
        if not (self.LastObservedAt or self.UpdatedAt or self.CreatedAt):
            raise ValueError("LastObservedAt, UpdatedAt and CreatedAt: all missing")
        if not (self.Types or self.GeneratorId):
            raise ValueError("Types and GeneratorId: both missing")
        return self


def looks_like_asff(document: dict[str, Any]) -> bool:
    return "ProductArn" in document or {"SchemaVersion", "GeneratorId"} <= document.keys()


def normalize_asff(document: dict[str, Any], origin: str, envelope: Envelope | None = None) -> NormalizedEvent:
    envelope = envelope or Envelope()
    finding = validate(AsffFinding, document, LABEL)
    account = finding.AwsAccountId or envelope.account
    partition = _partition(finding.ProductArn)
    return NormalizedEvent(
        event_id=finding.Id,
        time=_seen(finding),
        source=EventSource.SECURITYHUB,
        account=account,
        region=finding.Region or _first_resource_region(finding) or envelope.region,
        action=_api(finding),
        actor=identity.from_asff_resources(finding.Resources, account, partition),
        source_ip=_source_ip(finding),
        resources=res.unique(_resources(finding.Resources)),
        finding=Finding(
            type=finding.Types[0] if finding.Types else str(finding.GeneratorId),
            title=finding.Title,
            product=f"securityhub/{_product_name(finding)}",
            severity=severity_of(finding.Severity),
            severity_score=_score(finding.Severity),
            status=status_of(finding),
        ),
        raw=document,
        origin=origin,
    )


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def _seen(finding: AsffFinding) -> datetime:
    # LastObservedAt is when the provider last saw the activity; UpdatedAt is when the finding record changed
    # (which includes workflow edits), CreatedAt when it was first recorded.
    seen = finding.LastObservedAt or finding.UpdatedAt or finding.CreatedAt
    assert seen is not None  # checked by the model
    return seen


_LABELS = {severity.value.upper(): severity for severity in Severity}


def severity_of(severity: AsffSeverity) -> Severity:
    """Label when present; else the documented Normalized bands (0 informational, 1-39 low, 40-69 medium,
    70-89 high, 90-100 critical), applied to Product as a last resort."""
    if severity.Label and severity.Label.upper() in _LABELS:
        return _LABELS[severity.Label.upper()]
    score = _score(severity) or 0
    for floor, band in ((90, Severity.CRITICAL), (70, Severity.HIGH), (40, Severity.MEDIUM), (1, Severity.LOW)):
        if score >= floor:
            return band
    return Severity.INFORMATIONAL


def _score(severity: AsffSeverity) -> float | None:
    return severity.Normalized if severity.Normalized is not None else severity.Product


def status_of(finding: AsffFinding) -> str | None:
    """One status, the most final first: ARCHIVED record, RESOLVED/SUPPRESSED workflow, then the control's
    compliance (PASSED controls are kept as PASSED, so detection can skip them), then the workflow (NEW,
    NOTIFIED), then ACTIVE."""
    workflow = text(dig(finding.Workflow, "Status"))
    if finding.RecordState == "ARCHIVED":
        return "ARCHIVED"
    if workflow in ("RESOLVED", "SUPPRESSED"):
        return workflow
    return text(dig(finding.Compliance, "Status")) or workflow or finding.RecordState


def _product_name(finding: AsffFinding) -> str:
    return (
        finding.ProductName
        or text(finding.ProductFields.get("aws/securityhub/ProductName"))
        or finding.ProductArn.rsplit("/", 1)[-1]
    )


def _first_resource_region(finding: AsffFinding) -> str | None:
    return next((text(r.get("Region")) for r in finding.Resources if text(r.get("Region"))), None)


def _api(finding: AsffFinding) -> str | None:
    api_call = mapping(dig(finding.Action, "AwsApiCallAction"))
    api = text(api_call.get("Api")) or _guardduty_field(finding, "action/awsApiCallAction/api")
    service = text(api_call.get("ServiceName")) or _guardduty_field(finding, "action/awsApiCallAction/serviceName")
    return f"{service.removesuffix('.amazonaws.com')}:{api}" if api and service else api


def _source_ip(finding: AsffFinding) -> str | None:
    action = finding.Action or {}
    for kind in ("AwsApiCallAction", "NetworkConnectionAction"):
        if address := text(dig(action, kind, "RemoteIpDetails", "IpAddressV4")):
            return address
    for kind in ("awsApiCallAction", "networkConnectionAction"):
        if address := _guardduty_field(finding, f"action/{kind}/remoteIpDetails/ipAddressV4"):
            return address
    return ip_or_none(text(dig(finding.Network, "SourceIpV4")))


def _guardduty_field(finding: AsffFinding, suffix: str) -> str | None:
    """GuardDuty findings imported into Security Hub keep their details flattened in ProductFields, as
    `action/awsApiCallAction/api` or `aws/guardduty/service/action/awsApiCallAction/api`."""
    for key, value in finding.ProductFields.items():
        if (key == suffix or key.endswith("/" + suffix)) and text(value):
            return str(value)
    return None


def _resources(resources: list[dict[str, Any]]) -> list[Resource | None]:
    # IAM users, roles and keys are the actor (the suspect identity), not resources; from_arn skips them.
    return [res.from_arn(resource.get("Id")) for resource in resources]
