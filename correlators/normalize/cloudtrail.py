"""CloudTrail records (from S3 log files, or the `detail` of an `AWS API Call via CloudTrail` event)."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import datetime
from functools import lru_cache
from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

from correlators.model import Actor, EventSource, NormalizedEvent, Resource, TrustedFields, asset_classes
from correlators.normalize import identity, sagemaker
from correlators.normalize import resources as res
from correlators.normalize.fields import NO_ENVELOPE, Envelope, JsonObject, SourceFields, Timestamp, dig, text

LABEL = "CloudTrail record"


# typing_extensions' TypedDict: pydantic reads the typing one only from Python 3.12 on.
@with_config(ConfigDict(extra="ignore"))
class CloudTrailRecord(TypedDict):
    eventID: NotRequired[str | None]
    eventTime: Timestamp
    eventSource: str
    eventName: str
    awsRegion: NotRequired[str | None]
    recipientAccountId: NotRequired[str | None]
    userIdentity: NotRequired[JsonObject | None]
    sourceIPAddress: NotRequired[str | None]
    userAgent: NotRequired[str | None]
    errorCode: NotRequired[str | None]
    requestParameters: NotRequired[JsonObject | None]
    responseElements: NotRequired[JsonObject | None]
    resources: NotRequired[list[JsonObject] | None]


RECORD = SourceFields(CloudTrailRecord, LABEL)


def looks_like_cloudtrail(document: dict[str, Any]) -> bool:
    # Loose on purpose: a record missing eventTime is still CloudTrail, and deserves "eventTime: missing".
    return "eventVersion" in document or {"eventName", "eventSource"} <= document.keys()


# Every value is of its field's type already (validated by RECORD, or built from validated values): not
# validated again, the hot path of the whole core.
_EVENT = TrustedFields(
    NormalizedEvent,
    given=(
        "event_id",
        "time",
        "source",
        "account",
        "region",
        "action",
        "outcome",
        "error_code",
        "actor",
        "source_ip",
        "user_agent",
        "resources",
        "images",
        "raw",
        "origin",
    ),
)


def normalize_cloudtrail(document: dict[str, Any], origin: str, envelope: Envelope | None = None) -> NormalizedEvent:
    return read_cloudtrail(document, origin, envelope).event()


class CloudTrailCall:
    """A CloudTrail record read, checked and resolved (actor, resources), before its event is built.

    Most calls match no rule. The pipeline classifies a call's resources, asks the rule index whether any rule can
    match it (`Detector.may_match`, reading this in place of the event), and builds the event only when one can
    (a record that matches nothing: 8.0 us to build, enrich and detect, 6.0 us to screen). Every attribute is the
    value the event gets (`event` builds it from them), so the index reads the same values from either."""

    __slots__ = (
        "account",
        "action",
        "actor",
        "error_code",
        "event_id",
        "images",
        "origin",
        "outcome",
        "raw",
        "region",
        "resources",
        "source_ip",
        "time",
        "user_agent",
    )
    source = EventSource.CLOUDTRAIL
    # Enrichment's verdicts and the other sources' parts are not read before the event is built: the index reads
    # them only where `sigma.fields.readable_before_building` says it may not screen calls.

    def __init__(self, record: CloudTrailRecord, document: dict[str, Any], origin: str, envelope: Envelope) -> None:
        user_identity = record.get("userIdentity")
        account = record.get("recipientAccountId") or text(dig(user_identity, "accountId")) or envelope.account
        region = record.get("awsRegion") or envelope.region
        service = record["eventSource"].removesuffix(".amazonaws.com")
        event_name = record["eventName"]
        error_code = record.get("errorCode")
        self.event_id: str = record.get("eventID") or content_id(document)
        self.time: datetime = record["eventTime"]
        self.account: str | None = account
        self.region: str | None = region
        self.action: str = f"{service}:{event_name}"
        self.outcome: str = "failure" if error_code else "success"
        self.error_code: str | None = error_code
        self.actor: Actor | None = identity.from_cloudtrail(user_identity, account)
        self.source_ip: str | None = ip_or_none(record.get("sourceIPAddress"))
        self.user_agent: str | None = record.get("userAgent")
        self.resources: list[Resource] = _resources(record, service, region, account)
        params = record.get("requestParameters") or {}
        self.images: list[str] = sagemaker.images(event_name, params) if service == "sagemaker" else []
        self.raw = document
        self.origin = origin

    @property
    def asset_classes(self) -> list[str]:
        return asset_classes(self.resources)

    def event(self) -> NormalizedEvent:
        """The call's event (not enriched: `resources` as they stand, no verdicts)."""
        return _EVENT.build(
            {
                "event_id": self.event_id,
                "time": self.time,
                "source": EventSource.CLOUDTRAIL,
                "account": self.account,
                "region": self.region,
                "action": self.action,
                "outcome": self.outcome,
                "error_code": self.error_code,
                "actor": self.actor,
                "source_ip": self.source_ip,
                "user_agent": self.user_agent,
                "resources": self.resources,
                "images": self.images,
                # Not given: set by enrichment, or by other sources.
                "declared_writer": None,
                "image_allowed": None,
                "finding": None,
                "alarm": None,
                "compliance": None,
                "raw": self.raw,
                "origin": self.origin,
            }
        )


