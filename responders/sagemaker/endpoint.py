"""sagemaker.quarantine-endpoint: tag an endpoint, deny the incident's principals InvokeEndpoint, cut its traffic."""

from __future__ import annotations

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
from responders.sagemaker.arns import SageMakerArn, incident_id_of, resolve_target
from responders.sagemaker.deny_policy import (
    DENY_POLICY_PREFIX,
    deny_sid,
    deny_statement,
    parse_principal,
    policy_statements,
    policy_with,
    policy_without,
    read_deny_policy,
    screen_principals,
    write_deny_policy,
)
from responders.sagemaker.traffic_cut import (
    PRIOR_CONFIG_TAG,
    PRIOR_WEIGHT_TAG,
    QUARANTINE_TAG,
    on_quarantine_config,
    prepare_quarantine_config,
    quarantine_config_name,
    quarantine_config_request,
    restore_tags,
    traffic_is_cut,
)

P = TypeVar("P", bound=ResponderParams)


def _params(params: ResponderParams, model: type[P]) -> P:
    if not isinstance(params, model):
        raise ResponderError(f"expected {model.__name__}, got {type(params).__name__}")
    return params


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
        document = read_deny_policy(iam, principal, policy_name)
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


class QuarantineEndpointParams(ResponderParams):
    deny_principals: tuple[str, ...] = ()  # IAM role or user ARNs
    cut_traffic: Literal["none", "zero_weights", "quarantine_config"] = "none"

    @field_validator("deny_principals")
    @classmethod
    def _iam_arns(cls, arns: tuple[str, ...]) -> tuple[str, ...]:
        for arn in arns:
            try:
                parse_principal(arn)
            except ResponderError as error:
                raise ValueError(str(error)) from None
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
        return _endpoint_state(ctx, resolve_target(self, ctx, target, "endpoint"), principals)

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        params = _params(params, QuarantineEndpointParams)
        arn, incident_id = resolve_target(self, ctx, target, "endpoint"), incident_id_of(ctx)
        sagemaker, iam = ctx.client("sagemaker"), ctx.client("iam")
        # Re-read rather than trust `before`, which may be stale (an approval can come hours later).
        state = _endpoint_state(ctx, arn, params.deny_principals)
        cut = params.cut_traffic
        needs_cut = not traffic_is_cut(state, cut)
        create_config = needs_cut and cut == "quarantine_config" and prepare_quarantine_config(sagemaker, state)
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
            if statement not in policy_statements(document):
                write_deny_policy(
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
            if statement not in policy_statements(doc)
        ]
        if not after["quarantined_by"]:
            failures.append(f"no {QUARANTINE_TAG} tag")
        if not traffic_is_cut(after, cut):
            failures.append(f"traffic not cut ({cut}): weights {after['weights']}, config {after['endpoint_config']}")
        if failures:
            raise VerificationError(f"quarantine of {arn.arn} did not take: {'; '.join(failures)}")
        return after | {"incident": incident_id, "cut_traffic": cut}

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        params = _params(params, QuarantineEndpointParams)
        arn, incident_id = resolve_target(self, ctx, target, "endpoint"), incident_id_of(ctx)
        sagemaker, iam = ctx.client("sagemaker"), ctx.client("iam")
        # Driven by what AWS shows now (our Sids, our tags), so it also undoes an apply whose record was lost.
        state = _endpoint_state(ctx, arn, params.deny_principals)
        owned, restore, notes = state["quarantined_by"] == incident_id, state["restore"], []
        restored = None
        if owned and restore["endpoint_config"] and on_quarantine_config(state):
            restored = "endpoint_config"
        elif owned and restore["weights"] and traffic_is_cut(state, "zero_weights"):
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
            if any(s.get("Sid") == sid for s in policy_statements(document)):
                write_deny_policy(
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
            if any(s.get("Sid") == sid for s in policy_statements(doc))
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
