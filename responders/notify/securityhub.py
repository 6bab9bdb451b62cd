"""`notify.securityhub`: the incident as one ASFF finding in Security Hub, updated in place as it grows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from correlators.model import CORDON_GENERATED_MARKER
from responders.aws import call
from responders.base import (
    ActionContext,
    NoParams,
    Responder,
    ResponderError,
    ResponderParams,
    State,
    Target,
    VerificationError,
    responder,
)
from responders.notify import summary as s
from responders.notify.common import INCIDENT_TARGET, check_target

GENERATED_MARKER = CORDON_GENERATED_MARKER  # in ProductFields: the correlator drops findings that carry it
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 1024
MAX_RESOURCES = 32  # ASFF's limit per finding
MAX_TYPES = 50
# First match wins for a rule name; ASFF namespace/category from the finding-type taxonomy.
_TYPE_HINTS = (
    ("tampering", "TTPs/Defense Evasion"),
    ("evasion", "TTPs/Defense Evasion"),
    ("credential_created", "TTPs/Persistence"),
    ("credential", "TTPs/Credential Access"),
    ("model_download", "Effects/Data Exfiltration"),
    ("artifact_download", "Effects/Data Exfiltration"),
    ("exfil", "Effects/Data Exfiltration"),
    ("bulk", "TTPs/Collection"),
    ("training", "TTPs/Collection"),
    ("alarm", "Unusual Behaviors/Application"),
    ("endpoint", "Unusual Behaviors/Application"),
)
DEFAULT_TYPE = "Unusual Behaviors/User"


def finding_types(rules: list[str]) -> list[str]:
    """ASFF Types for the incident's rules, de-duplicated; `Unusual Behaviors/User` when none says more."""
    types = [next((t for hint, t in _TYPE_HINTS if hint in rule.lower()), None) for rule in rules]
    return list(dict.fromkeys(t for t in types if t))[:MAX_TYPES] or [DEFAULT_TYPE]


