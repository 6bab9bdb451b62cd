"""Resource identifiers as the entity graph spells them: ARNs, `s3://bucket/key`, EC2 instance ids.

Every source (CloudTrail parameters, ARNs in findings, CloudWatch dimensions) builds its resources here, so
the same endpoint or bucket gets the same id whichever event names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from correlators.model import Actor, EntityType, Resource

# Real ids are lowercase; anonymised datasets (Stratus Red Team) mix cases, and they must still link up.
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}", re.IGNORECASE)
ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")

# ARN resource prefix -> entity kind. SageMaker lowercases names in its ARNs, so built ARNs are lowercased too.
SAGEMAKER_KINDS = {
    "endpoint": EntityType.SAGEMAKER_ENDPOINT,
    "model": EntityType.SAGEMAKER_MODEL,
    "notebook-instance": EntityType.SAGEMAKER_NOTEBOOK,
    "training-job": EntityType.SAGEMAKER_TRAINING_JOB,
    "model-package": EntityType.SAGEMAKER_MODEL_PACKAGE,
    "model-package-group": EntityType.SAGEMAKER_MODEL_PACKAGE,
}


def partition_of(region: str | None) -> str:
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@lru_cache(maxsize=4096)  # a few buckets are named by most events; Resources are frozen, so they can be shared
def bucket(name: str) -> Resource:
    return Resource(type=EntityType.BUCKET, id=f"arn:aws:s3:::{name}")


def s3_object(bucket_name: str, key: str) -> Resource:
    return Resource(type=EntityType.OBJECT, id=f"s3://{bucket_name}/{key}")


def sagemaker(kind: str, name: str, region: str | None, account: str | None) -> Resource | None:
    """`name` may already be an ARN (modelPackageName accepts either)."""
    if name.startswith("arn:"):
        return from_arn(name)
    if not (region and account):
        return None  # an ARN without region or account would never match the same resource named elsewhere
    arn = f"arn:{partition_of(region)}:sagemaker:{region}:{account}:{kind}/{name.lower()}"
    return Resource(type=SAGEMAKER_KINDS[kind], id=arn)


def rest_api(api_id: str, region: str | None) -> Resource:
    return Resource(type=EntityType.API, id=f"arn:{partition_of(region)}:apigateway:{region or ''}::/restapis/{api_id}")


def http_api(api_id: str, region: str | None) -> Resource:
    return Resource(type=EntityType.API, id=f"arn:{partition_of(region)}:apigateway:{region or ''}::/apis/{api_id}")


def api_by_name(name: str, region: str | None) -> Resource:
    # Not a real ARN: CloudWatch names REST APIs by name only, and the name -> id mapping needs an API call.
    return Resource(
        type=EntityType.API, id=f"arn:{partition_of(region)}:apigateway:{region or ''}::/apis-by-name/{name}"
    )


def api_key(key_id: str, region: str | None) -> Resource:
    return Resource(
        type=EntityType.API_KEY, id=f"arn:{partition_of(region)}:apigateway:{region or ''}::/apikeys/{key_id}"
    )


def instance(instance_id: object) -> Resource | None:
    return _instance(instance_id) if isinstance(instance_id, str) else None


@lru_cache(maxsize=4096)  # the instances of a fleet recur call after call (EC2 and SSM name them in most requests)
def _instance(instance_id: str) -> Resource | None:
    return Resource(type=EntityType.INSTANCE, id=instance_id) if INSTANCE_ID.fullmatch(instance_id) else None


def from_arn(arn: object) -> Resource | None:
    """The entity an ARN names, for the kinds the graph knows; None for the rest (KMS keys, trails, ...)."""
    return _from_arn(arn) if isinstance(arn, str) else None


@lru_cache(maxsize=8192)  # roles, buckets and endpoints recur event after event
def _from_arn(arn: str) -> Resource | None:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, region, account, resource = parts
    if service == "s3" and not region and not account and resource:
        name, _, key = resource.partition("/")
        return s3_object(name, key) if key else bucket(name)
    if service == "sagemaker":
        kind = resource.split("/", 1)[0]
        if kind in SAGEMAKER_KINDS and "/" in resource:
            return Resource(
                type=SAGEMAKER_KINDS[kind], id=f"arn:{partition}:sagemaker:{region}:{account}:{resource.lower()}"
            )
    if service == "ec2" and resource.startswith("instance/"):
        return instance(resource.removeprefix("instance/"))
    if service == "apigateway":
        return _apigateway(partition, region, resource)
    return None


def _apigateway(partition: str, region: str, path: str) -> Resource | None:
    segments = path.strip("/").split("/")
    if len(segments) < 2:
        return None
    base = f"arn:{partition}:apigateway:{region}::/{segments[0]}/{segments[1]}"
    if segments[0] in ("restapis", "apis"):
        return Resource(type=EntityType.API, id=base)
    if segments[0] == "apikeys":
        return Resource(type=EntityType.API_KEY, id=base)
    return None


def identities_of(actor: Actor | None) -> list[Resource]:
    """An actor's identities as resources, for a finding that names several actors (a GuardDuty attack sequence):
    the event has one actor, and the others still have to be identity nodes of the graph."""
    if actor is None:
        return []
    named = [
        (EntityType.PRINCIPAL, actor.principal if actor.principal and actor.principal.startswith("arn:") else None),
        (
            EntityType.ACCESS_KEY,
            actor.access_key if actor.access_key and ACCESS_KEY_ID.fullmatch(actor.access_key) else None,
        ),
        (EntityType.SESSION, actor.session),
        (EntityType.INSTANCE, actor.instance),
    ]
    return [Resource(type=kind, id=value) for kind, value in named if value]


# GuardDuty ResourceV2 `resourceType` (attack sequences) -> how its `uid` or `name` becomes a resource.
def from_resource_v2(item: dict[str, object]) -> Resource | None:
    """A resource of a GuardDuty attack sequence (`service.detection.sequence.resources[]`), for the kinds the
    graph knows: S3 buckets and objects, EC2 instances, SageMaker endpoints. Access keys are identities, resolved
    by the caller with the rest of the actor."""
    kind, uid, name = item.get("resourceType"), item.get("uid"), item.get("name")
    if kind == "S3_BUCKET":
        bucket_name = name if isinstance(name, str) and name else str(uid or "").removeprefix("arn:aws:s3:::")
        return bucket(bucket_name) if bucket_name else None
    if kind == "S3_OBJECT" and isinstance(uid, str):
        return from_arn(uid) if uid.startswith("arn:") else None
    if kind == "EC2_INSTANCE":
        return from_arn(uid) if isinstance(uid, str) and uid.startswith("arn:") else instance(uid)
    if kind == "SAGEMAKER_ENDPOINT" and isinstance(uid, str):
        return from_arn(uid)
    return None


# AWS Config resource type -> the SageMaker ARN kind its resource id (the resource's name) becomes.
_CONFIG_SAGEMAKER_KINDS = {
    "AWS::SageMaker::NotebookInstance": "notebook-instance",
    "AWS::SageMaker::Endpoint": "endpoint",
    "AWS::SageMaker::Model": "model",
}
_IAM_IDENTITY_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(?:role|user)/.+")


def from_config(resource_type: str, resource_id: str, region: str | None, account: str | None) -> Resource | None:
    """The entity an AWS Config evaluation is about, named as CloudTrail and findings name it.

    Config names most resources by name (a bucket, a notebook instance) and builds nothing else, so the ARN is
    built here from the event's region and account. IAM users and roles are named by their unique id (`AIDA...`,
    `AROA...`), which no other source uses and which cannot become an ARN without asking IAM: they stay
    unresolved, unless a custom rule reports the ARN itself. Endpoint configurations have no entity kind (no
    other event names them as an entity); their rule and id stay readable as `cordon.config.*` fields.
    """
    if _IAM_IDENTITY_ARN.fullmatch(resource_id):
        return Resource(type=EntityType.PRINCIPAL, id=resource_id)
    if resource_id.startswith("arn:"):
        return from_arn(resource_id)
    if resource_type == "AWS::S3::Bucket":
        return bucket(resource_id)
    if resource_type == "AWS::EC2::Instance":
        return instance(resource_id)
    kind = _CONFIG_SAGEMAKER_KINDS.get(resource_type)
    return sagemaker(kind, resource_id, region, account) if kind else None


def unique(resources: Iterable[Resource | None]) -> list[Resource]:
    """Drop Nones and repeats (CloudTrail often names a bucket both in `resources` and the parameters)."""
    seen: dict[tuple[EntityType, str], Resource] = {}
    for resource in resources:
        if resource is not None:
            seen.setdefault((resource.type, resource.id), resource)
    return list(seen.values())
