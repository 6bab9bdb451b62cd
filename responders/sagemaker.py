"""SageMaker responders: quarantine an endpoint, stop a notebook or a training job, reject a model package.

Targets are SageMaker ARNs as the incident names them (`arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME`, names
lowercased). Each responder parses its ARN strictly and refuses anything else, and refuses a target outside the
session's account or region rather than acting on a namesake there.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import field_validator

from responders.aws import call
from responders.base import (
    ActionContext,
    Responder,
    ResponderError,
    ResponderParams,
    State,
    Target,
    VerificationError,
    responder,
)

QUARANTINE_TAG = "cordon:quarantine"  # value: the incident that quarantined the endpoint (it owns the rollback)
PRIOR_CONFIG_TAG = "cordon:prior-endpoint-config"
PRIOR_WEIGHT_TAG = "cordon:prior-weight:"  # + variant name; value: the variant's weight before the cut
SOURCE_CONFIG_TAG = "cordon:source-config"  # on the quarantine config: the config it was copied from
DENY_POLICY_PREFIX = "cordon-deny-invoke-"
_QUARANTINE_SUFFIX = "-cordon-quarantine"
_MAX_NAME = 63  # SageMaker names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}

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
_PRINCIPAL_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::(?P<account>\d{12}):(?P<kind>role|user)/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
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


def _resolve(responder_: Responder, ctx: ActionContext, target: Target, kind: str) -> SageMakerArn:
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


P = TypeVar("P", bound=ResponderParams)


def _params(params: ResponderParams, model: type[P]) -> P:
    if not isinstance(params, model):
        raise ResponderError(f"expected {model.__name__}, got {type(params).__name__}")
    return params


def _incident_id(ctx: ActionContext) -> str:
    value = ctx.incident.get("id")
    if not isinstance(value, str) or not _INCIDENT_ID.fullmatch(value):
        raise ResponderError(f"the incident has no usable id (got {value!r})")
    return value


# --- sagemaker.quarantine-endpoint: pure request builders -------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    arn: str
    account: str
    kind: Literal["role", "user"]
    path: str
    name: str


def parse_principal(arn: str) -> Principal:
    match = _PRINCIPAL_ARN.fullmatch(arn)
    if not match:
        raise ValueError(f"not an IAM role or user ARN: {arn!r} (assumed-role sessions resolve to their role)")
    kind: Literal["role", "user"] = "role" if match["kind"] == "role" else "user"
    return Principal(arn, match["account"], kind, "/" + match["path"], match["name"])


def screen_principals(arns: tuple[str, ...], account: str) -> tuple[list[Principal], dict[str, str]]:
    """Split `arns` into principals Cordon may put a deny on and the skipped ones, with why.

    Protected principals never get here: the runner's guards deny an action whose parameters name one. A
    service-linked role is skipped all the same (AWS refuses inline policies on it), and a principal in another
    account cannot be changed from this one; both are listed in the state while the rest of the quarantine goes on.
    """
    eligible: list[Principal] = []
    skipped: dict[str, str] = {}
    for arn in dict.fromkeys(arns):  # de-duplicated, in order
        principal = parse_principal(arn)
        if principal.path.startswith("/aws-service-role/"):
            skipped[arn] = "service-linked role"
        elif principal.account != account:
            skipped[arn] = f"in account {principal.account}, not the endpoint's {account}: deny it there"
        else:
            eligible.append(principal)
    return eligible, skipped


def deny_sid(incident_id: str) -> str:
    # One statement per incident, so two incidents can deny the same principal and each rollback lifts only its own.
    return "Cordon" + re.sub(r"[^A-Za-z0-9]", "", incident_id)


def deny_statement(incident_id: str, endpoint_arn: str) -> dict[str, Any]:
    return {
        "Sid": deny_sid(incident_id),
        "Effect": "Deny",
        "Action": "sagemaker:InvokeEndpoint*",  # InvokeEndpoint, ...Async, ...WithResponseStream
        "Resource": endpoint_arn,
    }


def _statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    statements = (document or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def policy_with(document: dict[str, Any] | None, statement: dict[str, Any]) -> dict[str, Any]:
    kept = [s for s in _statements(document) if s.get("Sid") != statement["Sid"]]
    return {"Version": "2012-10-17", "Statement": [*kept, statement]}


def policy_without(document: dict[str, Any] | None, sid: str) -> dict[str, Any] | None:
    """The policy without statement `sid`; None when nothing is left (delete the policy)."""
    kept = [s for s in _statements(document) if s.get("Sid") != sid]
    return {"Version": "2012-10-17", "Statement": kept} if kept else None


def quarantine_config_name(endpoint_name: str) -> str:
    name = endpoint_name + _QUARANTINE_SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(endpoint_name.encode()).hexdigest()[:8]  # keeps long names distinct when cut
    return f"{endpoint_name[: _MAX_NAME - len(_QUARANTINE_SUFFIX) - 9]}-{digest}{_QUARANTINE_SUFFIX}"


def quarantine_config_request(source: dict[str, Any], name: str, incident_id: str) -> dict[str, Any]:
    """CreateEndpointConfig for the quarantine copy of `source` (a DescribeEndpointConfig answer).

    Same models, instance types, encryption, network and data capture, so the endpoint stays deployed for
    forensics and a rollback is one UpdateEndpoint away; every variant gets weight 0 (no default-routed traffic)
    and one instance (the least capacity a hijacked endpoint can spend). Shadow variants are dropped: they would
    receive a copy of the traffic.
    """
    variants = []
    for variant in source["ProductionVariants"]:
        copy = {**variant, "InitialVariantWeight": 0.0}
        if "InitialInstanceCount" in copy:  # serverless variants have no instance count
            copy["InitialInstanceCount"] = 1
        variants.append(copy)
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": variants,
        "Tags": [
            {"Key": SOURCE_CONFIG_TAG, "Value": source["EndpointConfigName"]},
            {"Key": QUARANTINE_TAG, "Value": incident_id},
        ],
    }
    for key in ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExecutionRoleArn", "VpcConfig"):
        if source.get(key):
            request[key] = source[key]
    if "EnableNetworkIsolation" in source:
        request["EnableNetworkIsolation"] = source["EnableNetworkIsolation"]
    return request


def restore_tags(state: State, cut: str) -> dict[str, str]:
    """Tags that let any later rollback restore traffic, even if the audit record of this apply is lost."""
    if cut == "zero_weights" and not state["restore"]["weights"] and not _traffic_cut(state, cut):
        unknown = sorted(name for name, weight in state["weights"].items() if weight is None)
        if unknown:  # refusing beats cutting traffic that could not be restored
            raise ResponderError(f"endpoint {state['endpoint']} reports no weight for {', '.join(unknown)}")
        return {PRIOR_WEIGHT_TAG + name: repr(float(weight)) for name, weight in state["weights"].items()}
    if cut == "quarantine_config" and not state["restore"]["endpoint_config"] and not _on_quarantine_config(state):
        return {PRIOR_CONFIG_TAG: state["endpoint_config"]}
    return {}


def _on_quarantine_config(state: State) -> bool:
    name = quarantine_config_name(state["endpoint"])
    return name in (state["endpoint_config"], state["pending_endpoint_config"])


def _traffic_cut(state: State, cut: str) -> bool:
    if cut == "zero_weights":
        return all(weight == 0 for weight in state["weights"].values())
    if cut == "quarantine_config":
        return _on_quarantine_config(state)
    return True


# --- sagemaker.quarantine-endpoint: thin AWS I/O -------------------------------------------------------------------


def _iam_ops(iam: Any, principal: Principal) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
    if principal.kind == "role":
        return (
            iam.get_role,
            iam.get_role_policy,
            iam.put_role_policy,
            iam.delete_role_policy,
            {"RoleName": principal.name},
        )
    return iam.get_user, iam.get_user_policy, iam.put_user_policy, iam.delete_user_policy, {"UserName": principal.name}


def _read_deny_policy(iam: Any, principal: Principal, policy_name: str) -> dict[str, Any] | Literal[False] | None:
    """The principal's deny policy document, None if it has none, False if the principal does not exist."""
    get_principal, get_policy, _, _, key = _iam_ops(iam, principal)
    try:
        call(get_principal, **key)
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return False
        raise
    try:
        document = call(get_policy, PolicyName=policy_name, **key)["PolicyDocument"]
    except ResponderError as error:
        if error.code == "NoSuchEntity":
            return None
        raise
    return json.loads(document) if isinstance(document, str) else dict(document)


