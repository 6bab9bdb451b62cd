"""SageMaker ARNs and names: strict parsing, and the checks every SageMaker responder runs on its target."""

from __future__ import annotations

import re
from dataclasses import dataclass

from responders.base import ActionContext, Responder, ResponderError, Target

_NAME = r"[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62}"
_SAGEMAKER_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):sagemaker:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):(?P<account>\d{12}):"
    r"(?P<kind>[a-z-]+)/(?P<name>.+)"
)
_KIND_NAMES = {
    "endpoint": re.compile(_NAME),
    "notebook-instance": re.compile(_NAME),
    "training-job": re.compile(_NAME),
    "model-package": re.compile(rf"{_NAME}/\d+"),  # GROUP/VERSION: only versioned packages have an approval status
}
_INCIDENT_ID = re.compile(r"[A-Za-z0-9_.:/=+@-]{1,256}")  # also a valid SageMaker tag value


@dataclass(frozen=True)
class SageMakerArn:
    arn: str
    region: str
    account: str
    kind: str
    name: str


def parse_sagemaker_arn(arn: str, kind: str) -> SageMakerArn:
    """`arn` as a SageMaker ARN of `kind` ("endpoint", "notebook-instance", ...), or a refusal."""
    match = _SAGEMAKER_ARN.fullmatch(arn)
    if match and kind == "model-package" and match["kind"] == "model-package-group":
        raise ResponderError(f"{arn} is a model package group: name one version (model-package/GROUP/VERSION)")
    if not match or match["kind"] != kind or not _KIND_NAMES[kind].fullmatch(match["name"]):
        raise ResponderError(f"not a SageMaker {kind} ARN: {arn!r}")
    return SageMakerArn(arn, match["region"], match["account"], kind, match["name"])


def resolve_target(responder_: Responder, ctx: ActionContext, target: Target, kind: str) -> SageMakerArn:
    """The target's ARN, once it is the right type and lies in the session's account and region."""
    if target.type not in responder_.target_types:
        raise ResponderError(
            f"{responder_.name} acts on {', '.join(sorted(responder_.target_types))}, not {target.type!r}"
        )
    arn = parse_sagemaker_arn(target.id, kind)
    if target.account and target.account != arn.account:
        raise ResponderError(f"{arn.arn} is in account {arn.account}, but the target says {target.account}")
    session_region = getattr(ctx.session, "region_name", None)
    if session_region and session_region != arn.region:
        raise ResponderError(f"{arn.arn} is in {arn.region}, but the session is for {session_region}")
    return arn


def incident_id_of(ctx: ActionContext) -> str:
    value = ctx.incident.get("id")
    if not isinstance(value, str) or not _INCIDENT_ID.fullmatch(value):
        raise ResponderError(f"the incident has no usable id (got {value!r})")
    return value
