"""sagemaker.reject-model-package: reject a model package version; rollback restores its approval status."""

from __future__ import annotations

import re

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
        return _model_package_state(ctx, resolve_target(self, ctx, target, "model-package"))

    def apply(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State) -> State:
        arn, incident_id = resolve_target(self, ctx, target, "model-package"), incident_id_of(ctx)
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

    def holds(self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, state: State) -> bool:
        ours = _OUR_REJECTION.fullmatch(state.get("approval_description") or "")
        return state.get("status") == "Rejected" and ours is not None and ours["incident"] == incident_id_of(ctx)

    def rollback(
        self, ctx: ActionContext, target: Target, params: ResponderParams, before: State, after: State
    ) -> State:
        arn = resolve_target(self, ctx, target, "model-package")
        state, restore = _model_package_state(ctx, arn), after.get("restore")
        if "restore" not in after and before.get("status") in {"Approved", "PendingManualApproval"}:
            # Read back after a failed call, `after` is a plain state: what to restore is what `before` says.
            restore = {"status": before["status"], "approval_description": before.get("approval_description")}
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