def _write_deny_policy(iam: Any, principal: Principal, policy_name: str, document: dict[str, Any] | None) -> None:
    _, _, put_policy, delete_policy, key = _iam_ops(iam, principal)
    if document is None:
        call(delete_policy, PolicyName=policy_name, **key)
    else:
        call(put_policy, PolicyName=policy_name, PolicyDocument=json.dumps(document), **key)


def _endpoint_state(ctx: ActionContext, arn: SageMakerArn, principals: tuple[str, ...]) -> State:
    sagemaker, iam = ctx.client("sagemaker"), ctx.client("iam")
    endpoint = call(sagemaker.describe_endpoint, EndpointName=arn.name)
    if endpoint["EndpointArn"].lower() != arn.arn.lower():
        raise ResponderError(f"DescribeEndpoint answered for {endpoint['EndpointArn']}, not {arn.arn}")
    tags = {t["Key"]: t["Value"] for t in call(sagemaker.list_tags, ResourceArn=endpoint["EndpointArn"])["Tags"]}
    eligible, skipped = screen_principals(principals, arn.account)
    policy_name = DENY_POLICY_PREFIX + endpoint["EndpointName"]
    policies: dict[str, Any] = {}
    for principal in eligible:
        document = _read_deny_policy(iam, principal, policy_name)
        if document is False:
            skipped[principal.arn] = "does not exist"
        else:
            policies[principal.arn] = document
    weights = {v["VariantName"]: v.get("DesiredWeight", v.get("CurrentWeight")) for v in endpoint["ProductionVariants"]}
    return {
        "endpoint": endpoint["EndpointName"],
        "arn": endpoint["EndpointArn"],
        "status": endpoint["EndpointStatus"],
        "endpoint_config": endpoint["EndpointConfigName"],
        "pending_endpoint_config": endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName"),
        "weights": weights,
        "quarantined_by": tags.get(QUARANTINE_TAG),
        "restore": {
            "endpoint_config": tags.get(PRIOR_CONFIG_TAG),
            "weights": {
                k.removeprefix(PRIOR_WEIGHT_TAG): float(v) for k, v in tags.items() if k.startswith(PRIOR_WEIGHT_TAG)
            },
        },
        "deny_policy": policy_name,
        "deny_policies": policies,
        "skipped_principals": skipped,
    }