def asff_time(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def partition_of(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def resource(kind: str, ident: str, *, account: str, region: str) -> dict[str, Any]:
    """One entity as an ASFF resource; `Other` (with the entity type in Details) where no ASFF type fits."""
    partition = partition_of(region)
    arn = ident.split(":", 5) if ident.startswith("arn:") else []
    if len(arn) == 6:
        partition, region = arn[1], arn[3] or region
    if kind == "access_key":
        rtype, rid = "AwsIamAccessKey", f"AWS::IAM::AccessKey:{ident}"
    elif kind == "principal" and ":role/" in ident:
        rtype, rid = "AwsIamRole", ident
    elif kind == "principal" and ":user/" in ident:
        rtype, rid = "AwsIamUser", ident
    elif kind == "account" or (kind == "principal" and ident.endswith(":root")):
        rtype, rid = "AwsAccount", f"AWS::::Account:{arn[4] if len(arn) == 6 else ident}"
    elif kind == "instance":
        rtype, rid = "AwsEc2Instance", ident if arn else f"arn:{partition}:ec2:{region}:{account}:instance/{ident}"
    elif kind == "bucket":
        rtype, rid = "AwsS3Bucket", ident if arn else f"arn:{partition}:s3:::{ident}"
    elif kind == "object" and ident.startswith("s3://"):
        rtype, rid = "AwsS3Object", f"arn:{partition}:s3:::{ident.removeprefix('s3://')}"
    elif kind == "sagemaker_notebook" and arn:
        rtype, rid = "AwsSageMakerNotebookInstance", ident
    else:
        rtype, rid = "Other", ident
    found: dict[str, Any] = {"Type": rtype, "Id": rid, "Partition": partition, "Region": region}
    if rtype == "Other":
        found["Details"] = {"Other": {"cordon/entity_type": kind}}
    return found


def description(incident: Mapping[str, Any], limit: int = DESCRIPTION_LIMIT) -> str:
    events = s.events(incident)
    sources = sorted({e["source"] for e in events if e["source"]})
    kinds = ", ".join(f"{kind} x{len(ids)}" for kind, ids in s.entities_by_type(incident).items())
    actions = "; ".join(f"{a['responder']} on {a['target']}: {a['status']}" for a in s.actions_of(incident))
    text = (
        f"Cordon correlated {len(events)} events ({', '.join(sources) or 'no source'}) between "
        f"{incident.get('first_seen')} and {incident.get('last_seen')}. Rules: {', '.join(s.rules_of(incident))}. "
        f"Entities: {kinds or 'none'}. Actions: {actions or 'none yet'}."
    )
    return s.truncate(text, limit)


def build_finding(incident: Mapping[str, Any], *, account: str, region: str, now: datetime) -> dict[str, Any]:
    """The ASFF finding. Its Id is the incident id, so importing it again updates it instead of adding one."""
    incident_id = str(incident.get("id") or "")
    if not incident_id:
        raise ResponderError("notify.securityhub: the incident has no id")
    rules = s.rules_of(incident)
    first = s.parse_time(incident.get("first_seen")) or now
    last = s.parse_time(incident.get("last_seen")) or first
    severity = {"Label": s.severity_label(incident), "Original": str(incident.get("severity") or "")}
    types = finding_types(rules)
    where = {"account": account, "region": region}
    resources = [resource(kind, i, **where) for kind, ids in s.entities_by_type(incident).items() for i in ids]
    return {
        "SchemaVersion": "2018-10-08",
        "Id": incident_id,
        "ProductArn": f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default",
        "ProductName": "Cordon",
        "CompanyName": "Cordon",
        "GeneratorId": f"cordon/{rules[0] if rules else 'incident'}",
        "AwsAccountId": account,
        "Types": types,
        "FirstObservedAt": asff_time(first),
        "LastObservedAt": asff_time(last),
        "CreatedAt": asff_time(first),
        # Replayed or clock-skewed events can lie ahead of now; an update older than what it reports is nonsense.
        "UpdatedAt": asff_time(max(now, last)),
        "Severity": severity,
        "FindingProviderFields": {"Severity": severity, "Types": types},
        "Title": s.truncate(s.title_of(incident), TITLE_LIMIT),
        "Description": description(incident),
        # ASFF requires at least one resource; an incident without entities is about the account.
        "Resources": resources[:MAX_RESOURCES] or [resource("account", account, **where)],
        "ProductFields": {
            GENERATED_MARKER: "true",
            "cordon/incident_id": incident_id,
            "cordon/rules": s.truncate(",".join(rules), 2048),
        },
        "RecordState": "ACTIVE",
    }


@responder("notify.securityhub")
class NotifySecurityHub(Responder):
    """Import the incident into Security Hub as one ASFF finding (BatchImportFindings, default product of the
    account): Id = incident id, so a growing incident updates its finding; GeneratorId `cordon/<first rule>`;
    Types from the rules (TTPs/..., Effects/..., Unusual Behaviors/...); Severity from the incident; Resources
    from its entities (access keys, IAM roles and users, instances, S3, else `Other`).

    Cordon must not read its own findings back as new signals, or every incident would feed itself. Each
    finding carries ProductFields `cordon/generated: "true"` (and `cordon/incident_id`); the intake rule
    excludes them with this EventBridge pattern condition, which other events (no `findings`) still pass:

        {"detail": {"findings": {"ProductFields": {"cordon/generated": [{"exists": false}]}}}}

    and the correlator drops any Security Hub finding whose ProductFields has `cordon/generated` (replayed
    exports do not pass through EventBridge).

    Example::

        - responder: notify.securityhub
          target: id
          params: {}
    """

    permissions = ("securityhub:BatchImportFindings", "securityhub:GetFindings")
    Params = NoParams
    target_types = INCIDENT_TARGET
    reversible = False

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        client = ctx.client("securityhub")
        product_arn = _product_arn(ctx, target, client.meta.region_name)
        return _read_finding(client, str(ctx.incident.get("id") or ""), product_arn)

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        check_target(ctx, target, self.name)
        client = ctx.client("securityhub")
        region = client.meta.region_name
        finding = build_finding(ctx.incident, account=_account(ctx, target), region=region, now=ctx.now)
        response = call(client.batch_import_findings, Findings=[finding])
        if response.get("FailedCount", 0) or not response.get("SuccessCount", 1):
            failed = response.get("FailedFindings") or [{}]
            raise ResponderError(
                f"{self.name}: finding {finding['Id']} refused: "
                f"{failed[0].get('ErrorCode', '?')}: {failed[0].get('ErrorMessage', '')}",
                code=str(failed[0].get("ErrorCode") or "FailedFindings"),
            )
        after = _read_finding(client, finding["Id"], finding["ProductArn"])
        if not after["exists"] or after["updated_at"] != finding["UpdatedAt"]:
            raise VerificationError(f"{self.name}: finding {finding['Id']} imported but not found updated")
        return after


def _account(ctx: ActionContext, target: Target) -> str:
    # The default product belongs to the calling account; GetCallerIdentity needs no IAM permission.
    return target.account or str(call(ctx.client("sts").get_caller_identity)["Account"])


def _product_arn(ctx: ActionContext, target: Target, region: str) -> str:
    account = _account(ctx, target)
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def _read_finding(client: Any, finding_id: str, product_arn: str) -> State:
    filters = {
        "Id": [{"Value": finding_id, "Comparison": "EQUALS"}],
        "ProductArn": [{"Value": product_arn, "Comparison": "EQUALS"}],
    }
    page: dict[str, Any] = {"Filters": filters, "MaxResults": 100}
    found = None
    while found is None:
        response = call(client.get_findings, **page)
        # Matched on Id here as well: a filter the service ignored must not make another finding look like ours.
        ours = (f for f in response["Findings"] if f.get("Id") == finding_id and f.get("ProductArn") == product_arn)
        found = next(ours, None)
        if not response.get("NextToken"):
            break
        page["NextToken"] = response["NextToken"]
    return {
        "finding_id": finding_id,
        "product_arn": product_arn,
        "exists": found is not None,
        "updated_at": found.get("UpdatedAt") if found else None,
        "severity": (found.get("Severity") or {}).get("Label") if found else None,
        "record_state": found.get("RecordState") if found else None,
    }