def read_cloudtrail(document: dict[str, Any], origin: str, envelope: Envelope | None = None) -> CloudTrailCall:
    """The record's call, or EventRejectedError: everything that can refuse a record happens here."""
    # Insights events are rare: the look-up is made here, not in a call per record.
    record = RECORD.validate(_with_insight_fields(document) if "insightDetails" in document else document)
    return CloudTrailCall(record, document, origin, envelope or NO_ENVELOPE)


def content_id(document: dict[str, Any]) -> str:
    """An id for records written before CloudTrail had eventID (eventVersion 1.0, 2014): a hash of the content,
    so the same record delivered twice still counts once."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _with_insight_fields(document: dict[str, Any]) -> dict[str, Any]:
    """CloudTrail Insights events keep the API they are about in insightDetails; surface it for validation."""
    insight = document.get("insightDetails")
    if not isinstance(insight, dict) or document.get("eventCategory") != "Insight":
        return document
    return {**{key: insight[key] for key in ("eventSource", "eventName") if key in insight}, **document}


@lru_cache(maxsize=8192)  # a few addresses recur on most events; parsing one costs more than the rest of a field
def ip_or_none(value: str | None) -> str | None:
    """Only real addresses: CloudTrail also writes service names ("s3.amazonaws.com", "AWS Internal") here,
    and one shared pseudo-address would tie unrelated events together."""
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _resources(record: CloudTrailRecord, service: str, region: str | None, account: str | None) -> list[Resource]:
    """The resources the record names, each once. Most records name none: each source is asked for what it
    names only when the keys it reads are there, and no list is made for nothing."""
    params = record.get("requestParameters") or {}
    answer = record.get("responseElements") or {}
    named = record.get("resources")
    found: list[Resource | None] = [res.from_arn(item.get("ARN")) for item in named] if named else []
    if "bucketName" in params:
        found += _s3(params)
    if "sagemaker" in service:
        found += _sagemaker(params, region, account)
        found += [r for uri in sagemaker.s3_inputs(record["eventName"], params) for r in _s3_uri(uri)]
        # A new model package version is named only in the answer (CreateModelPackage's modelPackageArn).
        found.append(res.from_arn(answer.get("modelPackageArn")))
    if service == "apigateway":
        found += _apigateway(params, region)
    if not _INSTANCE_KEYS.isdisjoint(params):
        found += _instances(params)
    if not _INSTANCE_KEYS.isdisjoint(answer):
        found += _instances(answer)
    return res.unique(found) if found else []


def _s3(params: dict[str, Any]) -> list[Resource | None]:
    name = text(params.get("bucketName"))
    if not name:
        return []
    key = text(params.get("key"))
    return [res.bucket(name), res.s3_object(name, key) if key else None]


def _s3_uri(uri: str) -> list[Resource | None]:
    """`s3://bucket/prefix`: the bucket, and the object (or prefix) it names, as an S3 call's resources are."""
    name, _, key = uri.removeprefix("s3://").partition("/")
    if not name:
        return []
    return [res.bucket(name), res.s3_object(name, key) if key else None]


_SAGEMAKER_PARAMETERS = {
    "endpointName": "endpoint",
    "modelName": "model",
    "notebookInstanceName": "notebook-instance",
    "trainingJobName": "training-job",
    "modelPackageName": "model-package",
    "modelPackageArn": "model-package",  # UpdateModelPackage (approval)
    "modelPackageGroupName": "model-package-group",
}


def _sagemaker(params: dict[str, Any], region: str | None, account: str | None) -> list[Resource | None]:
    return [
        res.sagemaker(kind, name, region, account)
        for parameter, kind in _SAGEMAKER_PARAMETERS.items()
        if (name := text(params.get(parameter)))
    ]


def _apigateway(params: dict[str, Any], region: str | None) -> list[Resource | None]:
    found: list[Resource | None] = []
    if rest_api_id := text(params.get("restApiId")):
        found.append(res.rest_api(rest_api_id, region))
    if api_id := text(params.get("apiId")):  # HTTP and WebSocket APIs (apigatewayv2)
        found.append(res.http_api(api_id, region))
    if key := text(params.get("apiKey")):
        found.append(res.api_key(key, region))
    return found


_INSTANCE_KEYS = frozenset({"instanceId", "target", "instanceIds", "instancesSet"})


def _instances(elements: dict[str, Any]) -> list[Resource | None]:
    """EC2 instance ids wherever EC2 and SSM put them: instanceId, instanceIds, instancesSet.items, target (asked
    only of a request or response holding one of `_INSTANCE_KEYS`: most calls name no instance)."""
    ids: list[Any] = [elements.get("instanceId"), elements.get("target")]
    if isinstance(elements.get("instanceIds"), list):
        ids += elements["instanceIds"]
    items = dig(elements, "instancesSet", "items")
    if isinstance(items, list):
        ids += [item.get("instanceId") for item in items if isinstance(item, dict)]
    return [res.instance(value) for value in ids]