def _prepare_quarantine_config(sagemaker: Any, state: State) -> bool:
    """Check (read-only) that the quarantine config can be used; True when it must still be created."""
    name = quarantine_config_name(state["endpoint"])
    try:
        existing = call(sagemaker.describe_endpoint_config, EndpointConfigName=name)
    except ResponderError as error:
        if error.code == "ValidationException" and "could not find" in str(error).lower():
            return True
        raise
    tags = {t["Key"]: t["Value"] for t in call(sagemaker.list_tags, ResourceArn=existing["EndpointConfigArn"])["Tags"]}
    source = state["restore"]["endpoint_config"] or state["endpoint_config"]
    if tags.get(SOURCE_CONFIG_TAG) != source:
        raise ResponderError(
            f"endpoint config {name} exists but was not built by Cordon from {source} "
            f"(its {SOURCE_CONFIG_TAG} tag is {tags.get(SOURCE_CONFIG_TAG)!r}); "
            "delete it or use cut_traffic: zero_weights"
        )
    return False


class QuarantineEndpointParams(ResponderParams):
    deny_principals: tuple[str, ...] = ()  # IAM role or user ARNs
    cut_traffic: Literal["none", "zero_weights", "quarantine_config"] = "none"

    @field_validator("deny_principals")
    @classmethod
    def _iam_arns(cls, arns: tuple[str, ...]) -> tuple[str, ...]:
        for arn in arns:
            parse_principal(arn)
        return arns


@responder("sagemaker.quarantine-endpoint")
class QuarantineEndpoint(Responder):
    """Quarantine a SageMaker endpoint: tag it, deny the incident's principals InvokeEndpoint on it, optionally cut
    its traffic.

    SageMaker endpoints have no resource policy, so the deny goes on each principal: an inline policy
    `cordon-deny-invoke-<endpoint>` with one statement per incident. The runner refuses the action if any of them is
    protected; service-linked roles, principals of other accounts and principals that no longer exist are skipped
    and listed in the state.

    `cut_traffic`: `none`; `zero_weights` sets every variant's weight to 0; `quarantine_config` switches the
    endpoint to `<endpoint>-cordon-quarantine`, a copy of its config with weight 0 and one instance per variant.
    Neither stops a caller that names a variant (`TargetVariant` overrides weights): the principal deny is the
    control; the cut takes away default routing and (with the config) capacity. What restores the traffic is
    tagged on the endpoint itself (`cordon:prior-*`), so a repeated apply never loses it. An endpoint that is not
    InService cannot be cut yet: the error is transient and a retry finishes the job.

    The first incident to quarantine an endpoint owns its tag and traffic cut; rolling that incident back restores
    traffic (unless someone changed it since) and removes the tags. Rolling back any incident removes only its own
    deny statements. A quarantine config is left in place after rollback (configs cost nothing), and reused.

    Example::

        - responder: sagemaker.quarantine-endpoint
          target: "entities[?type=='sagemaker_endpoint'].id"
          params: {cut_traffic: none}
          bind: {deny_principals: "entities[?type=='principal'].id"}
    """

    Params = QuarantineEndpointParams
    permissions = (
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:ListTags",
        "sagemaker:AddTags",
        "sagemaker:DeleteTags",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:UpdateEndpoint",
        "iam:GetRole",
        "iam:GetUser",
        "iam:GetRolePolicy",
        "iam:GetUserPolicy",
        "iam:PutRolePolicy",
        "iam:PutUserPolicy",
        "iam:DeleteRolePolicy",
        "iam:DeleteUserPolicy",
    )
    target_types = frozenset({"sagemaker_endpoint"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        principals = _params(params, QuarantineEndpointParams).deny_principals
        return _endpoint_state(ctx, _resolve(self, ctx, target, "endpoint"), principals)

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        params = _params(params, QuarantineEndpointParams)
        arn, incident_id = _resolve(self, ctx, target, "endpoint"), _incident_id(ctx)
        sagemaker, iam = ctx.client("sagemaker"), ctx.client("iam")
        # Re-read rather than trust `before`, which may be stale (an approval can come hours later).
        state = _endpoint_state(ctx, arn, params.deny_principals)
        cut = params.cut_traffic
        needs_cut = not _traffic_cut(state, cut)
        create_config = needs_cut and cut == "quarantine_config" and _prepare_quarantine_config(sagemaker, state)
        if needs_cut and state["status"] != "InService":
            # Refuse before changing anything; transient, so the runner retries once the endpoint settles.
            raise ResponderError(
                f"endpoint {state['endpoint']} is {state['status']}: its traffic can be cut once it is InService",
                permanent=False,
            )

        tags = ({} if state["quarantined_by"] else {QUARANTINE_TAG: incident_id}) | restore_tags(state, cut)
        if tags:  # restore tags go on before the cut, so a crash in between loses nothing
            call(sagemaker.add_tags, ResourceArn=state["arn"], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        statement = deny_statement(incident_id, state["arn"])
        for principal_arn, document in state["deny_policies"].items():
            if statement not in _statements(document):
                _write_deny_policy(
                    iam, parse_principal(principal_arn), state["deny_policy"], policy_with(document, statement)
                )
        if needs_cut and cut == "zero_weights":
            weights = [{"VariantName": name, "DesiredWeight": 0.0} for name in state["weights"]]
            call(
                sagemaker.update_endpoint_weights_and_capacities,
                EndpointName=state["endpoint"],
                DesiredWeightsAndCapacities=weights,
            )
        elif needs_cut:
            name = quarantine_config_name(state["endpoint"])
            if create_config:
                source = call(sagemaker.describe_endpoint_config, EndpointConfigName=state["endpoint_config"])
                call(sagemaker.create_endpoint_config, **quarantine_config_request(source, name, incident_id))
            call(sagemaker.update_endpoint, EndpointName=state["endpoint"], EndpointConfigName=name)

        after = _endpoint_state(ctx, arn, params.deny_principals)
        failures = [
            f"{principal} has no {statement['Sid']} deny"
            for principal, doc in after["deny_policies"].items()
            if statement not in _statements(doc)
        ]
        if not after["quarantined_by"]:
            failures.append(f"no {QUARANTINE_TAG} tag")
        if not _traffic_cut(after, cut):
            failures.append(f"traffic not cut ({cut}): weights {after['weights']}, config {after['endpoint_config']}")
        if failures:
            raise VerificationError(f"quarantine of {arn.arn} did not take: {'; '.join(failures)}")
        return after | {"incident": incident_id, "cut_traffic": cut}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        params = _params(params, QuarantineEndpointParams)
        arn, incident_id = _resolve(self, ctx, target, "endpoint"), _incident_id(ctx)
        sagemaker, iam = ctx.client("sagemaker"), ctx.client("iam")
        # Driven by what AWS shows now (our Sids, our tags), so it also undoes an apply whose record was lost.
        state = _endpoint_state(ctx, arn, params.deny_principals)
        owned, restore, notes = state["quarantined_by"] == incident_id, state["restore"], []
        restored = None
        if owned and restore["endpoint_config"] and _on_quarantine_config(state):
            restored = "endpoint_config"
        elif owned and restore["weights"] and _traffic_cut(state, "zero_weights"):
            restored = "weights"
        elif owned and (restore["endpoint_config"] or restore["weights"]):
            notes.append("traffic was changed after the quarantine; left as it is")
        elif state["quarantined_by"] and not owned:
            notes.append(f"quarantine owned by {state['quarantined_by']}; left in place")
        if restored and state["status"] != "InService":
            raise ResponderError(
                f"endpoint {state['endpoint']} is {state['status']}: its traffic can be restored once it is InService",
                permanent=False,
            )

        sid = deny_sid(incident_id)
        for principal_arn, document in state["deny_policies"].items():
            if any(s.get("Sid") == sid for s in _statements(document)):
                _write_deny_policy(
                    iam, parse_principal(principal_arn), state["deny_policy"], policy_without(document, sid)
                )
        if restored == "endpoint_config":
            call(
                sagemaker.update_endpoint, EndpointName=state["endpoint"], EndpointConfigName=restore["endpoint_config"]
            )
        elif restored == "weights":
            weights = [
                {"VariantName": n, "DesiredWeight": w} for n, w in restore["weights"].items() if n in state["weights"]
            ]
            call(
                sagemaker.update_endpoint_weights_and_capacities,
                EndpointName=state["endpoint"],
                DesiredWeightsAndCapacities=weights,
            )
        if owned:  # the restore tags go last, so a crash before this point loses nothing
            keys = [QUARANTINE_TAG, *([PRIOR_CONFIG_TAG] if restore["endpoint_config"] else [])]
            keys += [PRIOR_WEIGHT_TAG + name for name in restore["weights"]]
            call(sagemaker.delete_tags, ResourceArn=state["arn"], TagKeys=keys)

        final = _endpoint_state(ctx, arn, params.deny_principals)
        failures = [
            f"{p} still has {sid}"
            for p, doc in final["deny_policies"].items()
            if any(s.get("Sid") == sid for s in _statements(doc))
        ]
        if final["quarantined_by"] == incident_id:
            failures.append(f"{QUARANTINE_TAG} tag still there")
        wanted = state["restore"]["endpoint_config"]
        if restored == "endpoint_config" and wanted not in (final["endpoint_config"], final["pending_endpoint_config"]):
            failures.append(f"endpoint config is {final['endpoint_config']}, not {wanted}")
        if restored == "weights" and any(final["weights"].get(n) != w for n, w in state["restore"]["weights"].items()):
            failures.append(f"weights are {final['weights']}, not {state['restore']['weights']}")
        if failures:
            raise VerificationError(f"rollback of {arn.arn} did not take: {'; '.join(failures)}")
        return final | {"notes": notes}


# --- notebooks, training jobs, model packages ----------------------------------------------------------------------

_NOTEBOOK_RUNNING = frozenset({"InService", "Pending"})
_NOTEBOOK_DOWN = frozenset({"Stopping", "Stopped", "Failed", "Deleting"})


def _notebook_state(ctx: ActionContext, arn: SageMakerArn) -> State:
    answer = call(ctx.client("sagemaker").describe_notebook_instance, NotebookInstanceName=arn.name)
    return {
        "notebook": answer["NotebookInstanceName"],
        "arn": answer["NotebookInstanceArn"],
        "status": answer["NotebookInstanceStatus"],
    }


@responder("sagemaker.stop-notebook")
class StopNotebook(Responder):
    """Stop a SageMaker notebook instance (its credentials and kernels stop with it; its volume is kept).

    Rollback starts it again only if it was running (InService or Pending) before Cordon stopped it.

    Example::

        - responder: sagemaker.stop-notebook
          target: "entities[?type=='sagemaker_notebook'].id"
    """

    permissions = (
        "sagemaker:DescribeNotebookInstance",
        "sagemaker:StopNotebookInstance",
        "sagemaker:StartNotebookInstance",
    )
    target_types = frozenset({"sagemaker_notebook"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _notebook_state(ctx, _resolve(self, ctx, target, "notebook-instance"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn = _resolve(self, ctx, target, "notebook-instance")
        state = _notebook_state(ctx, arn)
        if state["status"] in _NOTEBOOK_RUNNING:
            call(ctx.client("sagemaker").stop_notebook_instance, NotebookInstanceName=state["notebook"])
        elif state["status"] not in _NOTEBOOK_DOWN:  # Updating: SageMaker refuses a stop until it settles
            raise ResponderError(
                f"notebook {state['notebook']} is {state['status']}: it can be stopped once that ends", permanent=False
            )
        after = _notebook_state(ctx, arn)
        if after["status"] not in _NOTEBOOK_DOWN:
            raise VerificationError(
                f"notebook {after['notebook']} is still {after['status']} after StopNotebookInstance"
            )
        return after | {"was_running": state["status"] in _NOTEBOOK_RUNNING}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        arn = _resolve(self, ctx, target, "notebook-instance")
        state = _notebook_state(ctx, arn)
        if not after.get("was_running") or state["status"] in _NOTEBOOK_RUNNING:
            return state
        if state["status"] != "Stopped":
            raise ResponderError(
                f"notebook {state['notebook']} is {state['status']}: it can be started once it is Stopped",
                permanent=False,
            )
        call(ctx.client("sagemaker").start_notebook_instance, NotebookInstanceName=state["notebook"])
        final = _notebook_state(ctx, arn)
        if final["status"] not in _NOTEBOOK_RUNNING:
            raise VerificationError(f"notebook {final['notebook']} is {final['status']} after StartNotebookInstance")
        return final


def _training_job_state(ctx: ActionContext, arn: SageMakerArn) -> State:
    answer = call(ctx.client("sagemaker").describe_training_job, TrainingJobName=arn.name)
    return {
        "training_job": answer["TrainingJobName"],
        "arn": answer["TrainingJobArn"],
        "status": answer["TrainingJobStatus"],
    }


@responder("sagemaker.stop-training-job")
class StopTrainingJob(Responder):
    """Stop a SageMaker training job that is InProgress (a finished job is left alone).

    Not reversible: a stopped training job cannot be resumed. Training again means a new job under a new name
    (possibly from its last checkpoint), a decision for the model's owners, not for a rollback.

    Example::

        - responder: sagemaker.stop-training-job
          target: "entities[?type=='sagemaker_training_job'].id"
    """

    permissions = ("sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob")
    target_types = frozenset({"sagemaker_training_job"})
    reversible = False

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _training_job_state(ctx, _resolve(self, ctx, target, "training-job"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn = _resolve(self, ctx, target, "training-job")
        state = _training_job_state(ctx, arn)
        if state["status"] != "InProgress":  # Stopping, Stopped, Completed, Failed: nothing left to stop
            return state
        call(ctx.client("sagemaker").stop_training_job, TrainingJobName=state["training_job"])
        after = _training_job_state(ctx, arn)
        if after["status"] not in {"Stopping", "Stopped"}:
            raise VerificationError(f"training job {after['training_job']} is {after['status']} after StopTrainingJob")
        return after


_OUR_REJECTION = re.compile(r"Rejected by Cordon for incident (?P<incident>\S+) \(was (?P<status>\w+)\)")


def rejection_description(incident_id: str, prior_status: str) -> str:
    # Names the incident for the model's owners, and the prior status so a repeated apply can still restore it.
    return f"Rejected by Cordon for incident {incident_id} (was {prior_status})"


def _model_package_state(ctx: ActionContext, arn: SageMakerArn) -> State:
    answer = call(ctx.client("sagemaker").describe_model_package, ModelPackageName=arn.arn)
    return {
        "model_package": answer["ModelPackageArn"],
        "status": answer.get("ModelApprovalStatus"),
        "approval_description": answer.get("ApprovalDescription") or None,
    }


@responder("sagemaker.reject-model-package")
class RejectModelPackage(Responder):
    """Reject a model package version so deployment pipelines that gate on approval stop shipping it.

    The approval description names the incident. Rollback restores the previous status and description; note that
    re-approving fires the same EventBridge event an approval does, so a CI/CD pipeline may redeploy the model.

    Example::

        - responder: sagemaker.reject-model-package
          target: "entities[?type=='sagemaker_model_package'].id"
    """

    permissions = ("sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage")
    target_types = frozenset({"sagemaker_model_package"})
    reversible = True

    def read_state(self, ctx: ActionContext, target: Target, params: ResponderParams) -> State:
        return _model_package_state(ctx, _resolve(self, ctx, target, "model-package"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn, incident_id = _resolve(self, ctx, target, "model-package"), _incident_id(ctx)
        state = _model_package_state(ctx, arn)
        if state["status"] == "Rejected":
            # Already rejected: by this incident on an earlier attempt (our description keeps the status to restore;
            # the prior description survives only in the first attempt's `before`), or by someone else (keep it).
            ours = _OUR_REJECTION.fullmatch(state["approval_description"] or "")
            if not ours or ours["incident"] != incident_id:
                return state | {"restore": None}
            prior = before.get("approval_description")
            prior = None if prior and _OUR_REJECTION.fullmatch(prior) else prior
            return state | {"restore": {"status": ours["status"], "approval_description": prior}}
        if state["status"] not in {"Approved", "PendingManualApproval"}:
            raise ResponderError(f"model package {arn.arn} has no approval status to change ({state['status']!r})")
        description = rejection_description(incident_id, str(state["status"]))
        call(
            ctx.client("sagemaker").update_model_package,
            ModelPackageArn=state["model_package"],
            ModelApprovalStatus="Rejected",
            ApprovalDescription=description,
        )
        after = _model_package_state(ctx, arn)
        if after["status"] != "Rejected":
            raise VerificationError(f"model package {arn.arn} is {after['status']} after UpdateModelPackage")
        return after | {"restore": {"status": state["status"], "approval_description": state["approval_description"]}}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        arn = _resolve(self, ctx, target, "model-package")
        state, restore = _model_package_state(ctx, arn), after.get("restore")
        if not restore:
            return state
        if state["status"] != "Rejected":
            raise ResponderError(
                f"model package {arn.arn} is {state['status']} now, not Rejected: not overwriting that change"
            )
        call(
            ctx.client("sagemaker").update_model_package,
            ModelPackageArn=state["model_package"],
            ModelApprovalStatus=restore["status"],
            ApprovalDescription=restore["approval_description"] or "",  # omitting it would keep Cordon's text
        )
        final = _model_package_state(ctx, arn)
        if final["status"] != restore["status"]:
            raise VerificationError(f"model package {arn.arn} is {final['status']} after restoring {restore['status']}")
        return final
